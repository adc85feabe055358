//! Our assemblies back to BrainIO netCDF4, in the layout xarray and netCDF write, so that
//! `xarray.open_dataarray` and Brain-Score's loader open them.
//!
//! An assembly ingested from a netCDF file keeps that file's layout in its `brainio`
//! attribute (dimension order, data-variable name, coordinate variables with their original
//! types and attributes, global attributes); export writes exactly that back. Any other
//! assembly (activations, scores) is written with every coordinate column, `data` as the
//! data variable and its identifier as a global attribute.
//!
//! Dimensions are HDF5 dimension scales made with the HDF5 high-level library (`H5DS`), as
//! netCDF-C does: a dimension with a coordinate variable of its own name is that variable;
//! one without is an empty float dataset whose `NAME` says so.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int64Type, UInt64Type};
use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, File, H5Type, Hyperslab, Location, SliceOrIndex};
use serde_json::Value;
use ventral_store::{Assembly, DType};

use ventral_ingest::export::ExportSummary;
use ventral_ingest::netcdf::{BrainioLayout, DIM_ONLY_PREFIX, NcType, NcVariable};
use ventral_ingest::{IngestError, Result, invalid, io};

unsafe extern "C" {
    fn H5DSset_scale(dsid: hdf5_sys::h5i::hid_t, dimname: *const std::ffi::c_char) -> i32;
    fn H5DSattach_scale(
        did: hdf5_sys::h5i::hid_t,
        dsid: hdf5_sys::h5i::hid_t,
        idx: std::ffi::c_uint,
    ) -> i32;
}

fn set_scale(path: &Path, ds: &Dataset, name: &str) -> Result<()> {
    let c = CString::new(name).map_err(|e| invalid(path, name, e.to_string()))?;
    // SAFETY: `ds` is an open dataset id and `c` a NUL-terminated string living across the
    // call; the library lock of hdf5-metno is held.
    let rc = hdf5::sync::sync(|| unsafe { H5DSset_scale(ds.id(), c.as_ptr()) });
    if rc < 0 {
        return Err(invalid(path, name, "H5DSset_scale failed"));
    }
    Ok(())
}

fn attach(path: &Path, var: &Dataset, scale: &Dataset, idx: usize, what: &str) -> Result<()> {
    // SAFETY: both ids are open datasets of the same file; the library lock is held.
    let rc = hdf5::sync::sync(|| unsafe { H5DSattach_scale(var.id(), scale.id(), idx as u32) });
    if rc < 0 {
        return Err(invalid(path, what, "H5DSattach_scale failed"));
    }
    Ok(())
}

fn h5err(path: &Path, field: &str) -> impl Fn(hdf5::Error) -> IngestError + use<> {
    let path = path.to_path_buf();
    let field = field.to_string();
    move |e| invalid(&path, &field, e.to_string())
}

/// Write one attribute from its `{"dtype", "value"}` form.
fn write_attr(path: &Path, loc: &Location, name: &str, v: &Value) -> Result<()> {
    let err = h5err(path, &format!("attribute `{name}`"));
    let dtype = v.get("dtype").and_then(|d| d.as_str()).unwrap_or("str");
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    let items: Vec<Value> = match &value {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let scalar = !value.is_array();
    fn put<T: H5Type>(loc: &Location, name: &str, vals: Vec<T>, scalar: bool) -> hdf5::Result<()> {
        if scalar && vals.len() == 1 {
            let a = loc.new_attr::<T>().shape(()).create(name)?;
            a.write_raw(&vals)
        } else {
            let a = loc.new_attr::<T>().shape(vals.len()).create(name)?;
            a.write_raw(&vals)
        }
    }
    let f = |x: &Value| x.as_f64().unwrap_or(f64::NAN);
    let i = |x: &Value| x.as_i64().unwrap_or(0);
    let u = |x: &Value| x.as_u64().unwrap_or(0);
    match dtype {
        "str" => {
            let vals = items
                .iter()
                .map(|x| {
                    x.as_str()
                        .unwrap_or_default()
                        .parse::<VarLenUnicode>()
                        .map_err(|e| invalid(path, name, e.to_string()))
                })
                .collect::<Result<Vec<_>>>()?;
            put(loc, name, vals, scalar).map_err(err)
        }
        "float32" => put(
            loc,
            name,
            items.iter().map(|x| f(x) as f32).collect(),
            scalar,
        )
        .map_err(err),
        "float64" => put(loc, name, items.iter().map(f).collect(), scalar).map_err(err),
        "int8" => put(
            loc,
            name,
            items.iter().map(|x| i(x) as i8).collect(),
            scalar,
        )
        .map_err(err),
        "int16" => put(
            loc,
            name,
            items.iter().map(|x| i(x) as i16).collect(),
            scalar,
        )
        .map_err(err),
        "int32" => put(
            loc,
            name,
            items.iter().map(|x| i(x) as i32).collect(),
            scalar,
        )
        .map_err(err),
        "int64" => put(loc, name, items.iter().map(i).collect(), scalar).map_err(err),
        "uint8" => put(
            loc,
            name,
            items.iter().map(|x| u(x) as u8).collect(),
            scalar,
        )
        .map_err(err),
        "uint16" => put(
            loc,
            name,
            items.iter().map(|x| u(x) as u16).collect(),
            scalar,
        )
        .map_err(err),
        "uint32" => put(
            loc,
            name,
            items.iter().map(|x| u(x) as u32).collect(),
            scalar,
        )
        .map_err(err),
        "uint64" => put(loc, name, items.iter().map(u).collect(), scalar).map_err(err),
        other => {
            tracing::warn!(
                attribute = name,
                dtype = other,
                "attribute of an unsupported type not exported"
            );
            Ok(())
        }
    }
}

/// A coordinate column from a store table, as the values of a netCDF variable of `dtype`.
fn write_column(
    path: &Path,
    file: &File,
    name: &str,
    dtype: NcType,
    col: &dyn Array,
) -> Result<Dataset> {
    let field = format!("variable `{name}`");
    let err = h5err(path, &field);
    let n = col.len();
    fn create<T: H5Type>(file: &File, name: &str, vals: &[T]) -> hdf5::Result<Dataset> {
        let ds = file.new_dataset::<T>().shape(vals.len()).create(name)?;
        ds.write_raw(vals)?;
        Ok(ds)
    }
    let strings = || -> Result<Vec<String>> {
        let c = arrow::compute::cast(col, &DataType::Utf8)
            .map_err(|e| invalid(path, &field, e.to_string()))?;
        Ok(c.as_string::<i32>()
            .iter()
            .map(|s| s.unwrap_or_default().to_string())
            .collect())
    };
    let floats = || -> Result<Vec<f64>> {
        let c = arrow::compute::cast(col, &DataType::Float64)
            .map_err(|e| invalid(path, &field, e.to_string()))?;
        Ok(c.as_primitive::<Float64Type>()
            .iter()
            .map(|x| x.unwrap_or(f64::NAN))
            .collect())
    };
    let ints = || -> Result<Vec<i64>> {
        if let DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View = col.data_type() {
            return strings()?
                .iter()
                .map(|s| {
                    s.parse::<i64>().map_err(|_| {
                        invalid(
                            path,
                            &field,
                            format!("`{s}` is not the integer it was ingested as"),
                        )
                    })
                })
                .collect();
        }
        let c = arrow::compute::cast(col, &DataType::Int64)
            .map_err(|e| invalid(path, &field, e.to_string()))?;
        Ok(c.as_primitive::<Int64Type>()
            .iter()
            .map(|x| x.unwrap_or(0))
            .collect())
    };
    let uints = || -> Result<Vec<u64>> {
        let c = arrow::compute::cast(col, &DataType::UInt64)
            .map_err(|e| invalid(path, &field, e.to_string()))?;
        Ok(c.as_primitive::<UInt64Type>()
            .iter()
            .map(|x| x.unwrap_or(0))
            .collect())
    };
    let ds = match dtype {
        NcType::Str => {
            let vals = strings()?
                .iter()
                .map(|s| {
                    s.parse::<VarLenUnicode>()
                        .map_err(|e| invalid(path, &field, e.to_string()))
                })
                .collect::<Result<Vec<_>>>()?;
            create(file, name, &vals)
        }
        NcType::Float32 => {
            let c = arrow::compute::cast(col, &DataType::Float32)
                .map_err(|e| invalid(path, &field, e.to_string()))?;
            let v: Vec<f32> = c
                .as_primitive::<Float32Type>()
                .iter()
                .map(|x| x.unwrap_or(f32::NAN))
                .collect();
            create(file, name, &v)
        }
        NcType::Float64 => create(file, name, &floats()?),
        NcType::Int8 => create(
            file,
            name,
            &ints()?.iter().map(|&x| x as i8).collect::<Vec<_>>(),
        ),
        NcType::Int16 => create(
            file,
            name,
            &ints()?.iter().map(|&x| x as i16).collect::<Vec<_>>(),
        ),
        NcType::Int32 => create(
            file,
            name,
            &ints()?.iter().map(|&x| x as i32).collect::<Vec<_>>(),
        ),
        NcType::Int64 => create(file, name, &ints()?),
        NcType::Uint8 => create(
            file,
            name,
            &uints()?.iter().map(|&x| x as u8).collect::<Vec<_>>(),
        ),
        NcType::Uint16 => create(
            file,
            name,
            &uints()?.iter().map(|&x| x as u16).collect::<Vec<_>>(),
        ),
        NcType::Uint32 => create(
            file,
            name,
            &uints()?.iter().map(|&x| x as u32).collect::<Vec<_>>(),
        ),
        NcType::Uint64 => create(file, name, &uints()?),
    }
    .map_err(err)?;
    debug_assert_eq!(ds.size(), n);
    Ok(ds)
}

fn nc_type_of(dt: &DataType) -> Option<NcType> {
    Some(match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
            NcType::Str
        }
        DataType::Int8 => NcType::Int8,
        DataType::Int16 => NcType::Int16,
        DataType::Int32 => NcType::Int32,
        DataType::Int64 => NcType::Int64,
        DataType::UInt8 | DataType::Boolean => NcType::Uint8,
        DataType::UInt16 => NcType::Uint16,
        DataType::UInt32 => NcType::Uint32,
        DataType::UInt64 => NcType::Uint64,
        DataType::Float32 => NcType::Float32,
        DataType::Float64 => NcType::Float64,
        _ => return None,
    })
}

/// The layout to write: the one kept at ingest, or one made from the store.
fn layout_of(asm: &Assembly, tables: &BTreeMap<String, RecordBatch>) -> Result<BrainioLayout> {
    let meta = asm.meta();
    if let Some(v) = meta.attrs.get("brainio") {
        return serde_json::from_value(v.clone())
            .map_err(|e| invalid(asm.dir(), "attributes.ventral.attrs.brainio", e.to_string()));
    }
    let mut coords = Vec::new();
    for dim in &meta.dims {
        let t = &tables[dim];
        for f in t.schema().fields() {
            if *f.name() == format!("{dim}_index") {
                continue;
            }
            let Some(dtype) = nc_type_of(f.data_type()) else {
                tracing::warn!(column = %f.name(), "column of type {} not exported", f.data_type());
                continue;
            };
            coords.push(NcVariable {
                name: f.name().clone(),
                dims: vec![dim.clone()],
                dtype,
                attrs: BTreeMap::new(),
            });
        }
    }
    let mut global_attrs = BTreeMap::new();
    global_attrs.insert(
        "identifier".to_string(),
        serde_json::json!({"dtype": "str", "value": meta.identifier}),
    );
    if let Some(s) = meta.attr_str("stimulus_set_identifier") {
        global_attrs.insert(
            "stimulus_set_identifier".to_string(),
            serde_json::json!({"dtype": "str", "value": s}),
        );
    }
    Ok(BrainioLayout {
        source: String::new(),
        data: NcVariable {
            name: "data".into(),
            dims: meta.dims.clone(),
            dtype: match meta.dtype {
                DType::Float32 => NcType::Float32,
                DType::Float64 => NcType::Float64,
            },
            attrs: BTreeMap::new(),
        },
        coords,
        global_attrs,
    })
}

/// Export the assembly at `store` to the netCDF4 file `out` (replaced atomically; on error
/// nothing is left at `out`).
pub fn export_brainio(store: &Path, out: &Path) -> Result<ExportSummary> {
    let asm = Assembly::open(store)?;
    let tables = asm.all_coords()?;
    let layout = layout_of(&asm, &tables)?;
    let meta = asm.meta();
    // Map file dims to store axes.
    let mut perm = Vec::new();
    for d in &layout.data.dims {
        let Some(axis) = meta.dims.iter().position(|m| m == d) else {
            return Err(invalid(
                store,
                "brainio.data.dims",
                format!(
                    "dimension `{d}` is not in the assembly ({})",
                    meta.dims.join(", ")
                ),
            ));
        };
        perm.push(axis);
    }
    if perm.len() != meta.dims.len() {
        return Err(invalid(
            store,
            "brainio.data.dims",
            "does not cover every dimension",
        ));
    }
    let file_shape: Vec<usize> = perm.iter().map(|&a| meta.shape[a] as usize).collect();
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        out.file_name()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = write_file(&asm, &tables, &layout, &perm, &file_shape, &tmp);
    match result {
        Ok(summary) => {
            std::fs::rename(&tmp, out).map_err(|e| io(out, e))?;
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_file(
    asm: &Assembly,
    tables: &BTreeMap<String, RecordBatch>,
    layout: &BrainioLayout,
    perm: &[usize],
    file_shape: &[usize],
    path: &Path,
) -> Result<ExportSummary> {
    let file = File::with_options()
        .with_fcpl(|p| p.link_creation_order(hdf5::plist::file_create::LinkCreationOrder::Indexed))
        .create(path)
        .map_err(|e| io(path, e))?;
    let column = |v: &NcVariable| -> Result<std::sync::Arc<dyn Array>> {
        let dim = &v.dims[0];
        tables
            .get(dim)
            .and_then(|t| t.column_by_name(&v.name).cloned())
            .ok_or_else(|| {
                invalid(
                    asm.dir(),
                    format!("coords/{dim}.parquet"),
                    format!("column `{}` (listed in the layout) is missing", v.name),
                )
            })
    };
    // Dimensions first.
    let mut scales: BTreeMap<String, Dataset> = BTreeMap::new();
    for (i, dim) in layout.data.dims.iter().enumerate() {
        let field = format!("dimension `{dim}`");
        let ds = if let Some(v) = layout.coords.iter().find(|v| v.name == *dim) {
            let ds = write_column(path, &file, dim, v.dtype, column(v)?.as_ref())?;
            set_scale(path, &ds, dim)?;
            ds
        } else {
            let ds = file
                .new_dataset::<f32>()
                .shape(file_shape[i])
                .create(dim.as_str())
                .map_err(h5err(path, &field))?;
            set_scale(
                path,
                &ds,
                &format!("{DIM_ONLY_PREFIX}{:>10}", file_shape[i]),
            )?;
            ds
        };
        scales.insert(dim.clone(), ds);
    }
    // Coordinate variables.
    let mut written = Vec::new();
    let mut listed = Vec::new();
    for v in &layout.coords {
        let dim = &v.dims[0];
        let ds = if v.name == *dim {
            scales[dim].clone()
        } else {
            let ds = write_column(path, &file, &v.name, v.dtype, column(v)?.as_ref())?;
            attach(path, &ds, &scales[dim], 0, &v.name)?;
            listed.push(v.name.clone());
            ds
        };
        for (k, a) in &v.attrs {
            write_attr(path, &ds, k, a)?;
        }
        written.push(v.name.clone());
    }
    // The data variable, band by band along the store's first axis.
    let name = layout.data.name.as_str();
    let field = format!("variable `{name}`");
    let err = h5err(path, &field);
    let data = match layout.data.dtype {
        NcType::Float32 => file
            .new_dataset::<f32>()
            .shape(file_shape.to_vec())
            .create(name),
        NcType::Float64 => file
            .new_dataset::<f64>()
            .shape(file_shape.to_vec())
            .create(name),
        NcType::Int8 => file
            .new_dataset::<i8>()
            .shape(file_shape.to_vec())
            .create(name),
        NcType::Int16 => file
            .new_dataset::<i16>()
            .shape(file_shape.to_vec())
            .create(name),
        NcType::Int32 => file
            .new_dataset::<i32>()
            .shape(file_shape.to_vec())
            .create(name),
        NcType::Int64 => file
            .new_dataset::<i64>()
            .shape(file_shape.to_vec())
            .create(name),
        NcType::Uint8 => file
            .new_dataset::<u8>()
            .shape(file_shape.to_vec())
            .create(name),
        NcType::Uint16 => file
            .new_dataset::<u16>()
            .shape(file_shape.to_vec())
            .create(name),
        NcType::Uint32 => file
            .new_dataset::<u32>()
            .shape(file_shape.to_vec())
            .create(name),
        NcType::Uint64 => file
            .new_dataset::<u64>()
            .shape(file_shape.to_vec())
            .create(name),
        NcType::Str => return Err(invalid(path, field, "string data cannot be exported")),
    }
    .map_err(&err)?;
    let meta = asm.meta();
    let rows = meta.shape[0] as usize;
    let band_rows = (meta.chunk_shape[0] as usize).max(1);
    // `inv[store_axis] = file_axis`; a band in store order is permuted to file order.
    let mut start = 0;
    while start < rows {
        let end = (start + band_rows).min(rows);
        let mut ranges = asm.full();
        ranges[0] = start as u64..end as u64;
        let band = asm.read_f64(&ranges)?;
        let band = band.permuted_axes(perm.to_vec());
        let sel: Vec<SliceOrIndex> = perm
            .iter()
            .zip(file_shape)
            .map(|(&a, &n)| {
                let (s, e) = if a == 0 { (start, end) } else { (0, n) };
                SliceOrIndex::SliceTo {
                    start: s,
                    step: 1,
                    end: e,
                    block: 1,
                }
            })
            .collect();
        let band = band.as_standard_layout().into_owned();
        let w = data.as_writer();
        match layout.data.dtype {
            NcType::Float32 => w.write_slice(&band.mapv(|x| x as f32), Hyperslab::new(sel)),
            NcType::Float64 => w.write_slice(&band, Hyperslab::new(sel)),
            _ => w.write_slice(&band.mapv(|x| x as i64), Hyperslab::new(sel)),
        }
        .map_err(&err)?;
        start = end;
    }
    for (i, dim) in layout.data.dims.iter().enumerate() {
        attach(path, &data, &scales[dim], i, name)?;
    }
    if matches!(layout.data.dtype, NcType::Float32) {
        data.new_attr::<f32>()
            .shape(1)
            .create("_FillValue")
            .and_then(|a| a.write_raw(&[f32::NAN]))
            .map_err(&err)?;
    } else if matches!(layout.data.dtype, NcType::Float64) {
        data.new_attr::<f64>()
            .shape(1)
            .create("_FillValue")
            .and_then(|a| a.write_raw(&[f64::NAN]))
            .map_err(&err)?;
    }
    for (k, a) in &layout.data.attrs {
        write_attr(path, &data, k, a)?;
    }
    if !listed.is_empty() {
        write_attr(
            path,
            &data,
            "coordinates",
            &serde_json::json!({"dtype": "str", "value": listed.join(" ")}),
        )?;
    }
    for (k, a) in &layout.global_attrs {
        write_attr(path, &file, k, a)?;
    }
    file.flush().map_err(h5err(path, "file"))?;
    Ok(ExportSummary {
        data_variable: name.to_string(),
        dims: layout.data.dims.clone(),
        shape: file_shape.iter().map(|&n| n as u64).collect(),
        coords: written,
    })
}
