//! BrainIO StimulusSets (CSV + ZIP) into stimulus-set stores.
//!
//! A stimulus-set store is a folder:
//!
//! ```text
//! <store>/stimulus_set.json   {"format": "ventral-stimulus-set v1", "identifier", "count", …}
//! <store>/stimuli.parquet     every CSV column, plus `stimulus_id` (from legacy `image_id`
//!                             when needed), `path` (relative to the store), `width`,
//!                             `height` and `blake3` of each image
//! <store>/images/<filename>   the images, extracted from the ZIP under their CSV filename
//! ```
//!
//! The CSV names each image's `filename` inside the ZIP; a filename or ZIP entry that would
//! land outside `images/` (`../`, an absolute path) is refused, never extracted.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid, io};

/// The format tag of a stimulus-set store.
pub const STIMULUS_SET_FORMAT: &str = "ventral-stimulus-set v1";

/// `stimulus_set.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StimulusSetMeta {
    /// Always [`STIMULUS_SET_FORMAT`].
    pub format: String,
    /// The identifier.
    pub identifier: String,
    /// Number of stimuli.
    pub count: usize,
    /// The CSV and ZIP it came from (file names).
    pub source: Vec<String>,
    /// The CSV's column names in order (export writes them back).
    pub csv_columns: Vec<String>,
}

/// A CSV read as text columns, in file order.
#[derive(Clone, Debug)]
pub struct CsvTable {
    /// Column names (an unnamed pandas index column is called `""`).
    pub columns: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

impl CsvTable {
    /// Read `path`; every row must have as many cells as the header.
    pub fn read(path: &Path) -> Result<CsvTable> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_path(path)
            .map_err(|e| io(path, e))?;
        let columns: Vec<String> = r
            .headers()
            .map_err(|e| invalid(path, "header", e.to_string()))?
            .iter()
            .map(str::to_string)
            .collect();
        let mut rows = Vec::new();
        for (i, rec) in r.records().enumerate() {
            let rec = rec.map_err(|e| invalid(path, format!("row {}", i + 2), e.to_string()))?;
            rows.push(rec.iter().map(str::to_string).collect());
        }
        Ok(CsvTable { columns, rows })
    }

    /// The index of column `name`.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Column `i` as an Arrow array: Int64 when every non-empty cell is an integer, Float64
    /// when every one is a number, strings otherwise; empty cells are null.
    pub fn arrow_column(&self, i: usize) -> (DataType, ArrayRef) {
        let cells = self.rows.iter().map(|r| r[i].as_str());
        let non_empty: Vec<&str> = cells.clone().filter(|c| !c.is_empty()).collect();
        if !non_empty.is_empty() && non_empty.iter().all(|c| c.parse::<i64>().is_ok()) {
            let a: Int64Array = cells.map(|c| c.parse::<i64>().ok()).collect();
            return (DataType::Int64, Arc::new(a));
        }
        if !non_empty.is_empty() && non_empty.iter().all(|c| c.parse::<f64>().is_ok()) {
            let a: Float64Array = cells.map(|c| c.parse::<f64>().ok()).collect();
            return (DataType::Float64, Arc::new(a));
        }
        let a: StringArray = cells
            .map(|c| if c.is_empty() { None } else { Some(c) })
            .collect();
        (DataType::Utf8, Arc::new(a))
    }
}

/// A relative path that stays inside its folder (no `..`, no root, no prefix) and holds no
/// control character (a store cannot hold such a name).
pub(crate) fn safe_relative(name: &str) -> Option<PathBuf> {
    if name.chars().any(char::is_control) {
        return None;
    }
    let p = Path::new(name);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    }
}

/// Header facts of one image (format, size) — fails on anything `image` cannot parse.
pub(crate) fn image_header(bytes: &[u8]) -> std::result::Result<(u32, u32), String> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if reader.format().is_none() {
        return Err("not an image format we read (PNG, JPEG)".into());
    }
    reader.into_dimensions().map_err(|e| e.to_string())
}

/// Ingest the StimulusSet `csv` + `zip` as `identifier` into a new store at `out`.
pub fn ingest_stimulus_set(
    csv_path: &Path,
    zip_path: &Path,
    identifier: &str,
    out: &Path,
) -> Result<StimulusSetSummary> {
    let table = CsvTable::read(csv_path)?;
    let id_col = table
        .col("stimulus_id")
        .or_else(|| table.col("image_id"))
        .ok_or_else(|| {
            invalid(
                csv_path,
                "column `stimulus_id`",
                "missing (neither `stimulus_id` nor the legacy `image_id`)",
            )
        })?;
    let file_col = table
        .col("filename")
        .ok_or_else(|| invalid(csv_path, "column `filename`", "missing"))?;
    let mut seen = HashSet::new();
    let mut targets = Vec::with_capacity(table.rows.len());
    for (i, row) in table.rows.iter().enumerate() {
        let id = &row[id_col];
        if id.is_empty() {
            return Err(invalid(
                csv_path,
                format!("row {} stimulus_id", i + 2),
                "is empty",
            ));
        }
        if !seen.insert(id.clone()) {
            return Err(invalid(
                csv_path,
                format!("row {} stimulus_id", i + 2),
                format!("duplicate stimulus id `{id}`"),
            ));
        }
        let Some(rel) = safe_relative(&row[file_col]) else {
            return Err(invalid(
                csv_path,
                format!("row {} filename", i + 2),
                format!(
                    "{:?} is not a relative path inside the ZIP (absolute, `..` or a control character)",
                    row[file_col]
                ),
            ));
        };
        targets.push(rel);
    }
    crate::write_fresh(out, |tmp| {
        extract(csv_path, zip_path, &targets, tmp)?;
        // Hash and check every image in parallel (order-independent results).
        let facts: Vec<(String, u32, u32)> = targets
            .par_iter()
            .map(|rel| {
                let p = tmp.join("images").join(rel);
                let bytes = std::fs::read(&p).map_err(|e| io(&p, e))?;
                let (w, h) = image_header(&bytes).map_err(|e| {
                    invalid(
                        zip_path,
                        format!("entry `{}`", rel.display()),
                        format!("unreadable image: {e}"),
                    )
                })?;
                Ok((blake3::hash(&bytes).to_hex().to_string(), w, h))
            })
            .collect::<Result<_>>()?;
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (i, name) in table.columns.iter().enumerate() {
            if name.is_empty() {
                continue; // the pandas index
            }
            let (dt, a) = if i == id_col || i == file_col {
                let a: StringArray = table.rows.iter().map(|r| Some(r[i].as_str())).collect();
                (DataType::Utf8, Arc::new(a) as ArrayRef)
            } else {
                table.arrow_column(i)
            };
            fields.push(Field::new(name, dt, true));
            arrays.push(a);
        }
        if table.col("stimulus_id").is_none() {
            let a: StringArray = table
                .rows
                .iter()
                .map(|r| Some(r[id_col].as_str()))
                .collect();
            fields.push(Field::new("stimulus_id", DataType::Utf8, false));
            arrays.push(Arc::new(a));
        }
        let path: StringArray = targets
            .iter()
            .map(|r| Some(format!("images/{}", r.display())))
            .collect();
        let digest: StringArray = facts.iter().map(|f| Some(f.0.as_str())).collect();
        let width: UInt32Array = facts.iter().map(|f| Some(f.1)).collect();
        let height: UInt32Array = facts.iter().map(|f| Some(f.2)).collect();
        for (n, dt, a) in [
            ("path", DataType::Utf8, Arc::new(path) as ArrayRef),
            ("blake3", DataType::Utf8, Arc::new(digest) as ArrayRef),
            ("width", DataType::UInt32, Arc::new(width) as ArrayRef),
            ("height", DataType::UInt32, Arc::new(height) as ArrayRef),
        ] {
            if fields.iter().any(|f| f.name() == n) {
                continue;
            }
            fields.push(Field::new(n, dt, false));
            arrays.push(a);
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| invalid(csv_path, "table", e.to_string()))?;
        ventral_store::write_parquet(&tmp.join("stimuli.parquet"), &batch)?;
        let meta = StimulusSetMeta {
            format: STIMULUS_SET_FORMAT.into(),
            identifier: identifier.into(),
            count: table.rows.len(),
            source: [csv_path, zip_path]
                .iter()
                .map(|p| {
                    p.file_name()
                        .map(|s| s.to_string_lossy().to_string())
                        .unwrap_or_default()
                })
                .collect(),
            csv_columns: table.columns.clone(),
        };
        let text = serde_json::to_string_pretty(&meta)
            .map_err(|e| invalid(out, "stimulus_set.json", e.to_string()))?;
        std::fs::write(tmp.join("stimulus_set.json"), text + "\n")
            .map_err(|e| io(tmp.join("stimulus_set.json"), e))?;
        Ok(StimulusSetSummary {
            identifier: identifier.into(),
            count: table.rows.len(),
            columns: batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        })
    })
}

/// The largest image a StimulusSet ZIP entry may inflate to.
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// Extract the entries the CSV names (and only those) into `<tmp>/images/`.
fn extract(csv_path: &Path, zip_path: &Path, targets: &[PathBuf], tmp: &Path) -> Result<()> {
    let f = std::fs::File::open(zip_path).map_err(|e| io(zip_path, e))?;
    let mut zip = zip::ZipArchive::new(f)
        .map_err(|e| invalid(zip_path, "archive", format!("not a readable ZIP: {e}")))?;
    // Index the entries by their safe relative path; refuse any entry that escapes.
    let mut entries: HashMap<PathBuf, usize> = HashMap::new();
    for i in 0..zip.len() {
        let e = zip
            .by_index_raw(i)
            .map_err(|e| invalid(zip_path, format!("entry {i}"), e.to_string()))?;
        if e.is_dir() {
            continue;
        }
        let name = e.name().map(|n| n.to_string()).unwrap_or_default();
        // The raw name, not only the `enclosed_name` (which drops a leading `/`).
        let Some(rel) = e.enclosed_name().and_then(|_| safe_relative(&name)) else {
            return Err(invalid(
                zip_path,
                format!("entry {name:?}"),
                "path leaves the archive's folder (absolute or `..`) or holds a control character: refused",
            ));
        };
        entries.insert(rel, i);
    }
    let images = tmp.join("images");
    for (row, rel) in targets.iter().enumerate() {
        let Some(&i) = entries.get(rel) else {
            return Err(invalid(
                zip_path,
                format!("entry `{}`", rel.display()),
                format!(
                    "missing (named by row {} of {})",
                    row + 2,
                    csv_path.display()
                ),
            ));
        };
        let mut e = zip.by_index(i).map_err(|e| {
            invalid(
                zip_path,
                format!("entry `{}`", rel.display()),
                e.to_string(),
            )
        })?;
        if e.is_symlink() {
            return Err(invalid(
                zip_path,
                format!("entry `{}`", rel.display()),
                "a symbolic link, not an image: refused (never followed)",
            ));
        }
        let dest = images.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        // The header's size is the archive's word, not a fact: reserve at most 16 MiB on it
        // (a hostile header declaring 4 GiB found by the fuzzer), and let the reader grow.
        let mut bytes = Vec::with_capacity((e.size() as usize).min(16 << 20));
        // A stimulus is an image of a few megabytes; an entry that inflates past
        // MAX_IMAGE_BYTES is an archive bomb, refused before it fills memory.
        (&mut e)
            .take(MAX_IMAGE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|err| {
                invalid(
                    zip_path,
                    format!("entry `{}`", rel.display()),
                    format!("cannot be read: {err}"),
                )
            })?;
        if bytes.len() as u64 > MAX_IMAGE_BYTES {
            return Err(invalid(
                zip_path,
                format!("entry `{}`", rel.display()),
                format!(
                    "inflates past {} MiB (an archive bomb?): refused",
                    MAX_IMAGE_BYTES >> 20
                ),
            ));
        }
        std::fs::write(&dest, &bytes).map_err(|e| io(&dest, e))?;
    }
    Ok(())
}

/// What a stimulus-set ingest wrote.
#[derive(Clone, Debug, Serialize)]
pub struct StimulusSetSummary {
    /// The identifier.
    pub identifier: String,
    /// Number of stimuli.
    pub count: usize,
    /// Columns of `stimuli.parquet`.
    pub columns: Vec<String>,
}

/// Open a stimulus-set store: its metadata and table.
pub fn open_stimulus_set(dir: &Path) -> Result<(StimulusSetMeta, RecordBatch)> {
    let p = dir.join("stimulus_set.json");
    let text = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
    let meta: StimulusSetMeta =
        serde_json::from_str(&text).map_err(|e| invalid(&p, "json", e.to_string()))?;
    if meta.format != STIMULUS_SET_FORMAT {
        return Err(invalid(
            &p,
            "format",
            format!(
                "`{}` (this ventral reads `{STIMULUS_SET_FORMAT}`)",
                meta.format
            ),
        ));
    }
    let batch = ventral_store::read_parquet(&dir.join("stimuli.parquet"))?;
    Ok((meta, batch))
}
