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
use zarrs::filesystem::FilesystemStore;

use crate::FORMAT;
use crate::coords::read_parquet;
use crate::error::{Result, StoreError};

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
    /// Chunk shape.
    pub chunk_shape: Vec<u64>,
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
    dir: PathBuf,
    meta: AssemblyMeta,
    array: Array<FilesystemStore>,
    /// float32 values stored as little-endian bytes compressed by zstd and nothing else (what
    /// our writer writes): [`Assembly::read_chunk_f32_into`] decompresses such chunks
    /// straight into the caller's buffer.
    plain_zstd_f32: bool,
}

impl std::fmt::Debug for Assembly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assembly")
            .field("dir", &self.dir)
            .field("meta", &self.meta)
            .finish()
    }
}

/// Read the `ventral` attributes of the group at `dir`.
pub(crate) fn read_meta(dir: &Path) -> Result<AssemblyMeta> {
    let path = dir.join("zarr.json");
    let text = std::fs::read_to_string(&path).map_err(|e| StoreError::NotAnAssembly {
        path: dir.to_path_buf(),
        message: format!("zarr.json: {e}"),
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| StoreError::NotAnAssembly {
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
        let meta = read_meta(dir)?;
        let store = Arc::new(FilesystemStore::new(dir).map_err(|e| StoreError::Zarr {
            store: dir.to_path_buf(),
            what: "open the store".into(),
            message: e.to_string(),
        })?);
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
        let plain_zstd_f32 = plain_zstd_f32(&array);
        Ok(Assembly {
            dir: dir.to_path_buf(),
            meta,
            array,
            plain_zstd_f32,
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
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
        let batch =
            read_parquet(&self.dir.join(&file)).map_err(|e| coords_err("", e.to_string()))?;
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
    /// count; row-major; edge chunks padded as stored). For our writer's codecs (bytes,
    /// then zstd) the chunk file is decompressed straight into `out`, so a scan that reuses
    /// one buffer allocates nothing per chunk; any other codec chain goes through zarrs.
    pub fn read_chunk_f32_into(&self, idx: &[u64], out: &mut Vec<f32>) -> Result<()> {
        let n = self.meta.chunk_shape.iter().product::<u64>() as usize;
        let fail = |message: String| StoreError::Zarr {
            store: self.dir.clone(),
            what: format!("chunk {idx:?} ({})", self.chunk_key(idx)),
            message,
        };
        if self.plain_zstd_f32 {
            let encoded = self
                .array
                .retrieve_encoded_chunk(idx)
                .map_err(|e| fail(e.to_string()))?;
            if let Some(encoded) = encoded {
                out.resize(n, 0.0);
                let bytes: &mut [u8] = bytemuck::cast_slice_mut(out.as_mut_slice());
                let written = zstd::bulk::decompress_to_buffer(&encoded, bytes)
                    .map_err(|e| fail(format!("zstd: {e}")))?;
                if written != n * 4 {
                    return Err(fail(format!(
                        "decoded {written} bytes where the chunk holds {} ({n} float32)",
                        n * 4
                    )));
                }
                return Ok(());
            }
        }
        let block = self.read_chunk::<f32>(idx)?;
        out.clear();
        out.extend(block.iter().copied());
        Ok(())
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
        Ok(out)
    }

    /// Read `ranges` as f64, whatever the stored type.
    pub fn read_f64(&self, ranges: &[Range<u64>]) -> Result<ArrayD<f64>> {
        match self.meta.dtype {
            DType::Float64 => self.read::<f64>(ranges),
            DType::Float32 => Ok(self.read::<f32>(ranges)?.mapv(f64::from)),
        }
    }

    /// Read `ranges` as f32 (f64 values are rounded).
    pub fn read_f32(&self, ranges: &[Range<u64>]) -> Result<ArrayD<f32>> {
        match self.meta.dtype {
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
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        if read_meta(dir).is_ok() {
            out.push(dir.to_path_buf());
            return;
        }
        if depth == 0 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut subs: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| e.path())
            .collect();
        subs.sort();
        for s in subs {
            walk(&s, depth - 1, out);
        }
    }
    let mut out = Vec::new();
    walk(root, 4, &mut out);
    out
}

/// Whether `array` holds float32 as little-endian bytes compressed by zstd alone, with no
/// storage transformer (and this machine is little-endian).
fn plain_zstd_f32(array: &Array<FilesystemStore>) -> bool {
    let Ok(m) = serde_json::to_value(array.metadata()) else {
        return false;
    };
    let names: Vec<&str> = m["codecs"]
        .as_array()
        .map(|c| c.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    let endian = m["codecs"][0]["configuration"]["endian"].as_str();
    cfg!(target_endian = "little")
        && m["data_type"].as_str() == Some("float32")
        && names == ["bytes", "zstd"]
        && matches!(endian, None | Some("little"))
        && m["storage_transformers"]
            .as_array()
            .is_none_or(|t| t.is_empty())
}
