//! Reading BrainIO DataAssemblies in netCDF4 (HDF5), through `hdf5-metno`.
//!
//! The layout xarray writes (see SPEC "BrainIO formats"): one HDF5 dataset per variable;
//! each dimension is a dataset marked as an HDF5 *dimension scale* (`CLASS =
//! DIMENSION_SCALE`), either a coordinate variable of its own or, for a dimension without
//! one, an empty dataset whose `NAME` says "This is a netCDF dimension but not a netCDF
//! variable"; every other variable names its dimensions with a `DIMENSION_LIST` attribute of
//! object references to those scales. The data variable is the one that lists the others in
//! its `coordinates` attribute (`data`, `__xarray_dataarray_variable__` or the assembly's
//! name); every MultiIndex level is a 1-D variable on its dimension.
//!
//! [`NcFile::open`] reads that structure (no values); [`ingest_netcdf`] streams the values into
//! one of our assemblies band by band along the presentation dimension (bounded memory) and
//! keeps everything [`crate::write`] needs to write the same file back.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use hdf5::types::{FloatSize, IntSize, TypeDescriptor, VarLenArray, VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, File, Hyperslab, ObjectReference1, ReferencedObject, SliceOrIndex};
use serde_json::{Value, json};
use std::sync::Arc;
use ventral_store::{AssemblySpec, AssemblyWriter, DType};

use ventral_ingest::netcdf::{
    AssemblySummary, BrainioLayout, Column, DIM_ONLY_PREFIX, IngestOptions, NcHeader, NcType,
    NcVariable,
};
use ventral_ingest::{IngestError, Result, invalid};

/// Attributes that belong to the HDF5/netCDF encoding, not to the data.
const ENCODING_ATTRS: &[&str] = &[
    "CLASS",
    "NAME",
    "REFERENCE_LIST",
    "DIMENSION_LIST",
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_NCProperties",
    "_FillValue",
    "missing_value",
    "scale_factor",
    "add_offset",
    "coordinates",
    "_nc3_strict",
];

/// The element type of an HDF5 type, if netCDF has one for it.
fn nc_type(d: &TypeDescriptor) -> Option<NcType> {
    Some(match d {
        TypeDescriptor::Integer(IntSize::U1) => NcType::Int8,
        TypeDescriptor::Integer(IntSize::U2) => NcType::Int16,
        TypeDescriptor::Integer(IntSize::U4) => NcType::Int32,
        TypeDescriptor::Integer(IntSize::U8) => NcType::Int64,
        TypeDescriptor::Unsigned(IntSize::U1) => NcType::Uint8,
        TypeDescriptor::Unsigned(IntSize::U2) => NcType::Uint16,
        TypeDescriptor::Unsigned(IntSize::U4) => NcType::Uint32,
        TypeDescriptor::Unsigned(IntSize::U8) => NcType::Uint64,
        TypeDescriptor::Boolean => NcType::Int8,
        TypeDescriptor::Float(FloatSize::U4) => NcType::Float32,
        TypeDescriptor::Float(FloatSize::U8) => NcType::Float64,
        TypeDescriptor::FixedAscii(_)
        | TypeDescriptor::FixedUnicode(_)
        | TypeDescriptor::VarLenAscii
        | TypeDescriptor::VarLenUnicode => NcType::Str,
        _ => return None,
    })
}

/// The structure of a BrainIO netCDF file.
#[derive(Debug)]
pub struct NcFile {
    /// The file.
    pub path: PathBuf,
    file: File,
    /// The data variable.
    pub data: NcVariable,
    /// Lengths of the data variable's dimensions, in its order.
    pub shape: Vec<usize>,
    /// The coordinate variables (1-D, on the data variable's dims), in file order.
    pub coords: Vec<NcVariable>,
    /// Global attributes (each `{"dtype", "value"}`).
    pub global_attrs: BTreeMap<String, Value>,
    /// `_FillValue`/`missing_value`, `scale_factor`, `add_offset` of the data variable.
    decode: Decode,
}

impl NcFile {
    /// What the file holds, without the open handle: the answer of the worker's `header`.
    pub fn header(&self) -> NcHeader {
        NcHeader {
            path: self.path.clone(),
            data: self.data.clone(),
            shape: self.shape.clone(),
            coords: self.coords.clone(),
            global_attrs: self.global_attrs.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Decode {
    fill: Option<f64>,
    missing: Option<f64>,
    scale: Option<f64>,
    offset: Option<f64>,
}

fn h5(path: &Path, field: &str, e: impl std::fmt::Display) -> IngestError {
    invalid(path, field, e.to_string())
}

fn short_name(ds: &Dataset) -> String {
    ds.name().trim_start_matches('/').to_string()
}

fn attr_string(ds: &Dataset, name: &str) -> Option<String> {
    let a = ds.attr(name).ok()?;
    match attr_value(&a).ok()? {
        Value::Object(o) => o.get("value").and_then(|v| v.as_str()).map(str::to_string),
        _ => None,
    }
}

/// An attribute as `{"dtype": …, "value": scalar or list}` (NaN as `null`).
fn attr_value(a: &hdf5::Attribute) -> hdf5::Result<Value> {
    let desc = a.dtype()?.to_descriptor()?;
    let scalar = a.is_scalar();
    let ty = nc_type(&desc);
    let pack = |dtype: &str, mut values: Vec<Value>| {
        let value = if scalar && values.len() == 1 {
            values.remove(0)
        } else {
            Value::Array(values)
        };
        json!({"dtype": dtype, "value": value})
    };
    let name = |t: NcType| {
        serde_json::to_value(t)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    Ok(match (ty, &desc) {
        (Some(NcType::Str), TypeDescriptor::VarLenUnicode) => pack(
            "str",
            a.read_raw::<VarLenUnicode>()?
                .iter()
                .map(|s| Value::from(s.as_str()))
                .collect(),
        ),
        (Some(NcType::Str), TypeDescriptor::VarLenAscii) => pack(
            "str",
            a.read_raw::<VarLenAscii>()?
                .iter()
                .map(|s| Value::from(s.as_str()))
                .collect(),
        ),
        (Some(NcType::Str), _) => {
            // Fixed-length strings: read the raw bytes and cut at the first NUL.
            let size = a.dtype()?.size();
            let n = a.space()?.size().max(1);
            let mut buf = vec![0u8; size * n];
            let tid = a.dtype()?;
            read_attr_bytes(a, &tid, &mut buf)?;
            pack(
                "str",
                buf.chunks(size)
                    .map(|c| {
                        let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                        Value::from(String::from_utf8_lossy(&c[..end]).trim_end().to_string())
                    })
                    .collect(),
            )
        }
        (Some(t), _) if t.is_signed() => pack(
            &name(t),
            a.read_raw::<i64>()?.into_iter().map(Value::from).collect(),
        ),
        (Some(t), _) if t.is_unsigned() => pack(
            &name(t),
            a.read_raw::<u64>()?.into_iter().map(Value::from).collect(),
        ),
        (Some(t), _) => pack(
            &name(t),
            a.read_raw::<f64>()?
                .into_iter()
                .map(|x| {
                    serde_json::Number::from_f64(x)
                        .map(Value::Number)
                        .unwrap_or(Value::Null)
                })
                .collect(),
        ),
        (None, _) => json!({"dtype": "unsupported", "value": desc.to_string()}),
    })
}

fn read_attr_bytes(a: &hdf5::Attribute, tid: &hdf5::Datatype, buf: &mut [u8]) -> hdf5::Result<()> {
    // SAFETY: `buf` holds `size × count` bytes, exactly what H5Aread writes for the
    // attribute's own (fixed-size string) type; the call holds hdf5-metno's library lock.
    let rc = hdf5::sync::sync(|| unsafe {
        hdf5_sys::h5a::H5Aread(a.id(), tid.id(), buf.as_mut_ptr().cast())
    });
    if rc < 0 {
        return Err(hdf5::Error::from("H5Aread failed"));
    }
    Ok(())
}

fn attrs_of(loc: &hdf5::Location, path: &Path, what: &str) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    let names = loc.attr_names().map_err(|e| h5(path, what, e))?;
    for n in names {
        if ENCODING_ATTRS.contains(&n.as_str()) {
            continue;
        }
        let a = loc
            .attr(&n)
            .map_err(|e| h5(path, &format!("{what} attribute `{n}`"), e))?;
        let v = attr_value(&a).map_err(|e| h5(path, &format!("{what} attribute `{n}`"), e))?;
        out.insert(n, v);
    }
    Ok(out)
}

fn attr_f64(ds: &Dataset, name: &str) -> Option<f64> {
    let a = ds.attr(name).ok()?;
    a.read_raw::<f64>().ok()?.first().copied()
}

/// The dimension names of `ds` through its `DIMENSION_LIST` references.
fn dims_of(file: &File, ds: &Dataset, path: &Path) -> Result<Vec<String>> {
    let name = short_name(ds);
    let Ok(a) = ds.attr("DIMENSION_LIST") else {
        if attr_string(ds, "CLASS").as_deref() == Some("DIMENSION_SCALE") && ds.ndim() == 1 {
            return Ok(vec![name]);
        }
        if ds.ndim() == 0 {
            return Ok(vec![]);
        }
        return Err(invalid(
            path,
            format!("variable `{name}`"),
            "has no DIMENSION_LIST: not a netCDF4 file written by xarray/netCDF (plain HDF5 \
             datasets have no named dimensions)",
        ));
    };
    let lists = a
        .read_raw::<VarLenArray<ObjectReference1>>()
        .map_err(|e| h5(path, &format!("variable `{name}` DIMENSION_LIST"), e))?;
    let mut dims = Vec::with_capacity(lists.len());
    for (i, refs) in lists.iter().enumerate() {
        let Some(r) = refs.first() else {
            return Err(invalid(
                path,
                format!("variable `{name}` DIMENSION_LIST"),
                format!("dimension {i} has no scale attached"),
            ));
        };
        match file.dereference(r) {
            Ok(ReferencedObject::Dataset(scale)) => dims.push(short_name(&scale)),
            Ok(_) => {
                return Err(invalid(
                    path,
                    format!("variable `{name}` DIMENSION_LIST"),
                    format!("dimension {i} refers to something other than a dataset"),
                ));
            }
            Err(e) => return Err(h5(path, &format!("variable `{name}` DIMENSION_LIST"), e)),
        }
    }
    if dims.len() != ds.ndim() {
        return Err(invalid(
            path,
            format!("variable `{name}` DIMENSION_LIST"),
            format!("{} entries for {} dimensions", dims.len(), ds.ndim()),
        ));
    }
    Ok(dims)
}

impl NcFile {
    /// Read the structure of the netCDF4 file at `path`.
    pub fn open(path: &Path) -> Result<NcFile> {
        hdf5::silence_errors(true);
        let file = File::open(path).map_err(|e| {
            invalid(
                path,
                "file",
                format!("cannot be opened as netCDF4/HDF5 (truncated or not HDF5?): {e}"),
            )
        })?;
        let root: &hdf5::Group = &file;
        let names = root
            .member_names_by(
                hdf5::IndexType::CreationOrder,
                hdf5::IterationOrder::Increasing,
            )
            .or_else(|_| root.member_names())
            .map_err(|e| h5(path, "root group", e))?;
        struct Var {
            ds: Dataset,
            name: String,
            dim_only: bool,
            coordinates: Option<Vec<String>>,
        }
        let mut vars = Vec::new();
        for n in names {
            let Ok(ds) = root.dataset(&n) else { continue };
            let is_scale = attr_string(&ds, "CLASS").as_deref() == Some("DIMENSION_SCALE");
            let dim_only = is_scale
                && attr_string(&ds, "NAME").is_some_and(|s| s.starts_with(DIM_ONLY_PREFIX));
            let coordinates = attr_string(&ds, "coordinates")
                .map(|s| s.split_whitespace().map(str::to_string).collect());
            vars.push(Var {
                ds,
                name: n,
                dim_only,
                coordinates,
            });
        }
        // The data variable: not a dimension, not named by anyone's `coordinates`.
        let listed: Vec<&String> = vars
            .iter()
            .filter_map(|v| v.coordinates.as_ref())
            .flatten()
            .collect();
        let candidates: Vec<&Var> = vars
            .iter()
            .filter(|v| {
                !v.dim_only
                    && attr_string(&v.ds, "CLASS").as_deref() != Some("DIMENSION_SCALE")
                    && !listed.contains(&&v.name)
            })
            .collect();
        let data = match candidates.as_slice() {
            [one] => *one,
            [] => {
                return Err(invalid(
                    path,
                    "data variable",
                    "none found (every variable is a dimension or a coordinate)",
                ));
            }
            many => {
                let named = ["data", "__xarray_dataarray_variable__"];
                match named
                    .iter()
                    .find_map(|want| many.iter().find(|v| v.name == *want))
                {
                    Some(v) => *v,
                    None => {
                        return Err(invalid(
                            path,
                            "data variable",
                            format!(
                                "ambiguous: {} (a DataAssembly file holds one)",
                                many.iter()
                                    .map(|v| format!("`{}`", v.name))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
            }
        };
        let data_dims = dims_of(&file, &data.ds, path)?;
        let shape = data.ds.shape();
        let dtype_desc = data
            .ds
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(|e| h5(path, &format!("variable `{}`", data.name), e))?;
        let dtype = match nc_type(&dtype_desc) {
            Some(NcType::Str) | None => {
                return Err(invalid(
                    path,
                    format!("variable `{}`", data.name),
                    format!("has type {dtype_desc}; a DataAssembly holds numbers"),
                ));
            }
            Some(t) => t,
        };
        let decode = Decode {
            fill: attr_f64(&data.ds, "_FillValue"),
            missing: attr_f64(&data.ds, "missing_value"),
            scale: attr_f64(&data.ds, "scale_factor"),
            offset: attr_f64(&data.ds, "add_offset"),
        };
        let data_var = NcVariable {
            name: data.name.clone(),
            dims: data_dims.clone(),
            dtype,
            attrs: attrs_of(&data.ds, path, &format!("variable `{}`", data.name))?,
        };
        let mut coords = Vec::new();
        for v in &vars {
            if v.dim_only || v.name == data.name {
                continue;
            }
            let field = format!("variable `{}`", v.name);
            let dims = dims_of(&file, &v.ds, path)?;
            let [dim] = dims.as_slice() else {
                return Err(invalid(
                    path,
                    field,
                    format!(
                        "has dimensions ({}); only 1-D coordinates are supported",
                        dims.join(", ")
                    ),
                ));
            };
            let Some(axis) = data_dims.iter().position(|d| d == dim) else {
                tracing::warn!(file = %path.display(), variable = %v.name, "skipped: its dimension `{dim}` is not one of the data variable's");
                continue;
            };
            if v.ds.shape() != [shape[axis]] {
                return Err(invalid(
                    path,
                    field,
                    format!(
                        "has length {:?} on dimension `{dim}` of length {}",
                        v.ds.shape(),
                        shape[axis]
                    ),
                ));
            }
            let desc =
                v.ds.dtype()
                    .and_then(|t| t.to_descriptor())
                    .map_err(|e| h5(path, &field, e))?;
            let Some(dtype) = nc_type(&desc) else {
                return Err(invalid(path, field, format!("has unsupported type {desc}")));
            };
            coords.push(NcVariable {
                name: v.name.clone(),
                dims,
                dtype,
                attrs: attrs_of(&v.ds, path, &field)?,
            });
        }
        let global_attrs = attrs_of(&file, path, "global attributes")?;
        Ok(NcFile {
            path: path.to_path_buf(),
            file,
            data: data_var,
            shape,
            coords,
            global_attrs,
            decode,
        })
    }

    /// Read one coordinate variable's values.
    pub fn read_column(&self, var: &NcVariable) -> Result<Column> {
        let field = format!("variable `{}`", var.name);
        let ds = self
            .file
            .dataset(&var.name)
            .map_err(|e| h5(&self.path, &field, e))?;
        let err = |e: hdf5::Error| h5(&self.path, &field, e);
        Ok(match var.dtype {
            NcType::Str => {
                let desc = ds.dtype().and_then(|t| t.to_descriptor()).map_err(err)?;
                match desc {
                    TypeDescriptor::VarLenUnicode => Column::Str(
                        ds.read_raw::<VarLenUnicode>()
                            .map_err(err)?
                            .iter()
                            .map(|s| s.as_str().to_string())
                            .collect(),
                    ),
                    TypeDescriptor::VarLenAscii => Column::Str(
                        ds.read_raw::<VarLenAscii>()
                            .map_err(err)?
                            .iter()
                            .map(|s| s.as_str().to_string())
                            .collect(),
                    ),
                    _ => {
                        let tid = ds.dtype().map_err(err)?;
                        let size = tid.size();
                        let mut buf = vec![0u8; size * ds.size()];
                        // SAFETY: `buf` holds `size × count` bytes, what H5Dread writes for
                        // the dataset's own fixed-size string type over the whole space.
                        let rc = hdf5::sync::sync(|| unsafe {
                            hdf5_sys::h5d::H5Dread(
                                ds.id(),
                                tid.id(),
                                hdf5_sys::h5s::H5S_ALL,
                                hdf5_sys::h5s::H5S_ALL,
                                hdf5_sys::h5p::H5P_DEFAULT,
                                buf.as_mut_ptr().cast(),
                            )
                        });
                        if rc < 0 {
                            return Err(invalid(
                                &self.path,
                                field,
                                "fixed-length strings could not be read",
                            ));
                        }
                        Column::Str(
                            buf.chunks(size)
                                .map(|c| {
                                    let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                                    String::from_utf8_lossy(&c[..end]).to_string()
                                })
                                .collect(),
                        )
                    }
                }
            }
            t if t.is_signed() => Column::Int(ds.read_raw::<i64>().map_err(err)?),
            t if t.is_unsigned() => Column::UInt(ds.read_raw::<u64>().map_err(err)?),
            NcType::Float32 => Column::F32(ds.read_raw::<f32>().map_err(err)?),
            _ => Column::F64(ds.read_raw::<f64>().map_err(err)?),
        })
    }

    /// Read the data variable's values for `range` along axis `axis` (all of every other
    /// axis), in the file's dimension order, decoded as xarray decodes them (`_FillValue` and
    /// `missing_value` become NaN, `scale_factor`/`add_offset` applied).
    pub fn read_band<T>(
        &self,
        axis: usize,
        range: std::ops::Range<usize>,
    ) -> Result<ndarray::ArrayD<T>>
    where
        T: hdf5::H5Type + num_like::Float,
    {
        let field = format!("variable `{}`", self.data.name);
        let ds = self
            .file
            .dataset(&self.data.name)
            .map_err(|e| h5(&self.path, &field, e))?;
        let sel: Vec<SliceOrIndex> = self
            .shape
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let (start, end) = if i == axis {
                    (range.start, range.end)
                } else {
                    (0, n)
                };
                SliceOrIndex::SliceTo {
                    start,
                    step: 1,
                    end,
                    block: 1,
                }
            })
            .collect();
        let mut band: ndarray::ArrayD<T> = ds
            .read_slice(Hyperslab::new(sel))
            .map_err(|e| h5(&self.path, &format!("{field} rows {range:?}"), e))?;
        let d = self.decode;
        let masks = |x: Option<f64>| x.is_some_and(|v| !v.is_nan());
        if masks(d.fill) || masks(d.missing) || d.scale.is_some() || d.offset.is_some() {
            band.mapv_inplace(|x| {
                let v = x.to_f64();
                if d.fill.is_some_and(|f| f == v && !f.is_nan())
                    || d.missing.is_some_and(|m| m == v && !m.is_nan())
                {
                    return T::from_f64(f64::NAN);
                }
                if d.scale.is_none() && d.offset.is_none() {
                    return x;
                }
                T::from_f64(v * d.scale.unwrap_or(1.0) + d.offset.unwrap_or(0.0))
            });
        }
        Ok(band)
    }
}

/// Tiny float abstraction for the two value types.
pub mod num_like {
    /// f32 or f64.
    pub trait Float: Copy + Default + Send + Sync + 'static {
        /// Widen.
        fn to_f64(self) -> f64;
        /// Narrow.
        fn from_f64(x: f64) -> Self;
    }
    impl Float for f32 {
        fn to_f64(self) -> f64 {
            self as f64
        }
        fn from_f64(x: f64) -> Self {
            x as f32
        }
    }
    impl Float for f64 {
        fn to_f64(self) -> f64 {
            self
        }
        fn from_f64(x: f64) -> Self {
            x
        }
    }
}

/// Dimensions that index stimuli and must carry `stimulus_id`.
fn is_stimulus_dim(d: &str) -> bool {
    d == "presentation" || d == "stimulus"
}

/// Ingest the BrainIO netCDF file `path` into a new assembly at `out` (which must not
/// exist). On error nothing is left at `out`.
pub fn ingest_netcdf(path: &Path, out: &Path, opts: &IngestOptions) -> Result<AssemblySummary> {
    let nc = NcFile::open(path)?;
    let stimuli = match &opts.stimuli {
        Some(dir) => {
            let (meta, table) = ventral_ingest::stimuli::open_stimulus_set(dir)?;
            Some((meta.identifier, table))
        }
        None => None,
    };
    ventral_ingest::write_fresh(out, |tmp| ingest_open(&nc, tmp, opts, stimuli.as_ref()))
}

fn ingest_open(
    nc: &NcFile,
    out: &Path,
    opts: &IngestOptions,
    stimuli: Option<&(String, RecordBatch)>,
) -> Result<AssemblySummary> {
    let path = nc.path.as_path();
    let file_dims = nc.data.dims.clone();
    // Store order: the stimulus dimension first (rows are stimuli), others as in the file.
    let mut store_dims: Vec<String> = file_dims
        .iter()
        .filter(|d| is_stimulus_dim(d))
        .cloned()
        .collect();
    store_dims.extend(file_dims.iter().filter(|d| !is_stimulus_dim(d)).cloned());
    let perm: Vec<usize> = store_dims
        .iter()
        .map(|d| file_dims.iter().position(|f| f == d).unwrap_or(0))
        .collect();
    let store_shape: Vec<usize> = perm.iter().map(|&i| nc.shape[i]).collect();

    // Coordinate tables.
    let mut tables: Vec<(String, RecordBatch)> = Vec::new();
    let mut summary_coords = BTreeMap::new();
    for (axis, dim) in store_dims.iter().enumerate() {
        let n = store_shape[axis];
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        let mut columns: HashMap<String, Column> = HashMap::new();
        for v in nc.coords.iter().filter(|v| v.dims[0] == *dim) {
            let col = nc.read_column(v)?;
            columns.insert(v.name.clone(), col);
        }
        for v in nc.coords.iter().filter(|v| v.dims[0] == *dim) {
            let mut col = columns[&v.name].clone();
            // Ids are strings in our stores; the original type is kept for export.
            if (v.name == "neuroid_id" || v.name == "stimulus_id") && !matches!(col, Column::Str(_))
            {
                col = Column::Str(col.to_strings());
            }
            fields.push(Field::new(
                &v.name,
                col.to_arrow().data_type().clone(),
                true,
            ));
            arrays.push(col.to_arrow());
        }
        if is_stimulus_dim(dim) && !columns.contains_key("stimulus_id") {
            // Legacy files name the stimulus `image_id` (Brain-Score's loader does the same).
            let Some(ids) = columns.get("image_id") else {
                return Err(invalid(
                    path,
                    format!("dimension `{dim}`"),
                    "has neither a `stimulus_id` nor an `image_id` coordinate",
                ));
            };
            let ids = Column::Str(ids.to_strings());
            fields.push(Field::new("stimulus_id", DataType::Utf8, true));
            arrays.push(ids.to_arrow());
            columns.insert("stimulus_id".into(), ids);
        }
        if dim == "neuroid" && !columns.contains_key("neuroid_id") {
            return Err(invalid(
                path,
                "dimension `neuroid`",
                "has no `neuroid_id` coordinate",
            ));
        }
        if is_stimulus_dim(dim) {
            let ids = columns["stimulus_id"].to_strings();
            if let Some((set_id, stimuli)) = stimuli {
                join_stimuli(path, set_id, &ids, stimuli, &mut fields, &mut arrays)?;
            }
        }
        if fields.is_empty() {
            // A dimension without coordinates gets its position, so the table has rows.
            fields.push(Field::new(format!("{dim}_index"), DataType::Int64, false));
            arrays.push(Arc::new(Int64Array::from_iter_values(0..n as i64)));
        }
        summary_coords.insert(
            dim.clone(),
            fields.iter().map(|f| f.name().clone()).collect(),
        );
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| invalid(path, format!("dimension `{dim}`"), e.to_string()))?;
        tables.push((dim.clone(), batch));
    }

    let identifier = opts
        .identifier
        .clone()
        .or_else(|| {
            nc.global_attrs
                .get("identifier")
                .and_then(|v| v.get("value"))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "assembly".into())
        });
    let kind = if store_dims.iter().any(|d| d == "neuroid") {
        "neural"
    } else if store_dims.iter().any(|d| d == "choice") {
        "behavioural"
    } else {
        "brainio"
    };
    let inner: Vec<u64> = store_shape[1..].iter().map(|&n| n as u64).collect();
    let dims_ref: Vec<&str> = store_dims.iter().map(String::as_str).collect();
    let mut spec = AssemblySpec::new(&identifier, kind, &dims_ref, &inner);
    spec.producer = opts.producer.clone();
    let layout = BrainioLayout {
        source: path
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default(),
        data: nc.data.clone(),
        coords: nc.coords.clone(),
        global_attrs: nc.global_attrs.clone(),
    };
    spec.attrs.insert(
        "brainio".into(),
        serde_json::to_value(&layout).map_err(|e| invalid(path, "layout", e.to_string()))?,
    );
    if let Some((set_id, _)) = stimuli {
        spec.attrs.insert(
            "stimulus_set_identifier".into(),
            Value::from(set_id.clone()),
        );
    } else if let Some(s) = nc
        .global_attrs
        .get("stimulus_set_identifier")
        .and_then(|v| v.get("value"))
        .and_then(|v| v.as_str())
    {
        spec.attrs
            .insert("stimulus_set_identifier".into(), Value::from(s));
    }
    let axis = perm[0];
    let rows = store_shape[0];
    let row_len: usize = store_shape[1..].iter().product::<usize>().max(1);
    let band_rows = (opts.band_elements.unwrap_or(4 << 20) / row_len).max(1);
    let (meta, nan_count) = match nc.data.dtype {
        NcType::Float32 => {
            spec.dtype = DType::Float32;
            copy_values::<f32>(nc, out, spec, axis, rows, band_rows, &perm, tables)?
        }
        _ => {
            spec.dtype = DType::Float64;
            copy_values::<f64>(nc, out, spec, axis, rows, band_rows, &perm, tables)?
        }
    };
    Ok(AssemblySummary {
        identifier: meta.identifier,
        kind: meta.kind,
        dims: meta.dims,
        shape: meta.shape,
        dtype: meta.dtype.name().to_string(),
        coords: summary_coords,
        nan_count,
    })
}

#[allow(clippy::too_many_arguments)]
fn copy_values<T>(
    nc: &NcFile,
    out: &Path,
    spec: AssemblySpec,
    axis: usize,
    rows: usize,
    band_rows: usize,
    perm: &[usize],
    tables: Vec<(String, RecordBatch)>,
) -> Result<(ventral_store::AssemblyMeta, u64)>
where
    T: hdf5::H5Type + num_like::Float + ventral_store::StoreValue,
{
    let mut w = AssemblyWriter::<T>::create(out, spec)?;
    let mut nan = 0u64;
    let identity = perm.iter().enumerate().all(|(i, &p)| i == p);
    // Store order is the file's with `axis` moved to the front.
    let moves_axis = perm[0] == axis
        && perm[1..]
            .iter()
            .copied()
            .eq((0..perm.len()).filter(|&i| i != axis));
    let mut moved: Vec<T> = Vec::new();
    let mut start = 0;
    while start < rows {
        let end = (start + band_rows).min(rows);
        let mut band = nc.read_band::<T>(axis, start..end)?;
        if !band.is_standard_layout() {
            band = band.as_standard_layout().into_owned();
        }
        let shape = band.shape().to_vec();
        let Some(data) = band.as_slice() else {
            unreachable!("a standard-layout array has a slice")
        };
        nan += data.iter().filter(|x| x.to_f64().is_nan()).count() as u64;
        if identity {
            w.append(data)?;
        } else if moves_axis {
            let a: usize = shape[..axis].iter().product();
            let b: usize = shape[axis + 1..].iter().product();
            move_axis_to_front(data, a, shape[axis], b, &mut moved);
            w.append(&moved)?;
        } else {
            let v: Vec<T> = band.permuted_axes(perm.to_vec()).iter().copied().collect();
            w.append(&v)?;
        }
        start = end;
    }
    if rows == 0 {
        w.append(&[])?;
    }
    let meta = w.finish(tables)?;
    Ok((meta, nan))
}

/// `out[p][i][j] = data[i][p][j]` for `data` of shape `(a, p, b)`, in cache-sized tiles.
fn move_axis_to_front<T: Copy + Default>(
    data: &[T],
    a: usize,
    p: usize,
    b: usize,
    out: &mut Vec<T>,
) {
    out.clear();
    out.resize(data.len(), T::default());
    if b == 1 {
        const TILE: usize = 64;
        for i0 in (0..a).step_by(TILE) {
            for p0 in (0..p).step_by(TILE) {
                for i in i0..(i0 + TILE).min(a) {
                    let row = &data[i * p..(i + 1) * p];
                    for q in p0..(p0 + TILE).min(p) {
                        out[q * a + i] = row[q];
                    }
                }
            }
        }
    } else {
        for q in 0..p {
            for i in 0..a {
                let src = (i * p + q) * b;
                let dst = (q * a + i) * b;
                out[dst..dst + b].copy_from_slice(&data[src..src + b]);
            }
        }
    }
}

/// Add the stimulus set's columns (those the assembly lacks) to a presentation table.
fn join_stimuli(
    path: &Path,
    set_id: &str,
    ids: &[String],
    stimuli: &RecordBatch,
    fields: &mut Vec<Field>,
    arrays: &mut Vec<ArrayRef>,
) -> Result<()> {
    let Some(col) = stimuli.column_by_name("stimulus_id") else {
        return Err(invalid(
            path,
            "stimulus_id",
            format!("stimulus set `{set_id}` has no stimulus_id column"),
        ));
    };
    let col = arrow::compute::cast(col, &DataType::Utf8)
        .map_err(|e| invalid(path, "stimulus_id", e.to_string()))?;
    let Some(col) = col.as_any().downcast_ref::<StringArray>() else {
        return Err(invalid(path, "stimulus_id", "not strings"));
    };
    let index: HashMap<&str, u32> = col
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|s| (s, i as u32)))
        .collect();
    let mut missing = Vec::new();
    let take: Vec<u32> = ids
        .iter()
        .map(|id| {
            index.get(id.as_str()).copied().unwrap_or_else(|| {
                missing.push(id.clone());
                0
            })
        })
        .collect();
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Err(invalid(
            path,
            "stimulus_id",
            format!(
                "{} stimulus ids of the assembly are not in stimulus set `{set_id}` (first: {})",
                missing.len(),
                missing
                    .iter()
                    .take(3)
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let idx = arrow::array::UInt32Array::from(take);
    for (f, a) in stimuli.schema().fields().iter().zip(stimuli.columns()) {
        // `path` is relative to the stimulus-set store, not to this one.
        if f.name() == "path" || fields.iter().any(|g| g.name() == f.name()) {
            continue;
        }
        let taken = arrow::compute::take(a.as_ref(), &idx, None)
            .map_err(|e| invalid(path, f.name().as_str(), e.to_string()))?;
        fields.push(Field::new(f.name(), f.data_type().clone(), true));
        arrays.push(taken);
    }
    Ok(())
}
