//! `torch.save` checkpoints read without Python or libtorch.
//!
//! A `torch.save` file (PyTorch ≥ 1.6) is a ZIP: `<name>/data.pkl` is a pickle (protocol 2)
//! of the saved object in which every tensor is a call to `torch._utils._rebuild_tensor_v2`
//! on a *persistent id* `('storage', torch.FloatStorage, key, location, numel)`; the storage's
//! bytes are the entry `<name>/data/<key>` (little-endian). The legacy format (PyTorch
//! 0.4–1.5, and `_use_new_zipfile_serialization=False` since) is one file of consecutive
//! pickles — magic number, protocol version, `sys_info`, the object, the storage keys — with
//! each storage's element count and bytes appended in key order. Official CORnet checkpoints
//! hold `{'epoch', 'state_dict', 'optimizer'}` with keys prefixed `module.` (DataParallel).
//!
//! [`read`] runs a small pickle machine over the opcodes `torch.save` emits and returns the
//! state dict (a bare state dict, or the `state_dict` / `model` entry of a checkpoint dict),
//! `module.` prefixes removed, each tensor's elements gathered from its view of its storage
//! into contiguous little-endian bytes. Everything a file says is checked before it is used:
//! a view outside its storage, overflowing sizes or strides, a view holding more elements
//! than its storage (an expanded tensor, which no state dict holds and which could ask for
//! any amount of memory), a self-referencing pickle, nesting past 256 levels — each is an
//! error naming the file and the place, never a panic or an unbounded allocation. This crate
//! links neither libtorch nor Python, so that it can be fuzzed (`fuzz/`, target
//! `checkpoint`); `ventral-model` turns its tensors into libtorch's.

mod pickle;

pub mod fuzzing;

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use pickle::{Machine, TensorRef, Value};

/// Errors reading a checkpoint; each names the file and where in it.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a `torch.save` checkpoint we read, or it is damaged.
    #[error("{}: {field}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where in it (ZIP entry, pickle offset, tensor and storage).
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// The file errors name.
pub(crate) struct Site {
    path: PathBuf,
}

impl Site {
    pub(crate) fn invalid(
        &self,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> CheckpointError {
        CheckpointError::Invalid {
            path: self.path.clone(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A tensor's element type, as its storage class names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    Float,
    Double,
    Half,
    BFloat16,
    Int64,
    Int32,
    Int16,
    Int8,
    Uint8,
    Bool,
}

/// Each element type with the name of its storage class.
const STORAGES: [(Dtype, &str); 10] = [
    (Dtype::Float, "FloatStorage"),
    (Dtype::Double, "DoubleStorage"),
    (Dtype::Half, "HalfStorage"),
    (Dtype::BFloat16, "BFloat16Storage"),
    (Dtype::Int64, "LongStorage"),
    (Dtype::Int32, "IntStorage"),
    (Dtype::Int16, "ShortStorage"),
    (Dtype::Int8, "CharStorage"),
    (Dtype::Uint8, "ByteStorage"),
    (Dtype::Bool, "BoolStorage"),
];

impl Dtype {
    fn of_storage(name: &str) -> Option<Dtype> {
        STORAGES.iter().find(|(_, n)| *n == name).map(|(d, _)| *d)
    }

    /// The storage class's name (`FloatStorage`).
    pub fn storage(self) -> &'static str {
        STORAGES
            .iter()
            .find(|(d, _)| *d == self)
            .map_or("?", |(_, n)| n)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::Double | Dtype::Int64 => 8,
            Dtype::Float | Dtype::Int32 => 4,
            Dtype::Half | Dtype::BFloat16 | Dtype::Int16 => 2,
            Dtype::Int8 | Dtype::Uint8 | Dtype::Bool => 1,
        }
    }
}

/// One tensor of a state dict: contiguous (row-major) little-endian elements.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The state dict's key, without a `module.` prefix.
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<i64>,
    /// `shape.iter().product() × dtype.size()` bytes.
    pub data: Vec<u8>,
}

/// Read the state dict of a `torch.save` checkpoint, in either of the formats `torch.load`
/// reads: the ZIP one (PyTorch ≥ 1.6) or the legacy one (PyTorch 0.4–1.5, and
/// `_use_new_zipfile_serialization=False` since: the official CORnet checkpoints are in it).
/// Tensors come in the file's order.
pub fn read(path: &Path) -> Result<Vec<Tensor>, CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::with_capacity(512);
    std::fs::File::open(path)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .map_err(io)?;
    let site = Site {
        path: path.to_path_buf(),
    };
    match format(&head, &site)? {
        Format::Zip => read_zip(std::fs::File::open(path).map_err(io)?, &site),
        Format::Legacy => read_legacy(&std::fs::read(path).map_err(io)?, &site),
    }
}

/// [`read`] on bytes in memory; `path` only names them in errors.
pub fn read_bytes(data: &[u8], path: &Path) -> Result<Vec<Tensor>, CheckpointError> {
    let site = Site {
        path: path.to_path_buf(),
    };
    match format(data, &site)? {
        Format::Zip => read_zip(std::io::Cursor::new(data), &site),
        Format::Legacy => read_legacy(data, &site),
    }
}

enum Format {
    Zip,
    Legacy,
}

fn format(head: &[u8], site: &Site) -> Result<Format, CheckpointError> {
    if head.starts_with(b"PK\x03\x04") {
        Ok(Format::Zip)
    } else if head.first() == Some(&0x80) {
        Ok(Format::Legacy)
    } else if head.get(257..262) == Some(b"ustar") {
        Err(site.invalid(
            "archive",
            "a tar checkpoint (the format of PyTorch before 0.4) is not read: load it in \
             Python and torch.save it again",
        ))
    } else {
        Err(site.invalid(
            "archive",
            "not a torch.save file: neither a ZIP (PyTorch ≥ 1.6) nor a legacy pickle \
             (PyTorch 0.4–1.5)",
        ))
    }
}

/// Storage bytes by key, however the file holds them.
trait Storages {
    /// The bytes of storage `key` (whose elements are `dtype`), named `field` in errors.
    fn bytes(
        &mut self,
        key: &str,
        dtype: Dtype,
        field: &str,
    ) -> Result<std::borrow::Cow<'_, [u8]>, CheckpointError>;
}

/// Read a whole ZIP entry, refusing one that inflates past what its header declares.
fn read_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    site: &Site,
) -> Result<Vec<u8>, CheckpointError> {
    let bad = |e: String| site.invalid(name, e);
    let entry = zip.by_name(name).map_err(|e| bad(e.to_string()))?;
    let declared = entry.size();
    let mut raw = Vec::new();
    entry
        .take(declared.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(|e| bad(e.to_string()))?;
    if raw.len() as u64 != declared {
        return Err(bad(format!(
            "the entry holds {} bytes, its header says {declared}",
            raw.len()
        )));
    }
    Ok(raw)
}

struct ZipStorages<'a, R> {
    zip: zip::ZipArchive<R>,
    prefix: String,
    site: &'a Site,
}

impl<R: Read + Seek> Storages for ZipStorages<'_, R> {
    fn bytes(
        &mut self,
        key: &str,
        _dtype: Dtype,
        field: &str,
    ) -> Result<std::borrow::Cow<'_, [u8]>, CheckpointError> {
        let entry = format!("{}data/{key}", self.prefix);
        read_entry(&mut self.zip, &entry, self.site)
            .map(Into::into)
            .map_err(|e| match e {
                CheckpointError::Invalid { path, message, .. } => CheckpointError::Invalid {
                    path,
                    field: format!("{field} ({entry})"),
                    message,
                },
                other => other,
            })
    }
}

fn read_zip<R: Read + Seek>(reader: R, site: &Site) -> Result<Vec<Tensor>, CheckpointError> {
    let mut zip = zip::ZipArchive::new(reader)
        .map_err(|e| site.invalid("archive", format!("not a torch.save ZIP ({e})")))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|s| s.to_string()))
        .collect();
    let Some(pkl) = names
        .iter()
        .find(|n| n.ends_with("/data.pkl") || *n == "data.pkl")
    else {
        return Err(site.invalid("data.pkl", "no data.pkl in the archive"));
    };
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let bytes = read_entry(&mut zip, pkl, site)?;
    let root = Machine::new(&bytes, site, "data.pkl").run()?;
    let mut storages = ZipStorages { zip, prefix, site };
    state_dict(site, &root, &mut storages)
}

/// The legacy format's magic number, 0x1950a86a20f9469cfc6c, as pickle's LONG1 holds it.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// The only protocol version the legacy format ever had.
const LEGACY_PROTOCOL: i64 = 1001;

struct LegacyStorages<'a> {
    data: &'a [u8],
    ranges: BTreeMap<String, std::ops::Range<usize>>,
}

impl Storages for LegacyStorages<'_> {
    fn bytes(
        &mut self,
        key: &str,
        _dtype: Dtype,
        _field: &str,
    ) -> Result<std::borrow::Cow<'_, [u8]>, CheckpointError> {
        // Every key the pickle names was located when the file was read.
        let r = self.ranges.get(key).cloned().unwrap_or(0..0);
        Ok(self.data[r].into())
    }
}

/// The legacy format: five things one after the other — a pickle of the magic number, one
/// of the protocol version, one of `sys_info` (byte order, type sizes), the object's pickle
/// (storages as persistent ids), a pickle of the storage keys in the order they follow;
/// then each storage as its element count (little-endian i64) and its bytes.
fn read_legacy(data: &[u8], site: &Site) -> Result<Vec<Tensor>, CheckpointError> {
    let mut m = Machine::new(data, site, "pickle");
    match m.run()? {
        Value::Long(b) if b == LEGACY_MAGIC => {}
        _ => {
            return Err(site.invalid(
                "magic number",
                "a pickle, but not a torch.save file (no legacy magic number)",
            ));
        }
    }
    match m.run()? {
        Value::Int(LEGACY_PROTOCOL) => {}
        other => {
            return Err(site.invalid(
                "protocol version",
                format!("{other:?}, expected {LEGACY_PROTOCOL}"),
            ));
        }
    }
    if let Value::Dict(info) = m.run()? {
        let little = info.iter().find_map(|(k, v)| match (k, v) {
            (Value::Str(k), Value::Bool(b)) if k == "little_endian" => Some(*b),
            _ => None,
        });
        if little == Some(false) {
            return Err(site.invalid(
                "sys_info.little_endian",
                "written on a big-endian machine; not read",
            ));
        }
    }
    let root = m.run()?;
    let kinds = std::mem::take(&mut m.storages);
    let keys = match m.run()? {
        Value::List(keys) => keys,
        _ => return Err(site.invalid("storage keys", "not a list")),
    };
    let mut pos = m.pos;
    let mut ranges = BTreeMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err(site.invalid("storage keys", "a key is not a string"));
        };
        let Some(&dtype) = kinds.get(&key) else {
            return Err(site.invalid(
                format!("storage {key}"),
                "listed but never named by the pickle",
            ));
        };
        if ranges.contains_key(&key) {
            return Err(site.invalid(format!("storage {key}"), "listed twice"));
        }
        let field = format!("storage {key} at byte {pos}");
        let left = data.len() - pos;
        let n = data
            .get(pos..pos + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(i64::from_le_bytes)
            .ok_or_else(|| site.invalid(&field, "truncated file"))?;
        let len = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(dtype.size()))
            .filter(|&len| len <= left - 8)
            .ok_or_else(|| {
                site.invalid(
                    &field,
                    format!(
                        "{n} elements of {} bytes do not fit in the {} bytes left",
                        dtype.size(),
                        left - 8
                    ),
                )
            })?;
        ranges.insert(key, pos + 8..pos + 8 + len);
        pos += 8 + len;
    }
    if pos != data.len() {
        return Err(site.invalid(
            format!("byte {pos}"),
            format!("{} bytes after the last storage", data.len() - pos),
        ));
    }
    if let Some(key) = kinds.keys().find(|k| !ranges.contains_key(*k)) {
        return Err(site.invalid(
            format!("storage {key}"),
            "named by the pickle but not in the file",
        ));
    }
    let mut storages = LegacyStorages { data, ranges };
    state_dict(site, &root, &mut storages)
}

/// The tensors of the state dict inside a checkpoint's root object.
fn state_dict(
    site: &Site,
    root: &Value,
    storages: &mut dyn Storages,
) -> Result<Vec<Tensor>, CheckpointError> {
    // A checkpoint dict holds the state dict under `state_dict` (or `model`).
    let Value::Dict(dict) = root else {
        return Err(site.invalid("data.pkl", "the saved object is not a dict"));
    };
    let inner = dict.iter().find_map(|(k, v)| match (k, v) {
        (Value::Str(k), Value::Dict(d)) if k == "state_dict" || k == "model" => Some(d),
        _ => None,
    });
    let state = inner.unwrap_or(dict);
    let mut out = Vec::new();
    for (k, v) in state {
        let (Value::Str(name), Value::Tensor(t)) = (k, v) else {
            continue;
        };
        let raw = storages.bytes(&t.key, t.dtype, name)?;
        let field = format!("{name} (storage {})", t.key);
        let data = gather(t, &raw).map_err(|m| site.invalid(field, m))?;
        let name = name.strip_prefix("module.").unwrap_or(name).to_string();
        out.push(Tensor {
            name,
            dtype: t.dtype,
            shape: t.size.clone(),
            data,
        });
    }
    if out.is_empty() {
        return Err(site.invalid("state_dict", "no tensors found"));
    }
    Ok(out)
}

/// The elements of view `t` of a storage holding `raw`, contiguous, after checking that the
/// view lies inside the storage and holds no more elements than it.
fn gather(t: &TensorRef, raw: &[u8]) -> Result<Vec<u8>, String> {
    let esize = t.dtype.size();
    let numel = (raw.len() / esize) as i64;
    if t.size.len() != t.stride.len()
        || t.offset < 0
        || t.size.iter().chain(&t.stride).any(|&x| x < 0)
    {
        return Err(format!(
            "impossible tensor: size {:?}, stride {:?}, offset {}",
            t.size, t.stride, t.offset
        ));
    }
    let count = t
        .size
        .iter()
        .try_fold(1i64, |acc, &s| acc.checked_mul(s))
        .ok_or("tensor size overflows")?;
    if count == 0 {
        return Ok(Vec::new());
    }
    // The last element's index, in checked arithmetic (a hostile file may overflow it).
    let last = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |acc, (&s, &st)| {
            (s - 1).checked_mul(st).and_then(|x| acc.checked_add(x))
        })
        .ok_or("tensor extent overflows")?;
    if last >= numel {
        return Err(format!(
            "storage holds {numel} elements, the tensor needs {}",
            last + 1
        ));
    }
    if count > numel {
        return Err(format!(
            "the tensor holds {count} elements, more than its storage's {numel} (an \
             overlapping view, as `expand` makes; a state dict holds none)"
        ));
    }
    // All indices are now in 0..numel, and the output is no larger than the storage.
    let (count, offset) = (count as usize, t.offset as usize);
    let size: Vec<usize> = t.size.iter().map(|&s| s as usize).collect();
    let stride: Vec<usize> = t.stride.iter().map(|&s| s as usize).collect();
    let mut out = Vec::with_capacity(count * esize);
    let dims = size.len();
    if dims == 0 {
        out.extend_from_slice(&raw[offset * esize..(offset + 1) * esize]);
        return Ok(out);
    }
    // Rows along the last dimension; a unit stride there copies a row at once.
    let (row, step) = (size[dims - 1], stride[dims - 1]);
    let mut index = vec![0usize; dims - 1];
    loop {
        let start = offset
            + index
                .iter()
                .zip(&stride)
                .map(|(&i, &s)| i * s)
                .sum::<usize>();
        if step == 1 {
            out.extend_from_slice(&raw[start * esize..(start + row) * esize]);
        } else {
            for j in 0..row {
                let e = start + j * step;
                out.extend_from_slice(&raw[e * esize..(e + 1) * esize]);
            }
        }
        // The next row (an odometer over all dimensions but the last).
        let mut d = dims - 1;
        loop {
            if d == 0 {
                return Ok(out);
            }
            d -= 1;
            index[d] += 1;
            if index[d] < size[d] {
                break;
            }
            index[d] = 0;
        }
    }
}
