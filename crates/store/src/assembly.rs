//! Opening, checking and slicing assemblies.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use ndarray::{ArrayD, IxDyn, SliceInfoElem};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zarrs::array::{Array, ElementOwned};

use crate::FORMAT;
use crate::coords::parquet_from_bytes;
use crate::error::{Result, StoreError};
use crate::source::{LocalDir, Source, SourceStorage, join};

/// The element type of the values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 32-bit float (the default).
    Float32,
    /// 64-bit float.
    Float64,
}

impl DType {
    /// The Zarr data type.
    pub(crate) fn zarr(self) -> zarrs::array::DataType {
        match self {
            DType::Float32 => zarrs::array::data_type::float32(),
            DType::Float64 => zarrs::array::data_type::float64(),
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Float32 => 4,
            DType::Float64 => 8,
        }
    }

    /// The name used in metadata and SQL.
    pub fn name(self) -> &'static str {
        match self {
            DType::Float32 => "float32",
            DType::Float64 => "float64",
        }
    }
}

/// What `zarr.json`'s `attributes["ventral"]` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssemblyMeta {
    /// Always [`FORMAT`].
    pub format: String,
    /// The assembly's identifier (e.g. `dicarlo.MajajHong2015.public`).
    pub identifier: String,
    /// What it holds: `neural`, `activations`, `behavior`, `probabilities`, …
    pub kind: String,
    /// Dimension names, in storage order.
    pub dims: Vec<String>,
    /// Shape.
    pub shape: Vec<u64>,
    /// Chunk shape: one file each.
    pub chunk_shape: Vec<u64>,
    /// When chunks are Zarr shards: the shape of their inner chunks, each compressed on its
    /// own (row bands of the chunk), so that a few rows are read without the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_chunk_shape: Option<Vec<u64>>,
    /// Element type.
    pub dtype: DType,
    /// The key of the stage that produced it, when a stage did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<String>,
    /// Free attributes: `model`, `layer`, `timestep`, `stimulus_set_identifier`, …
    #[serde(default)]
    pub attrs: serde_json::Map<String, Value>,
}

impl AssemblyMeta {
    /// Elements per row (the product of all dimensions after the first).
    pub fn row_len(&self) -> u64 {
        self.shape[1..].iter().product()
    }

    /// A string attribute.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(Value::as_str)
    }
}

/// An assembly opened for reading.
pub struct Assembly {
    /// Where the files are read from, and the assembly's folder in it.
    source: Arc<dyn Source>,
    folder: String,
    /// The folder as people find it (a path on disk, or a URL), for messages.
    dir: PathBuf,
    meta: AssemblyMeta,
    array: Array<SourceStorage>,
    /// How [`Assembly::read_chunk_f32_into`] reads chunk files without zarrs' codec chain.
    fast: FastPath,
}

/// The chunk layouts our writer writes, which the fast path decodes straight into the
/// caller's buffer with a reused zstd context.
#[derive(Clone, Copy, Debug, PartialEq)]
enum FastPath {
    /// Another codec chain, or float64: through zarrs.
    None,
    /// Each chunk file is one compressed block of little-endian float32.
    Plain(Compression),
    /// Each chunk file is a shard of `inner` row bands of `inner_len` float32, each a
    /// compressed block of little-endian bytes, followed by the index — `(offset, size)`
    /// little-endian u64 pairs in C order, `u64::MAX` twice for a band of fill value — and
    /// its crc32c.
    Sharded {
        compression: Compression,
        inner: usize,
        inner_len: usize,
        inner_rows: u64,
    },
}

/// The compressors the fast path decodes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Compression {
    Zstd,
    /// Any blosc configuration (its frames describe themselves).
    Blosc,
}

/// Decompress one block into `out`, which it must fill exactly.
fn decompress(c: Compression, frame: &[u8], out: &mut [f32]) -> std::result::Result<(), String> {
    match c {
        Compression::Zstd => unzstd(frame, out),
        Compression::Blosc => {
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(out);
            let want = bytes.len();
            // The header is checked before the library trusts it.
            match zarrs::array::codec::blosc_validate(frame) {
                Some(n) if n == want => {}
                Some(n) => {
                    return Err(format!(
                        "blosc: the block holds {n} bytes where the chunk holds {want} ({} float32)",
                        want / 4
                    ));
                }
                None => return Err("blosc: not a valid blosc block".into()),
            }
            let decoded = zarrs::array::codec::blosc_decompress_bytes(frame, want, 1)
                .map_err(|e| format!("blosc: {e}"))?;
            if decoded.len() != want {
                return Err(format!("blosc: decoded {} bytes of {want}", decoded.len()));
            }
            bytes.copy_from_slice(&decoded);
            Ok(())
        }
    }
}

thread_local! {
    /// One zstd decompression context per thread: creating one per inner chunk would cost as
    /// much as decoding it.
    static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompress one zstd frame into `out` (which it must fill exactly).
fn unzstd(frame: &[u8], out: &mut [f32]) -> std::result::Result<(), String> {
    DCTX.with_borrow_mut(|d| {
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?);
        }
        let d = d.as_mut().ok_or("zstd: no context")?;
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(out);
        let want = bytes.len();
        let written = d
            .decompress_to_buffer(frame, bytes)
            .map_err(|e| format!("zstd: {e}"))?;
        if written != want {
            return Err(format!(
                "decoded {written} bytes where the chunk holds {want} ({} float32)",
                want / 4
            ));
        }
        Ok(())
    })
}

/// Parse and check a shard index (`inner` pairs, then the crc32c of their bytes); `data_len`
/// is the length of the bytes before it.
fn shard_index(
    tail: &[u8],
    inner: usize,
    data_len: u64,
) -> std::result::Result<Vec<(u64, u64)>, String> {
    let (pairs, crc) = tail.split_at(inner * 16);
    let stored = u32::from_le_bytes(crc.try_into().map_err(|_| "shard index too short")?);
    let actual = crc32c::crc32c(pairs);
    if stored != actual {
        return Err(format!(
            "shard index checksum {actual:#010x} where the file says {stored:#010x}"
        ));
    }
    let u = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    pairs
        .chunks_exact(16)
        .enumerate()
        .map(|(k, p)| {
            let (off, len) = (u(&p[..8]), u(&p[8..]));
            if (off, len) != (u64::MAX, u64::MAX)
                && off.checked_add(len).is_none_or(|e| e > data_len)
            {
                return Err(format!(
                    "inner chunk {k} at bytes {off}+{len} lies past the shard's {data_len} bytes"
                ));
            }
            Ok((off, len))
        })
        .collect()
}

impl std::fmt::Debug for Assembly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assembly")
            .field("dir", &self.dir)
            .field("meta", &self.meta)
            .finish()
    }
}

/// Read the `ventral` attributes of the group at `folder` of `source`.
pub(crate) fn read_meta(source: &dyn Source, folder: &str) -> Result<AssemblyMeta> {
    let dir = source.locate(folder);
    let not_one = |message: String| StoreError::NotAnAssembly {
        path: dir.clone(),
        message,
    };
    let text = match source.read(&join(folder, "zarr.json")) {
        Ok(Some(b)) => b,
        Ok(None) => return Err(not_one("zarr.json: No such file or directory".into())),
        Err(e) => return Err(not_one(format!("zarr.json: {e}"))),
    };
    let dir = dir.as_path();
    let v: Value = serde_json::from_slice(&text).map_err(|e| StoreError::NotAnAssembly {
        path: dir.to_path_buf(),
        message: format!("zarr.json: {e}"),
    })?;
    let meta = v
        .get("attributes")
        .and_then(|a| a.get("ventral"))
        .ok_or_else(|| StoreError::NotAnAssembly {
            path: dir.to_path_buf(),
            message: "zarr.json has no attributes.ventral".into(),
        })?;
    let meta: AssemblyMeta =
        serde_json::from_value(meta.clone()).map_err(|e| StoreError::NotAnAssembly {
            path: dir.to_path_buf(),
            message: format!("attributes.ventral: {e}"),
        })?;
    if meta.format != FORMAT {
        return Err(StoreError::NotAnAssembly {
            path: dir.to_path_buf(),
            message: format!("format `{}` (this ventral reads `{FORMAT}`)", meta.format),
        });
    }
    if meta.dims.len() != meta.shape.len()
        || meta.dims.len() != meta.chunk_shape.len()
        || meta.dims.is_empty()
    {
        return Err(StoreError::NotAnAssembly {
            path: dir.to_path_buf(),
            message: "dims, shape and chunk_shape disagree".into(),
        });
    }
    Ok(meta)
}

/// The column every coordinate table of `dim` must have, if any.
pub(crate) fn required_column(dim: &str) -> Option<&'static str> {
    match dim {
        "presentation" | "stimulus" => Some("stimulus_id"),
        "neuroid" => Some("neuroid_id"),
        _ => None,
    }
}

impl Assembly {
    /// Open the assembly at `dir`, checking its metadata and that the values array matches.
    pub fn open(dir: &Path) -> Result<Assembly> {
        Assembly::open_in(Arc::new(LocalDir::new(dir)), "")
    }

    /// Open the assembly in the folder `folder` (`""`: the root) of `source`, checking its
    /// metadata and that the values array matches. Nothing but metadata is read.
    pub fn open_in(source: Arc<dyn Source>, folder: &str) -> Result<Assembly> {
        let meta = read_meta(source.as_ref(), folder)?;
        let dir_buf = source.locate(folder);
        let dir = dir_buf.as_path();
        let store = Arc::new(SourceStorage {
            source: source.clone(),
            folder: folder.to_string(),
        });
        let array = Array::open(store, "/values").map_err(|e| StoreError::Zarr {
            store: dir.to_path_buf(),
            what: "open values/zarr.json".into(),
            message: e.to_string(),
        })?;
        if array.shape() != meta.shape.as_slice() {
            return Err(StoreError::Zarr {
                store: dir.to_path_buf(),
                what: "values/zarr.json".into(),
                message: format!(
                    "shape {:?} where the assembly says {:?}",
                    array.shape(),
                    meta.shape
                ),
            });
        }
        // `values/zarr.json` as JSON, once: the chunk grid is checked here and the codecs
        // choose the fast path.
        let m = serde_json::to_value(array.metadata()).unwrap_or(Value::Null);
        let grid = m["chunk_grid"]["configuration"]["chunk_shape"]
            .as_array()
            .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>());
        let elements = meta
            .chunk_shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= 1 << 32);
        if grid.as_ref() != Some(&meta.chunk_shape) || elements.is_none() {
            return Err(StoreError::Zarr {
                store: dir.to_path_buf(),
                what: "values/zarr.json".into(),
                message: format!(
                    "chunk shape {grid:?} where the assembly says {:?} (at most 2^32 values a chunk)",
                    meta.chunk_shape
                ),
            });
        }
        let fast = fast_path(&m, &meta);
        Ok(Assembly {
            source,
            folder: folder.to_string(),
            dir: dir_buf,
            meta,
            array,
            fast,
        })
    }

    /// The folder, as people find it: a path on disk, or (for a store read where it lies
    /// in a remote) a URL.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the files are read from.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// The assembly's folder in its [`Assembly::source`] (`""`: the root).
    pub fn folder(&self) -> &str {
        &self.folder
    }

    /// The metadata.
    pub fn meta(&self) -> &AssemblyMeta {
        &self.meta
    }

    /// The coordinate table of `dim`, checked against the assembly: one row per index, and
    /// the required id column (`stimulus_id` for presentations and stimuli, `neuroid_id`
    /// for neuroids) present as strings.
    pub fn coords(&self, dim: &str) -> Result<RecordBatch> {
        let Some(axis) = self.meta.dims.iter().position(|d| d == dim) else {
            return Err(StoreError::Request {
                store: self.dir.clone(),
                message: format!("no dimension `{dim}` (dims: {})", self.meta.dims.join(", ")),
            });
        };
        let file = format!("coords/{dim}.parquet");
        let coords_err = |column: &str, message: String| StoreError::Coords {
            store: self.dir.clone(),
            file: file.clone(),
            column: if column.is_empty() {
                String::new()
            } else {
                format!("column `{column}`: ")
            },
            message,
        };
        let bytes = match self.source.read(&join(&self.folder, &file)) {
            Ok(Some(b)) => b,
            Ok(None) => return Err(coords_err("", "No such file or directory".into())),
            Err(e) => return Err(coords_err("", e.to_string())),
        };
        let batch = parquet_from_bytes(bytes, &self.dir.join(&file))
            .map_err(|e| coords_err("", e.to_string()))?;
        if batch.num_rows() as u64 != self.meta.shape[axis] {
            return Err(coords_err(
                "",
                format!(
                    "{} rows for dimension `{dim}` of length {}",
                    batch.num_rows(),
                    self.meta.shape[axis]
                ),
            ));
        }
        if let Some(col) = required_column(dim) {
            match batch.schema().field_with_name(col) {
                Ok(f)
                    if matches!(
                        f.data_type(),
                        arrow::datatypes::DataType::Utf8
                            | arrow::datatypes::DataType::LargeUtf8
                            | arrow::datatypes::DataType::Utf8View
                    ) => {}
                Ok(f) => {
                    return Err(coords_err(
                        col,
                        format!("has type {} where strings are required", f.data_type()),
                    ));
                }
                Err(_) => return Err(coords_err(col, "is missing".into())),
            }
        }
        Ok(batch)
    }

    /// Every coordinate table, by dimension.
    pub fn all_coords(&self) -> Result<BTreeMap<String, RecordBatch>> {
        self.meta
            .dims
            .iter()
            .map(|d| Ok((d.clone(), self.coords(d)?)))
            .collect()
    }

    /// Grid indices of the chunks that intersect `ranges` (one range per dimension).
    pub fn chunks_in(&self, ranges: &[Range<u64>]) -> Vec<Vec<u64>> {
        let mut out: Vec<Vec<u64>> = vec![vec![]];
        for (d, r) in ranges.iter().enumerate() {
            let c = self.meta.chunk_shape[d];
            if r.start >= r.end {
                return vec![];
            }
            let (first, last) = (r.start / c, (r.end - 1) / c);
            out = out
                .into_iter()
                .flat_map(|prefix| {
                    (first..=last).map(move |i| {
                        let mut p = prefix.clone();
                        p.push(i);
                        p
                    })
                })
                .collect();
        }
        out
    }

    /// The store key of a chunk (`values/c/i/j`), for messages.
    pub fn chunk_key(&self, idx: &[u64]) -> String {
        let parts: Vec<String> = idx.iter().map(u64::to_string).collect();
        format!("values/c/{}", parts.join("/"))
    }

    /// Decode one chunk (full chunk shape, edge chunks padded with the fill value).
    pub fn read_chunk<T: ElementOwned>(&self, idx: &[u64]) -> Result<ArrayD<T>> {
        self.array
            .retrieve_chunk::<ArrayD<T>>(idx)
            .map_err(|e| StoreError::Zarr {
                store: self.dir.clone(),
                what: format!("chunk {idx:?} ({})", self.chunk_key(idx)),
                message: e.to_string(),
            })
    }

    /// Decode chunk `idx` of a float32 store into `out` (resized to the chunk's element
    /// count; row-major; edge chunks padded as stored). For our writer's layouts (bytes then
    /// zstd, in one block or in a shard of row bands) the chunk file is decompressed straight
    /// into `out`, so a scan that reuses one buffer allocates nothing per chunk; any other
    /// codec chain goes through zarrs.
    pub fn read_chunk_f32_into(&self, idx: &[u64], out: &mut Vec<f32>) -> Result<()> {
        self.read_chunk_rows_f32_into(idx, None, out).map(|_| ())
    }

    /// Like [`Assembly::read_chunk_f32_into`], but only the chunk's rows `rows` (relative to
    /// the chunk's first row, ascending) need be right: in a sharded chunk only the row bands
    /// holding them are read and decoded, and the other rows of `out` are left as they were
    /// (resized with NaN). Returns how many blocks were decoded (row bands, or 1 for a whole
    /// chunk).
    pub fn read_chunk_rows_f32_into(
        &self,
        idx: &[u64],
        rows: Option<&[u64]>,
        out: &mut Vec<f32>,
    ) -> Result<usize> {
        self.read_chunk_rows_f32_checked(
            idx,
            rows,
            out,
            |_| Ok::<(), std::convert::Infallible>(()),
        )?
        .map_err(|never| match never {})
    }

    /// [`Assembly::read_chunk_rows_f32_into`] with a check of the chunk's file before
    /// anything is decoded: `check` is called once, with the whole file's bytes when they were
    /// read whole (a chunk of our writer's layouts, all of a shard's rows asked for), else
    /// with `None` (the file is absent, only some row bands are read, or another codec chain
    /// decodes it) — so a caller that verifies chunk files against recorded digests reads
    /// each file once. The outer result is the store's; the inner one is `check`'s refusal,
    /// in which case nothing was decoded.
    pub fn read_chunk_rows_f32_checked<E>(
        &self,
        idx: &[u64],
        rows: Option<&[u64]>,
        out: &mut Vec<f32>,
        check: impl FnOnce(Option<&[u8]>) -> std::result::Result<(), E>,
    ) -> Result<std::result::Result<usize, E>> {
        let n = self.meta.chunk_shape.iter().product::<u64>() as usize;
        let fail = |message: String| StoreError::Zarr {
            store: self.dir.clone(),
            what: format!("chunk {idx:?} ({})", self.chunk_key(idx)),
            message,
        };
        match self.fast {
            FastPath::Plain(compression) => {
                let encoded = self
                    .array
                    .retrieve_encoded_chunk(idx)
                    .map_err(|e| fail(e.to_string()))?;
                if let Err(refused) = check(encoded.as_deref()) {
                    return Ok(Err(refused));
                }
                if let Some(encoded) = encoded {
                    out.resize(n, 0.0);
                    decompress(compression, &encoded, out).map_err(fail)?;
                    return Ok(Ok(1));
                }
                return self.read_chunk_fallback(idx, out).map(Ok);
            }
            FastPath::Sharded {
                compression,
                inner,
                inner_len,
                inner_rows,
            } => {
                let path = join(&self.folder, self.array.chunk_key(idx).as_str());
                let bands: Vec<usize> = match rows {
                    None => (0..inner).collect(),
                    Some(rows) => {
                        let cr = self.meta.chunk_shape[0];
                        if let Some(r) = rows.iter().find(|&&r| r >= cr) {
                            return Err(fail(format!("row {r} is outside the chunk's {cr} rows")));
                        }
                        let mut b: Vec<usize> =
                            rows.iter().map(|&r| (r / inner_rows) as usize).collect();
                        b.sort_unstable();
                        b.dedup();
                        b
                    }
                };
                let decode = |k: usize, entry: (u64, u64), frame: &[u8], out: &mut [f32]| {
                    let band = &mut out[k * inner_len..(k + 1) * inner_len];
                    if entry == (u64::MAX, u64::MAX) {
                        band.fill(f32::NAN);
                        Ok(())
                    } else {
                        decompress(compression, frame, band)
                            .map_err(|e| fail(format!("inner chunk {k}: {e}")))
                    }
                };
                let tail_len = inner * 16 + 4;
                if bands.len() == inner {
                    // The whole shard: one read.
                    let bytes = match self.source.read(&path) {
                        Ok(Some(b)) => b,
                        Ok(None) => {
                            if let Err(refused) = check(None) {
                                return Ok(Err(refused));
                            }
                            out.resize(n, f32::NAN);
                            out.fill(f32::NAN);
                            return Ok(Ok(inner));
                        }
                        Err(e) => return Err(fail(e.to_string())),
                    };
                    if let Err(refused) = check(Some(&bytes)) {
                        return Ok(Err(refused));
                    }
                    out.resize(n, f32::NAN);
                    let data_len = bytes.len().checked_sub(tail_len).ok_or_else(|| {
                        fail(format!("{} bytes: shorter than its index", bytes.len()))
                    })?;
                    let index =
                        shard_index(&bytes[data_len..], inner, data_len as u64).map_err(&fail)?;
                    for (k, &(off, len)) in index.iter().enumerate() {
                        let frame = if off == u64::MAX {
                            &[][..]
                        } else {
                            &bytes[off as usize..(off + len) as usize]
                        };
                        decode(k, (off, len), frame, out)?;
                    }
                    return Ok(Ok(inner));
                }
                // Some bands: the index, then each band's bytes.
                if let Err(refused) = check(None) {
                    return Ok(Err(refused));
                }
                out.resize(n, f32::NAN);
                let size = match self.source.size(&path) {
                    Ok(Some(size)) => size,
                    Ok(None) => {
                        for &k in &bands {
                            out[k * inner_len..(k + 1) * inner_len].fill(f32::NAN);
                        }
                        return Ok(Ok(bands.len()));
                    }
                    Err(e) => return Err(fail(e.to_string())),
                };
                let data_len = size
                    .checked_sub(tail_len as u64)
                    .ok_or_else(|| fail(format!("{size} bytes: shorter than its index")))?;
                let read = |ranges: &[Range<u64>], what: &str| match self
                    .source
                    .read_ranges(&path, ranges)
                {
                    Ok(Some(parts)) if parts.len() == ranges.len() => Ok(parts),
                    Ok(Some(_)) | Ok(None) => Err(fail(format!("{what}: the file went away"))),
                    Err(e) => Err(fail(format!("{what}: {e}"))),
                };
                let index_range = data_len..size;
                let tail = read(std::slice::from_ref(&index_range), "shard index")?;
                let index = shard_index(&tail[0], inner, data_len).map_err(&fail)?;
                // The bands wanted that hold bytes, in one request.
                let stored: Vec<usize> = bands
                    .iter()
                    .copied()
                    .filter(|&k| index[k].0 != u64::MAX)
                    .collect();
                let ranges: Vec<Range<u64>> = stored
                    .iter()
                    .map(|&k| index[k].0..index[k].0 + index[k].1)
                    .collect();
                let frames = if ranges.is_empty() {
                    Vec::new()
                } else {
                    read(&ranges, "inner chunks")?
                };
                for &k in &bands {
                    let frame = match stored.iter().position(|&s| s == k) {
                        Some(i) => &frames[i][..],
                        None => &[][..],
                    };
                    decode(k, index[k], frame, out)?;
                }
                return Ok(Ok(bands.len()));
            }
            FastPath::None => {}
        }
        if let Err(refused) = check(None) {
            return Ok(Err(refused));
        }
        self.read_chunk_fallback(idx, out).map(Ok)
    }

    /// A chunk decoded by zarrs (any codec chain; an absent chunk as the fill value).
    fn read_chunk_fallback(&self, idx: &[u64], out: &mut Vec<f32>) -> Result<usize> {
        let block = self.read_chunk::<f32>(idx)?;
        out.clear();
        out.extend(block.iter().copied());
        Ok(1)
    }

    fn check_ranges(&self, ranges: &[Range<u64>]) -> Result<()> {
        if ranges.len() != self.meta.dims.len()
            || ranges
                .iter()
                .zip(&self.meta.shape)
                .any(|(r, &n)| r.start > r.end || r.end > n)
        {
            return Err(StoreError::Request {
                store: self.dir.clone(),
                message: format!("ranges {ranges:?} do not fit shape {:?}", self.meta.shape),
            });
        }
        Ok(())
    }

    /// Read the block `ranges` (one range per dimension) in the stored element type `T`,
    /// decoding the chunks it touches in parallel. Errors name the chunk that failed.
    pub fn read<T: ElementOwned + Copy + Default + Send + Sync>(
        &self,
        ranges: &[Range<u64>],
    ) -> Result<ArrayD<T>> {
        self.check_ranges(ranges)?;
        let out_shape: Vec<usize> = ranges.iter().map(|r| (r.end - r.start) as usize).collect();
        let mut out = ArrayD::<T>::default(IxDyn(&out_shape));
        let chunks = self.chunks_in(ranges);
        let decoded: Vec<(Vec<u64>, ArrayD<T>)> = chunks
            .into_par_iter()
            .map(|idx| Ok((idx.clone(), self.read_chunk::<T>(&idx)?)))
            .collect::<Result<_>>()?;
        for (idx, chunk) in decoded {
            self.place(&mut out, ranges, &idx, chunk.view());
        }
        Ok(out)
    }

    /// Copy the part of chunk `idx` that lies in `ranges` into `out` (the block of `ranges`).
    fn place<T: Copy>(
        &self,
        out: &mut ArrayD<T>,
        ranges: &[Range<u64>],
        idx: &[u64],
        chunk: ndarray::ArrayViewD<T>,
    ) {
        let mut src = Vec::new();
        let mut dst = Vec::new();
        for (d, r) in ranges.iter().enumerate() {
            let c0 = idx[d] * self.meta.chunk_shape[d];
            let lo = r.start.max(c0);
            let hi = r.end.min(c0 + self.meta.chunk_shape[d]);
            src.push(SliceInfoElem::Slice {
                start: (lo - c0) as isize,
                end: Some((hi - c0) as isize),
                step: 1,
            });
            dst.push(SliceInfoElem::Slice {
                start: (lo - r.start) as isize,
                end: Some((hi - r.start) as isize),
                step: 1,
            });
        }
        out.slice_mut(dst.as_slice())
            .assign(&chunk.slice(src.as_slice()));
    }

    /// [`Assembly::read`] for float32 stores of our own layouts: through the fast path, so
    /// that in a sharded chunk only the row bands of the rows asked for are read.
    fn read_f32_fast(&self, ranges: &[Range<u64>]) -> Result<ArrayD<f32>> {
        self.check_ranges(ranges)?;
        let out_shape: Vec<usize> = ranges.iter().map(|r| (r.end - r.start) as usize).collect();
        let mut out = ArrayD::<f32>::default(IxDyn(&out_shape));
        let shape: Vec<usize> = self.meta.chunk_shape.iter().map(|&n| n as usize).collect();
        let cr = self.meta.chunk_shape[0];
        let decoded: Vec<(Vec<u64>, Vec<f32>)> = self
            .chunks_in(ranges)
            .into_par_iter()
            .map(|idx| {
                let c0 = idx[0] * cr;
                let rows: Vec<u64> =
                    (ranges[0].start.max(c0) - c0..ranges[0].end.min(c0 + cr) - c0).collect();
                let mut buf = Vec::new();
                let some = (rows.len() as u64) < cr;
                self.read_chunk_rows_f32_into(&idx, some.then_some(&rows[..]), &mut buf)?;
                Ok((idx, buf))
            })
            .collect::<Result<_>>()?;
        for (idx, buf) in decoded {
            let view = ndarray::ArrayViewD::from_shape(IxDyn(&shape), &buf).map_err(|e| {
                StoreError::Zarr {
                    store: self.dir.clone(),
                    what: format!("chunk {idx:?} ({})", self.chunk_key(&idx)),
                    message: e.to_string(),
                }
            })?;
            self.place(&mut out, ranges, &idx, view);
        }
        Ok(out)
    }

    /// Read `ranges` as f64, whatever the stored type.
    pub fn read_f64(&self, ranges: &[Range<u64>]) -> Result<ArrayD<f64>> {
        match self.meta.dtype {
            DType::Float64 => self.read::<f64>(ranges),
            DType::Float32 => Ok(self.read_f32(ranges)?.mapv(f64::from)),
        }
    }

    /// Read `ranges` as f32 (f64 values are rounded).
    pub fn read_f32(&self, ranges: &[Range<u64>]) -> Result<ArrayD<f32>> {
        match self.meta.dtype {
            DType::Float32 if self.fast != FastPath::None => self.read_f32_fast(ranges),
            DType::Float32 => self.read::<f32>(ranges),
            DType::Float64 => Ok(self.read::<f64>(ranges)?.mapv(|v| v as f32)),
        }
    }

    /// Full ranges of every dimension.
    pub fn full(&self) -> Vec<Range<u64>> {
        self.meta.shape.iter().map(|&n| 0..n).collect()
    }

    /// How many values are NaN (NaN is legal data: a missing recording).
    pub fn nan_count(&self) -> Result<u64> {
        let chunks = self.chunks_in(&self.full());
        chunks
            .into_par_iter()
            .map(|idx| {
                // Count only the in-bounds part of edge chunks.
                let ranges: Vec<Range<u64>> = idx
                    .iter()
                    .enumerate()
                    .map(|(d, &i)| {
                        let c0 = i * self.meta.chunk_shape[d];
                        c0..(c0 + self.meta.chunk_shape[d]).min(self.meta.shape[d])
                    })
                    .collect();
                let block = self.read_f64(&ranges)?;
                Ok(block.iter().filter(|v| v.is_nan()).count() as u64)
            })
            .sum()
    }
}

/// Every assembly under `root` (the folder itself, or any sub-folder up to a few levels
/// deep), in path order.
pub fn find_assemblies(root: &Path) -> Vec<PathBuf> {
    find_assemblies_in(&LocalDir::new(root), "")
        .into_iter()
        .map(|f| {
            if f.is_empty() {
                root.to_path_buf()
            } else {
                root.join(f)
            }
        })
        .collect()
}

/// Every assembly in `source` under its folder `folder` (the folder itself, or any
/// sub-folder up to a few levels deep), as folders of `source`, in path order.
pub fn find_assemblies_in(source: &dyn Source, folder: &str) -> Vec<String> {
    fn walk(source: &dyn Source, dir: &str, depth: usize, out: &mut Vec<String>) {
        if read_meta(source, dir).is_ok() {
            out.push(dir.to_string());
            return;
        }
        if depth == 0 {
            return;
        }
        for sub in source.folders(dir) {
            walk(source, &join(dir, &sub), depth - 1, out);
        }
    }
    let mut out = Vec::new();
    walk(source, folder, 4, &mut out);
    out
}

/// Which fast path reads the chunks of the array whose metadata is `m`: float32 as little-endian bytes compressed by zstd
/// or blosc alone, in one block or in shards of row bands (index at the end, bytes then crc32c), with
/// no storage transformer and the default chunk keys, on a little-endian machine.
fn fast_path(m: &Value, meta: &AssemblyMeta) -> FastPath {
    let names = |codecs: &Value| -> Vec<String> {
        codecs
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|x| x["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let little = |codecs: &Value| {
        matches!(
            codecs[0]["configuration"]["endian"].as_str(),
            None | Some("little")
        )
    };
    let keys = &m["chunk_key_encoding"];
    // Bands left out and missing chunk files are read as NaN: the fill value must be NaN.
    let general = cfg!(target_endian = "little")
        && m["data_type"].as_str() == Some("float32")
        && m["fill_value"].as_str() == Some("NaN")
        && keys["name"].as_str() == Some("default")
        && matches!(
            keys["configuration"]["separator"].as_str(),
            None | Some("/")
        )
        && m["storage_transformers"]
            .as_array()
            .is_none_or(|t| t.is_empty());
    if !general {
        return FastPath::None;
    }
    let compression = |codecs: &Value| match names(codecs).as_slice() {
        [b, z] if b == "bytes" && z == "zstd" && little(codecs) => Some(Compression::Zstd),
        [b, z] if b == "bytes" && z == "blosc" && little(codecs) => Some(Compression::Blosc),
        _ => None,
    };
    let codecs = &m["codecs"];
    if let Some(c) = compression(codecs) {
        return FastPath::Plain(c);
    }
    let conf = &codecs[0]["configuration"];
    let inner_shape: Option<Vec<u64>> = conf["chunk_shape"]
        .as_array()
        .and_then(|a| a.iter().map(Value::as_u64).collect());
    let chunk = &meta.chunk_shape;
    let inner_compression = compression(&conf["codecs"]);
    let sharded = names(codecs) == ["sharding_indexed"]
        && inner_compression.is_some()
        && names(&conf["index_codecs"]) == ["bytes", "crc32c"]
        && little(&conf["index_codecs"])
        && matches!(conf["index_location"].as_str(), None | Some("end"));
    match (inner_shape, inner_compression) {
        // Row bands of the chunk: every dimension but the first whole.
        (Some(inner), Some(compression))
            if sharded
                && inner.len() == chunk.len()
                && inner[1..] == chunk[1..]
                && inner[0] > 0
                && chunk[0].is_multiple_of(inner[0]) =>
        {
            FastPath::Sharded {
                compression,
                inner: (chunk[0] / inner[0]) as usize,
                inner_len: inner.iter().product::<u64>() as usize,
                inner_rows: inner[0],
            }
        }
        _ => FastPath::None,
    }
}
