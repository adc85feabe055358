//! Parquet coordinate tables.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchReader};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Result, StoreError};

fn io(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Write `batch` to `path` as Parquet (zstd). The bytes depend only on the batch.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    let file = File::create(path).map_err(|e| io(path, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by("ventral".to_string())
        .build();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(|e| io(path, e))?;
    w.write(batch).map_err(|e| io(path, e))?;
    w.close().map_err(|e| io(path, e))?;
    Ok(())
}

/// Read a whole Parquet file into one batch. A damaged file is an error naming it, also
/// where the Parquet and Arrow readers panic on it instead of returning an error (arrow-ipc
/// does on an embedded schema naming type NONE, found by the `zarr_assembly` fuzz target).
pub fn read_parquet(path: &Path) -> Result<RecordBatch> {
    guarded(path, || {
        read_parquet_from(File::open(path).map_err(|e| io(path, e))?, path)
    })
}

/// [`read_parquet`] of a file's bytes (read from wherever it lies); `path` names it in errors.
pub fn parquet_from_bytes(bytes: crate::source::Bytes, path: &Path) -> Result<RecordBatch> {
    guarded(path, || read_parquet_from(bytes, path))
}

fn guarded(path: &Path, read: impl FnOnce() -> Result<RecordBatch>) -> Result<RecordBatch> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the reader panicked");
        Err(io(path, format!("not a readable Parquet file ({why})")))
    })
}

fn read_parquet_from<R: parquet::file::reader::ChunkReader + 'static>(
    input: R,
    path: &Path,
) -> Result<RecordBatch> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(input)
        .map_err(|e| io(path, e))?
        .build()
        .map_err(|e| io(path, e))?;
    let schema: Arc<arrow::datatypes::Schema> = reader.schema();
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| io(path, e))?;
    arrow::compute::concat_batches(&schema, &batches).map_err(|e| io(path, e))
}
