//! `torch.save` checkpoints read without Python, and weights in and out of a model.
//!
//! A `torch.save` file (PyTorch ≥ 1.6) is a ZIP: `<name>/data.pkl` is a pickle (protocol 2)
//! of the saved object in which every tensor is a call to `torch._utils._rebuild_tensor_v2`
//! on a *persistent id* `('storage', torch.FloatStorage, key, location, numel)`; the storage's
//! bytes are the entry `<name>/data/<key>` (little-endian). The legacy format (PyTorch
//! 0.4–1.5, and `_use_new_zipfile_serialization=False` since) is one file of consecutive
//! pickles — magic number, protocol version, `sys_info`, the object, the storage keys — with
//! each storage's element count and bytes appended in key order. Official CORnet checkpoints hold
//! `{'epoch', 'state_dict', 'optimizer'}` with keys prefixed `module.` (DataParallel).
//!
//! [`read_checkpoint`] runs a small pickle machine over the opcodes `torch.save` emits and
//! returns the state dict (a bare state dict, or the `state_dict` / `model` entry of a
//! checkpoint dict), `module.` prefixes removed. [`load_into`] copies it into a model's
//! variables after checking names and shapes, listing every missing, unexpected and
//! mis-shaped key on failure.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use tch::{Kind, Tensor, nn};

use crate::error::{ModelError, Result, io};

/// A pickled value (only what `torch.save` produces). Values other than dicts, strings,
/// integers and tensors are kept only so that the machine can run past them.
#[derive(Debug, Clone)]
#[allow(dead_code)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits, as its little-endian two's-complement bytes.
    Long(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    /// A storage, or (legacy files from PyTorch < 1.0) a view `offset` elements into one.
    Storage {
        kind: Kind,
        key: String,
        offset: i64,
    },
    Tensor(TensorRef),
    Object(Box<Value>, Box<Value>),
    Mark,
}

#[derive(Debug, Clone)]
struct TensorRef {
    kind: Kind,
    key: String,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

fn storage_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: BTreeMap<u32, Value>,
    path: &'a Path,
    /// Where the pickle is, for errors: the ZIP entry, or `pickle` in a legacy file.
    entry: &'static str,
    /// Every storage a persistent id named, with its element type (a legacy file's
    /// storages are appended in key order and sized by it).
    storages: BTreeMap<String, Kind>,
}

impl<'a> Machine<'a> {
    fn err(&self, message: impl Into<String>) -> ModelError {
        ModelError::Checkpoint {
            path: self.path.to_path_buf(),
            field: format!("{} offset {}", self.entry, self.pos),
            message: message.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.pos + n > self.data.len() {
            return Err(self.err("truncated pickle"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<String> {
        let start = self.pos;
        while self.pos < self.data.len() && self.data[self.pos] != b'\n' {
            self.pos += 1;
        }
        if self.pos >= self.data.len() {
            return Err(self.err("unterminated line"));
        }
        let s = String::from_utf8_lossy(&self.data[start..self.pos]).to_string();
        self.pos += 1;
        Ok(s)
    }

    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let Some(i) = self.stack.iter().rposition(|v| matches!(v, Value::Mark)) else {
            return Err(self.err("no MARK on the stack"));
        };
        let items = self.stack.split_off(i + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top_mut(&mut self) -> Result<&mut Value> {
        let pos = self.pos;
        let path = self.path.to_path_buf();
        self.stack.last_mut().ok_or(ModelError::Checkpoint {
            path,
            field: format!("data.pkl offset {pos}"),
            message: "stack underflow".into(),
        })
    }

    fn reduce(&self, func: Value, args: Value) -> Result<Value> {
        let Value::Global(module, name) = &func else {
            return Ok(Value::Object(Box::new(func), Box::new(args)));
        };
        let args = match args {
            Value::Tuple(a) => a,
            other => vec![other],
        };
        match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") => Ok(Value::Dict(Vec::new())),
            ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
                let ints = |v: &Value| -> Result<Vec<i64>> {
                    match v {
                        Value::Tuple(x) | Value::List(x) => x
                            .iter()
                            .map(|i| match i {
                                Value::Int(i) => Ok(*i),
                                _ => Err(self.err("tensor size/stride is not integers")),
                            })
                            .collect(),
                        _ => Err(self.err("tensor size/stride is not a tuple")),
                    }
                };
                let (
                    Some(Value::Storage {
                        kind,
                        key,
                        offset: view,
                    }),
                    Some(Value::Int(offset)),
                    Some(size),
                    Some(stride),
                ) = (args.first(), args.get(1), args.get(2), args.get(3))
                else {
                    return Err(self.err("unexpected arguments to _rebuild_tensor_v2"));
                };
                Ok(Value::Tensor(TensorRef {
                    kind: *kind,
                    key: key.clone(),
                    offset: view + offset,
                    size: ints(size)?,
                    stride: ints(stride)?,
                }))
            }
            ("torch._utils", "_rebuild_parameter")
            | ("torch._utils", "_rebuild_parameter_with_state") => args
                .into_iter()
                .next()
                .ok_or_else(|| self.err("empty _rebuild_parameter")),
            _ => Ok(Value::Object(Box::new(func), Box::new(Value::Tuple(args)))),
        }
    }

    fn new(data: &'a [u8], pos: usize, path: &'a Path, entry: &'static str) -> Self {
        Machine {
            data,
            pos,
            stack: Vec::new(),
            memo: BTreeMap::new(),
            path,
            entry,
            storages: BTreeMap::new(),
        }
    }

    /// Run one pickle from `self.pos` to its STOP; `self.pos` is then just past it.
    fn run(&mut self) -> Result<Value> {
        self.stack.clear();
        self.memo.clear();
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b'(' => self.stack.push(Value::Mark),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'K' => {
                    let v = self.u8()? as i64;
                    self.stack.push(Value::Int(v));
                }
                b'M' => {
                    let v = self.u16()? as i64;
                    self.stack.push(Value::Int(v));
                }
                b'J' => {
                    let v = self.u32()? as i32 as i64;
                    self.stack.push(Value::Int(v));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    if n > 8 {
                        self.stack.push(Value::Long(b.to_vec()));
                        continue;
                    }
                    let mut v: i64 = 0;
                    for (i, &x) in b.iter().enumerate() {
                        v |= (x as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.stack.push(Value::Float(f64::from_be_bytes(a)));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).to_string();
                    self.stack.push(Value::Str(s));
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).to_string();
                    self.stack.push(Value::Str(s));
                }
                b'T' => {
                    let n = self.u32()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).to_string();
                    self.stack.push(Value::Str(s));
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).to_string();
                    self.stack.push(Value::Str(s));
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'q' => {
                    let k = self.u8()? as u32;
                    let v = self
                        .stack
                        .last()
                        .cloned()
                        .ok_or_else(|| self.err("BINPUT on empty stack"))?;
                    self.memo.insert(k, v);
                }
                b'r' => {
                    let k = self.u32()?;
                    let v = self
                        .stack
                        .last()
                        .cloned()
                        .ok_or_else(|| self.err("LONG_BINPUT on empty stack"))?;
                    self.memo.insert(k, v);
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    let v = self
                        .stack
                        .last()
                        .cloned()
                        .ok_or_else(|| self.err("MEMOIZE on empty stack"))?;
                    self.memo.insert(k, v);
                }
                b'h' => {
                    let k = self.u8()? as u32;
                    let v = self
                        .memo
                        .get(&k)
                        .cloned()
                        .ok_or_else(|| self.err(format!("memo {k} unset")))?;
                    self.stack.push(v);
                }
                b'j' => {
                    let k = self.u32()?;
                    let v = self
                        .memo
                        .get(&k)
                        .cloned()
                        .ok_or_else(|| self.err(format!("memo {k} unset")))?;
                    self.stack.push(v);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(self.err("stack underflow in TUPLEn"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = items
                        .chunks(2)
                        .filter(|c| c.len() == 2)
                        .map(|c| (c[0].clone(), c[1].clone()))
                        .collect();
                    self.stack.push(Value::Dict(pairs));
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top_mut()? {
                        Value::List(l) => l.push(v),
                        _ => return Err(self.err("APPEND to a non-list")),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top_mut()? {
                        Value::List(l) => l.extend(items),
                        _ => return Err(self.err("APPENDS to a non-list")),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top_mut()? {
                        Value::Dict(d) => d.push((k, v)),
                        _ => return Err(self.err("SETITEM on a non-dict")),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let top = self.top_mut()?;
                    let Value::Dict(d) = top else {
                        return Err(self.err("SETITEMS on a non-dict"));
                    };
                    for c in items.chunks(2) {
                        if let [k, v] = c {
                            d.push((k.clone(), v.clone()));
                        }
                    }
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(module, name));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(m, n)),
                        _ => return Err(self.err("STACK_GLOBAL without strings")),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let v = self.reduce(func, args)?;
                    self.stack.push(v);
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = self.reduce(cls, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // BUILD: object state (e.g. a state dict's `_metadata`); not needed.
                    self.pop()?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let Value::Tuple(t) = pid else {
                        return Err(self.err("persistent id is not a tuple"));
                    };
                    match (t.first(), t.get(1), t.get(2)) {
                        (
                            Some(Value::Str(tag)),
                            Some(Value::Global(_, ty)),
                            Some(Value::Str(key)),
                        ) if tag == "storage" => {
                            let Some(kind) = storage_kind(ty) else {
                                return Err(self.err(format!("unsupported storage type {ty}")));
                            };
                            self.storages.insert(key.clone(), kind);
                            // Legacy: ('storage', type, root_key, location, numel,
                            // view_metadata), the last `(view_key, offset, size)` for a view.
                            let offset = match t.get(5) {
                                Some(Value::Tuple(v)) => match v.get(1) {
                                    Some(Value::Int(o)) => *o,
                                    _ => return Err(self.err("storage view without an offset")),
                                },
                                _ => 0,
                            };
                            self.stack.push(Value::Storage {
                                kind,
                                key: key.clone(),
                                offset,
                            });
                        }
                        _ => return Err(self.err("persistent id is not a storage")),
                    }
                }
                b'.' => return self.pop(),
                other => {
                    self.pos -= 1;
                    return Err(self.err(format!("unsupported pickle opcode 0x{other:02x}")));
                }
            }
        }
    }
}

fn kind_size(kind: Kind) -> usize {
    match kind {
        Kind::Double | Kind::Int64 => 8,
        Kind::Float | Kind::Int => 4,
        Kind::Half | Kind::BFloat16 | Kind::Int16 => 2,
        _ => 1,
    }
}

/// A state dict read from a file: names (without `module.`) to tensors, in file order.
pub type StateDict = Vec<(String, Tensor)>;

/// Read the state dict of a `torch.save` checkpoint, in either of the formats `torch.load`
/// reads: the ZIP one (PyTorch ≥ 1.6) or the legacy one (PyTorch 0.4–1.5, and
/// `_use_new_zipfile_serialization=False` since: the official CORnet checkpoints are in it).
pub fn read_checkpoint(path: &Path) -> Result<StateDict> {
    let bad = |field: &str, message: String| ModelError::Checkpoint {
        path: path.to_path_buf(),
        field: field.into(),
        message,
    };
    let mut head = Vec::with_capacity(512);
    std::fs::File::open(path)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .map_err(|e| io(path, e))?;
    if head.starts_with(b"PK\x03\x04") {
        read_zip(path)
    } else if head.first() == Some(&0x80) {
        read_legacy(path)
    } else if head.get(257..262) == Some(b"ustar") {
        Err(bad(
            "archive",
            "a tar checkpoint (the format of PyTorch before 0.4) is not read: load it in \
             Python and torch.save it again"
                .into(),
        ))
    } else {
        Err(bad(
            "archive",
            "not a torch.save file: neither a ZIP (PyTorch ≥ 1.6) nor a legacy pickle \
             (PyTorch 0.4–1.5)"
                .into(),
        ))
    }
}

/// Storage bytes by key, however the file holds them.
trait Storages {
    /// The bytes of storage `key`, named `field` in errors.
    fn bytes(&mut self, key: &str, field: &str) -> Result<std::borrow::Cow<'_, [u8]>>;
}

struct ZipStorages {
    zip: zip::ZipArchive<std::fs::File>,
    prefix: String,
    path: std::path::PathBuf,
}

impl Storages for ZipStorages {
    fn bytes(&mut self, key: &str, field: &str) -> Result<std::borrow::Cow<'_, [u8]>> {
        let entry = format!("{}data/{key}", self.prefix);
        let mut raw = Vec::new();
        self.zip
            .by_name(&entry)
            .and_then(|mut e| e.read_to_end(&mut raw).map_err(Into::into))
            .map_err(|e| ModelError::Checkpoint {
                path: self.path.clone(),
                field: format!("{field} ({entry})"),
                message: e.to_string(),
            })?;
        Ok(raw.into())
    }
}

fn read_zip(path: &Path) -> Result<StateDict> {
    let f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| ModelError::Checkpoint {
        path: path.to_path_buf(),
        field: "archive".into(),
        message: format!("not a torch.save ZIP ({e})"),
    })?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|s| s.to_string()))
        .collect();
    let Some(pkl) = names
        .iter()
        .find(|n| n.ends_with("/data.pkl") || *n == "data.pkl")
    else {
        return Err(ModelError::Checkpoint {
            path: path.to_path_buf(),
            field: "data.pkl".into(),
            message: "no data.pkl in the archive".into(),
        });
    };
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let mut bytes = Vec::new();
    zip.by_name(pkl)
        .and_then(|mut e| e.read_to_end(&mut bytes).map_err(Into::into))
        .map_err(|e| ModelError::Checkpoint {
            path: path.to_path_buf(),
            field: pkl.clone(),
            message: e.to_string(),
        })?;
    let root = Machine::new(&bytes, 0, path, "data.pkl").run()?;
    let mut storages = ZipStorages {
        zip,
        prefix,
        path: path.to_path_buf(),
    };
    state_dict(path, &root, &mut storages)
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
    fn bytes(&mut self, key: &str, _field: &str) -> Result<std::borrow::Cow<'_, [u8]>> {
        // Every key was located when the file was read.
        let r = self.ranges.get(key).cloned().unwrap_or(0..0);
        Ok(self.data[r].into())
    }
}

/// The legacy format: five things one after the other — a pickle of the magic number, one
/// of the protocol version, one of `sys_info` (byte order, type sizes), the object's pickle
/// (storages as persistent ids), a pickle of the storage keys in the order they follow;
/// then each storage as its element count (little-endian i64) and its bytes.
fn read_legacy(path: &Path) -> Result<StateDict> {
    let data = std::fs::read(path).map_err(|e| io(path, e))?;
    let bad = |field: &str, message: String| ModelError::Checkpoint {
        path: path.to_path_buf(),
        field: field.into(),
        message,
    };
    let mut m = Machine::new(&data, 0, path, "pickle");
    match m.run()? {
        Value::Long(b) if b == LEGACY_MAGIC => {}
        _ => {
            return Err(bad(
                "magic number",
                "a pickle, but not a torch.save file (no legacy magic number)".into(),
            ));
        }
    }
    match m.run()? {
        Value::Int(LEGACY_PROTOCOL) => {}
        other => {
            return Err(bad(
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
            return Err(bad(
                "sys_info.little_endian",
                "written on a big-endian machine; not read".into(),
            ));
        }
    }
    let root = m.run()?;
    let kinds = std::mem::take(&mut m.storages);
    let keys = match m.run()? {
        Value::List(keys) => keys,
        _ => return Err(bad("storage keys", "not a list".into())),
    };
    let mut pos = m.pos;
    let mut ranges = BTreeMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err(bad("storage keys", "a key is not a string".into()));
        };
        let Some(&kind) = kinds.get(&key) else {
            return Err(bad(
                &format!("storage {key}"),
                "listed but never named by the pickle".into(),
            ));
        };
        let field = format!("storage {key} at byte {pos}");
        let n = data
            .get(pos..pos + 8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .ok_or_else(|| bad(&field, "truncated file".into()))?;
        let len = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(kind_size(kind)))
            .filter(|&len| pos + 8 + len <= data.len())
            .ok_or_else(|| {
                bad(
                    &field,
                    format!(
                        "{n} elements of {} bytes do not fit in the {} bytes left",
                        kind_size(kind),
                        data.len() - pos - 8
                    ),
                )
            })?;
        ranges.insert(key, pos + 8..pos + 8 + len);
        pos += 8 + len;
    }
    if pos != data.len() {
        return Err(bad(
            &format!("byte {pos}"),
            format!("{} bytes after the last storage", data.len() - pos),
        ));
    }
    let mut storages = LegacyStorages {
        data: &data,
        ranges,
    };
    state_dict(path, &root, &mut storages)
}

/// The tensors of the state dict inside a checkpoint's root object.
fn state_dict(path: &Path, root: &Value, storages: &mut dyn Storages) -> Result<StateDict> {
    // A checkpoint dict holds the state dict under `state_dict` (or `model`).
    let dict = match root {
        Value::Dict(d) => d.clone(),
        _ => {
            return Err(ModelError::Checkpoint {
                path: path.to_path_buf(),
                field: "data.pkl".into(),
                message: "the saved object is not a dict".into(),
            });
        }
    };
    let inner = dict.iter().find_map(|(k, v)| match (k, v) {
        (Value::Str(k), Value::Dict(d)) if k == "state_dict" || k == "model" => Some(d.clone()),
        _ => None,
    });
    let state = inner.unwrap_or(dict);
    let mut out = Vec::new();
    for (k, v) in state {
        let (Value::Str(name), Value::Tensor(t)) = (k, v) else {
            continue;
        };
        let raw = storages.bytes(&t.key, &name)?;
        let field = format!("{name} (storage {})", t.key);
        let esize = kind_size(t.kind);
        let numel = raw.len() / esize;
        let bad = |message: String| ModelError::Checkpoint {
            path: path.to_path_buf(),
            field: field.clone(),
            message,
        };
        if t.size.len() != t.stride.len()
            || t.offset < 0
            || t.size.iter().chain(&t.stride).any(|&x| x < 0)
        {
            return Err(bad(format!(
                "impossible tensor: size {:?}, stride {:?}, offset {}",
                t.size, t.stride, t.offset
            )));
        }
        // The last element's index, in checked arithmetic (a hostile file may overflow it).
        let last = t
            .size
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |acc, (&s, &st)| {
                (s - 1)
                    .max(0)
                    .checked_mul(st)
                    .and_then(|x| acc.checked_add(x))
            });
        let empty = t.size.contains(&0);
        match last {
            Some(l) if empty || l < numel as i64 => {}
            Some(l) => {
                return Err(bad(format!(
                    "storage holds {numel} elements, the tensor needs {}",
                    l + 1
                )));
            }
            None => return Err(bad("tensor extent overflows".into())),
        }
        let storage = Tensor::from_data_size(&raw[..numel * esize], &[numel as i64], t.kind);
        let tensor = storage
            .f_as_strided(t.size.as_slice(), t.stride.as_slice(), Some(t.offset))
            .and_then(|v| v.f_contiguous())
            .map_err(|e| bad(e.to_string()))?;
        let name = name.strip_prefix("module.").unwrap_or(&name).to_string();
        out.push((name, tensor));
    }
    if out.is_empty() {
        return Err(ModelError::Checkpoint {
            path: path.to_path_buf(),
            field: "state_dict".into(),
            message: "no tensors found".into(),
        });
    }
    Ok(out)
}

/// The names torchvision's own loader accepts, as the model names them: DenseNet checkpoints
/// published before torchvision 0.3 call `denselayer1.norm1` `denselayer1.norm.1` (and so for
/// `relu` and `conv`); torchvision renames them when it loads, and so does this.
pub fn torchvision_names(state: StateDict) -> StateDict {
    state
        .into_iter()
        .map(|(name, t)| {
            if !name.contains(".denselayer") {
                return (name, t);
            }
            let mut n = name.clone();
            for part in ["norm", "relu", "conv"] {
                for k in ["1", "2"] {
                    n = n.replace(&format!(".{part}.{k}."), &format!(".{part}{k}."));
                }
            }
            (n, t)
        })
        .collect()
}

/// Copy `state` into `vs`, checking that names and shapes match exactly (BatchNorm's
/// `num_batches_tracked` counters are ignored). On a mismatch nothing is copied and the error
/// lists every missing, unexpected and mis-shaped key.
pub fn load_into(vs: &nn::VarStore, state: &StateDict, path: &Path, model: &str) -> Result<()> {
    let vars = vs.variables();
    let file: BTreeMap<&str, &Tensor> = state.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    for (name, t) in &vars {
        match file.get(name.as_str()) {
            None => missing.push(name.clone()),
            Some(f) if f.size() != t.size() => {
                mismatched.push(format!("{name}: {:?} vs {:?}", f.size(), t.size()))
            }
            _ => {}
        }
    }
    let unexpected: Vec<String> = file
        .keys()
        .filter(|k| !vars.contains_key(**k) && !k.ends_with("num_batches_tracked"))
        .map(|k| k.to_string())
        .collect();
    missing.sort();
    mismatched.sort();
    if !missing.is_empty() || !unexpected.is_empty() || !mismatched.is_empty() {
        return Err(ModelError::Mismatch {
            path: path.to_path_buf(),
            model: model.to_string(),
            missing,
            unexpected,
            mismatched,
        });
    }
    tch::no_grad(|| {
        for (name, mut t) in vars {
            if let Some(f) = file.get(name.as_str()) {
                t.copy_(&f.to_kind(t.kind()).to_device(t.device()));
            }
        }
    });
    Ok(())
}
