//! Rendering results: a table, CSV, JSON lines, or Parquet.

use std::io::Write;
use std::path::Path;

use datafusion::arrow::record_batch::RecordBatch;

use crate::error::{Result, SqlError};

/// How `ventral sql` prints results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// CSV with a header.
    Csv,
    /// A JSON array of objects.
    Json,
    /// Parquet (to a file).
    Parquet,
}

impl std::str::FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" => Ok(OutputFormat::Json),
            "parquet" => Ok(OutputFormat::Parquet),
            other => Err(format!(
                "unknown format `{other}` (table, csv, json, parquet)"
            )),
        }
    }
}

fn out_err(path: &str, e: impl std::fmt::Display) -> SqlError {
    SqlError::Output {
        path: path.to_string(),
        message: e.to_string(),
    }
}

/// Write `batches` in `format` to `path`, or to `stdout` when `path` is `None`. Parquet needs
/// a path. A file is written beside its destination and renamed in, so a failed query leaves
/// nothing behind.
pub fn write_results(
    batches: &[RecordBatch],
    format: OutputFormat,
    path: Option<&Path>,
    stdout: &mut dyn Write,
) -> Result<()> {
    let name = path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "stdout".into());
    let mut buf: Vec<u8> = Vec::new();
    match format {
        OutputFormat::Table => {
            let s = datafusion::arrow::util::pretty::pretty_format_batches(batches)
                .map_err(|e| out_err(&name, e))?;
            writeln!(buf, "{s}").map_err(|e| out_err(&name, e))?;
        }
        OutputFormat::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut buf);
            for b in batches {
                w.write(b).map_err(|e| out_err(&name, e))?;
            }
        }
        OutputFormat::Json => {
            let mut w = datafusion::arrow::json::ArrayWriter::new(&mut buf);
            for b in batches {
                w.write(b).map_err(|e| out_err(&name, e))?;
            }
            w.finish().map_err(|e| out_err(&name, e))?;
            if buf.is_empty() {
                buf.extend_from_slice(b"[]");
            }
            buf.push(b'\n');
        }
        OutputFormat::Parquet => {
            if path.is_none() {
                return Err(out_err(&name, "Parquet output needs a file: add -o FILE"));
            }
            let schema = batches
                .first()
                .map(|b| b.schema())
                .ok_or_else(|| out_err(&name, "the query returned no batches"))?;
            let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None)
                .map_err(|e| out_err(&name, e))?;
            for b in batches {
                w.write(b).map_err(|e| out_err(&name, e))?;
            }
            w.close().map_err(|e| out_err(&name, e))?;
        }
    }
    match path {
        None => stdout.write_all(&buf).map_err(|e| out_err(&name, e)),
        Some(p) => {
            let tmp = p.with_extension(format!("tmp.{}", std::process::id()));
            std::fs::write(&tmp, &buf).map_err(|e| out_err(&name, e))?;
            std::fs::rename(&tmp, p).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                out_err(&name, e)
            })
        }
    }
}
