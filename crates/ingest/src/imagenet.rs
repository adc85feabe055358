//! ILSVRC2012 as its owners publish it, indexed (not copied).
//!
//! Accepted layouts under a root: `train/<wnid>/*.JPEG`; validation either as
//! `val/<wnid>/*.JPEG` or flat `val/*.JPEG` with a labels file: Kaggle's
//! `LOC_val_solution.csv` (`ImageId,PredictionString`), Brain-Score's `imagenet2012.csv`
//! (`filename,…,synset`) or any CSV with `filename` and `wnid` columns. Class index = the
//! position of the wnid in sorted order (what torchvision's `ImageFolder` does).
//!
//! The index store:
//!
//! ```text
//! <store>/index.json       {"format": "ventral-image-index v1", "dataset": "ILSVRC2012", "root", …}
//! <store>/classes.parquet  label, wnid
//! <store>/images.parquet   split, path (relative to root), label, wnid, blake3, width, height
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid, io};
use crate::stimuli::{CsvTable, image_header};

/// `index.json` of an image index.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IndexMeta {
    /// [`crate::IMAGE_INDEX_FORMAT`].
    pub format: String,
    /// `ILSVRC2012`, `COCO`, ….
    pub dataset: String,
    /// The data root the paths are relative to.
    pub root: String,
    /// What a relative `root` is relative to. Absent: the index's own folder (a root in
    /// another stage's output, `../<digest>/…`). `workspace`: the workspace of whoever reads
    /// the index (a root the stage found in its workspace, e.g. `data/real/ILSVRC2012`), so
    /// that the index stays right when the workspace moves, or when its stage's output is
    /// pulled from a remote cache onto a machine whose workspace is elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_relative_to: Option<String>,
    /// Images per split.
    pub counts: BTreeMap<String, usize>,
    /// Number of classes.
    pub classes: usize,
}

/// What an ImageNet ingest wrote.
#[derive(Clone, Debug, Serialize)]
pub struct ImagenetSummary {
    /// Images per split.
    pub counts: BTreeMap<String, usize>,
    /// Number of classes.
    pub classes: usize,
    /// Total bytes hashed.
    pub bytes: u64,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpeg" | "jpg" | "png"))
}

fn sorted_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| io(dir, e)))
        .collect::<Result<_>>()?;
    v.sort();
    Ok(v)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default()
}

/// Labels of a flat validation folder: file name → wnid.
pub fn read_val_labels(path: &Path) -> Result<HashMap<String, String>> {
    let t = CsvTable::read(path)?;
    let mut out = HashMap::new();
    if let (Some(f), Some(p)) = (t.col("ImageId"), t.col("PredictionString")) {
        for (i, r) in t.rows.iter().enumerate() {
            let wnid = r[p].split_whitespace().next().ok_or_else(|| {
                invalid(path, format!("row {} PredictionString", i + 2), "is empty")
            })?;
            out.insert(format!("{}.JPEG", r[f]), wnid.to_string());
        }
    } else if let (Some(f), Some(w)) =
        (t.col("filename"), t.col("synset").or_else(|| t.col("wnid")))
    {
        for r in &t.rows {
            out.insert(r[f].clone(), r[w].clone());
        }
    } else {
        return Err(invalid(
            path,
            "header",
            "not a labels file: expected `ImageId,PredictionString` (LOC_val_solution.csv) or \
             `filename` with `synset`/`wnid` (imagenet2012.csv)",
        ));
    }
    Ok(out)
}

/// Index the ILSVRC2012 tree at `root` into a new store at `out`. `val_labels` is needed
/// only for a flat `val/`; without it, `LOC_val_solution.csv` or `imagenet2012.csv` in the
/// root is used when present.
pub fn ingest_imagenet(
    root: &Path,
    val_labels: Option<&Path>,
    out: &Path,
) -> Result<ImagenetSummary> {
    let mut items: Vec<(String, PathBuf, String)> = Vec::new(); // split, abs path, wnid
    let mut wnids = BTreeSet::new();
    let train = root.join("train");
    if train.is_dir() {
        for d in sorted_dir(&train)? {
            if !d.is_dir() {
                continue;
            }
            let wnid = file_name(&d);
            wnids.insert(wnid.clone());
            for f in sorted_dir(&d)? {
                if is_image(&f) {
                    items.push(("train".into(), f, wnid.clone()));
                }
            }
        }
    }
    let val = root.join("val");
    if val.is_dir() {
        let entries = sorted_dir(&val)?;
        let flat: Vec<&PathBuf> = entries
            .iter()
            .filter(|p| p.is_file() && is_image(p))
            .collect();
        if flat.is_empty() {
            for d in entries.iter().filter(|p| p.is_dir()) {
                let wnid = file_name(d);
                wnids.insert(wnid.clone());
                for f in sorted_dir(d)? {
                    if is_image(&f) {
                        items.push(("val".into(), f, wnid.clone()));
                    }
                }
            }
        } else {
            let labels_path = match val_labels {
                Some(p) => p.to_path_buf(),
                None => ["LOC_val_solution.csv", "imagenet2012.csv"]
                    .iter()
                    .map(|n| root.join(n))
                    .find(|p| p.is_file())
                    .ok_or_else(|| {
                        invalid(
                            &val,
                            "labels",
                            "a flat val/ folder needs a labels file (--val-labels, or \
                             LOC_val_solution.csv / imagenet2012.csv in the root)",
                        )
                    })?,
            };
            let labels = read_val_labels(&labels_path)?;
            for f in flat {
                let name = file_name(f);
                let Some(wnid) = labels.get(&name) else {
                    return Err(invalid(
                        &labels_path,
                        format!("`{name}`"),
                        "has no label for this validation image",
                    ));
                };
                wnids.insert(wnid.clone());
                items.push(("val".into(), f.clone(), wnid.clone()));
            }
        }
    }
    if items.is_empty() {
        return Err(invalid(
            root,
            "layout",
            "no images under train/<wnid>/ or val/ (an ILSVRC2012 root holds train/ and val/)",
        ));
    }
    let class_of: HashMap<&String, i64> = wnids
        .iter()
        .enumerate()
        .map(|(i, w)| (w, i as i64))
        .collect();
    let facts: Vec<(String, u32, u32, u64)> = items
        .par_iter()
        .map(|(_, p, _)| {
            let bytes = std::fs::read(p).map_err(|e| io(p, e))?;
            let (w, h) = image_header(&bytes)
                .map_err(|e| invalid(p, "image", format!("unreadable image: {e}")))?;
            Ok((
                blake3::hash(&bytes).to_hex().to_string(),
                w,
                h,
                bytes.len() as u64,
            ))
        })
        .collect::<Result<_>>()?;
    let rel = |p: &Path| {
        p.strip_prefix(root)
            .unwrap_or(p)
            .to_string_lossy()
            .to_string()
    };
    let mut counts = BTreeMap::new();
    for (s, _, _) in &items {
        *counts.entry(s.clone()).or_insert(0usize) += 1;
    }
    let images = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("split", DataType::Utf8, false),
            Field::new("path", DataType::Utf8, false),
            Field::new("label", DataType::Int64, false),
            Field::new("wnid", DataType::Utf8, false),
            Field::new("blake3", DataType::Utf8, false),
            Field::new("width", DataType::UInt32, false),
            Field::new("height", DataType::UInt32, false),
        ])),
        vec![
            Arc::new(StringArray::from_iter_values(items.iter().map(|i| &i.0))) as ArrayRef,
            Arc::new(StringArray::from_iter_values(
                items.iter().map(|i| rel(&i.1)),
            )),
            Arc::new(Int64Array::from_iter_values(
                items.iter().map(|i| class_of[&i.2]),
            )),
            Arc::new(StringArray::from_iter_values(items.iter().map(|i| &i.2))),
            Arc::new(StringArray::from_iter_values(facts.iter().map(|f| &f.0))),
            Arc::new(UInt32Array::from_iter_values(facts.iter().map(|f| f.1))),
            Arc::new(UInt32Array::from_iter_values(facts.iter().map(|f| f.2))),
        ],
    )
    .map_err(|e| invalid(out, "images.parquet", e.to_string()))?;
    let classes = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("label", DataType::Int64, false),
            Field::new("wnid", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(0..wnids.len() as i64)) as ArrayRef,
            Arc::new(StringArray::from_iter_values(wnids.iter())),
        ],
    )
    .map_err(|e| invalid(out, "classes.parquet", e.to_string()))?;
    let meta = IndexMeta {
        format: crate::IMAGE_INDEX_FORMAT.into(),
        dataset: "ILSVRC2012".into(),
        // Absolute: a relative root would be read against the index's own folder.
        root: std::path::absolute(root)
            .map_err(|e| io(root, e))?
            .to_string_lossy()
            .to_string(),
        root_relative_to: None,
        counts: counts.clone(),
        classes: wnids.len(),
    };
    crate::write_fresh(out, |tmp| {
        ventral_store::write_parquet(&tmp.join("images.parquet"), &images)?;
        ventral_store::write_parquet(&tmp.join("classes.parquet"), &classes)?;
        write_meta(tmp, &meta)
    })?;
    Ok(ImagenetSummary {
        counts,
        classes: wnids.len(),
        bytes: facts.iter().map(|f| f.3).sum(),
    })
}

pub(crate) fn write_meta(dir: &Path, meta: &IndexMeta) -> Result<()> {
    let p = dir.join("index.json");
    let text =
        serde_json::to_string_pretty(meta).map_err(|e| invalid(&p, "json", e.to_string()))?;
    std::fs::write(&p, text + "\n").map_err(|e| io(&p, e))
}

/// Open an image index: its metadata (`root` resolved to a path) and `images.parquet`. An
/// index whose root is in a workspace needs [`open_index_in`].
pub fn open_index(dir: &Path) -> Result<(IndexMeta, RecordBatch)> {
    open_index_in(dir, None)
}

/// [`open_index`], with the workspace that a workspace-relative root is resolved against
/// (the reading stage's, or the command's `-C`).
pub fn open_index_in(dir: &Path, workspace: Option<&Path>) -> Result<(IndexMeta, RecordBatch)> {
    let p = dir.join("index.json");
    let text = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
    let meta: IndexMeta =
        serde_json::from_str(&text).map_err(|e| invalid(&p, "json", e.to_string()))?;
    if meta.format != crate::IMAGE_INDEX_FORMAT {
        return Err(invalid(&p, "format", format!("`{}`", meta.format)));
    }
    let images = ventral_store::read_parquet(&dir.join("images.parquet"))?;
    let mut meta = meta;
    let root = Path::new(&meta.root);
    let resolved = match (meta.root_relative_to.as_deref(), workspace) {
        // A root in another stage's output in the same store: relative to this folder.
        (None, _) if root.is_relative() => dir.join(root),
        (None, _) => root.to_path_buf(),
        (Some("workspace"), Some(ws)) if root.is_relative() => ws.join(root),
        (Some("workspace"), None) => {
            return Err(invalid(
                &p,
                "root_relative_to",
                format!(
                    "`workspace`: the images are at `{}` in the workspace that reads the index, \
                     and none was given",
                    meta.root
                ),
            ));
        }
        (Some(other), _) => {
            return Err(invalid(
                &p,
                "root_relative_to",
                format!(
                    "`{other}` with root `{}` (expected `workspace` and a relative root)",
                    meta.root
                ),
            ));
        }
    };
    meta.root = resolved.to_string_lossy().to_string();
    Ok((meta, images))
}

/// The root of an index written by a stage whose images are in another stage's output
/// (`<store>/out/<digest>/<sub>`): that output's path relative to the index's own future
/// folder (`<store>/out/<its digest>/`), `../<digest>/<sub>` — the same bytes wherever
/// the store is. `None` for a root outside a store.
pub fn portable_root(root: &Path) -> Option<String> {
    let is_digest = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    for a in root.ancestors() {
        let (Some(name), Some(parent)) = (a.file_name().and_then(|n| n.to_str()), a.parent())
        else {
            continue;
        };
        if is_digest(name) && parent.file_name().is_some_and(|n| n == "out") {
            let rest = root.strip_prefix(a).ok()?;
            let rel = Path::new("..").join(name).join(rest);
            return Some(rel.to_string_lossy().trim_end_matches('/').to_string());
        }
    }
    None
}

/// Rewrite the root of the index in `dir` so that the index's bytes do not depend on where
/// the store or the workspace is: [`portable_root`] when the images are in another stage's
/// output; relative to `workspace` when they are inside it (`root_relative_to`); absolute
/// otherwise (data outside the workspace, e.g. a shared `/datasets/ILSVRC2012`).
pub fn make_root_portable(dir: &Path, workspace: Option<&Path>) -> Result<()> {
    let p = dir.join("index.json");
    let text = std::fs::read_to_string(&p).map_err(|e| io(&p, e))?;
    let mut meta: IndexMeta =
        serde_json::from_str(&text).map_err(|e| invalid(&p, "json", e.to_string()))?;
    let root = Path::new(&meta.root);
    if let Some(rel) = portable_root(root) {
        meta.root = rel;
        write_meta(dir, &meta)?;
    } else if let Some(rel) = workspace.and_then(|ws| in_workspace(root, ws)) {
        meta.root = rel;
        meta.root_relative_to = Some("workspace".into());
        write_meta(dir, &meta)?;
    }
    Ok(())
}

/// `root` relative to `workspace` when it is inside it (both canonicalised: a workspace
/// reached through a symbolic link still matches), `/`-separated.
fn in_workspace(root: &Path, workspace: &Path) -> Option<String> {
    let (r, w) = (root.canonicalize().ok()?, workspace.canonicalize().ok()?);
    let rest = r.strip_prefix(&w).ok()?;
    let parts: Vec<String> = rest
        .components()
        .map(|c| c.as_os_str().to_str().map(str::to_string))
        .collect::<Option<_>>()?;
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod portable_tests {
    use super::portable_root;
    use std::path::Path;

    #[test]
    fn roots_in_a_store_output_become_relative_to_the_sibling_output() {
        let d = "ab".repeat(32);
        let root = format!("/somewhere/.ventral/out/{d}/imagenet");
        assert_eq!(
            portable_root(Path::new(&root)).as_deref(),
            Some(format!("../{d}/imagenet").as_str())
        );
        let whole = format!("/x/out/{d}");
        assert_eq!(
            portable_root(Path::new(&whole)).as_deref(),
            Some(format!("../{d}").as_str())
        );
        assert_eq!(portable_root(Path::new("/data/ILSVRC2012")), None);
        assert_eq!(portable_root(Path::new(&format!("/x/objects/{d}/a"))), None);
    }

    /// An index written with its root in the workspace is read against whichever
    /// workspace reads it; one whose root is outside stays absolute.
    #[test]
    fn roots_in_the_workspace_are_read_against_the_reader_s_workspace() {
        let tmp = tempfile::tempdir().unwrap();
        let (ws, elsewhere) = (tmp.path().join("ws"), tmp.path().join("other"));
        let root = ws.join("data/real/ILSVRC2012");
        let wnid = root.join("train/n01440764");
        std::fs::create_dir_all(&wnid).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        image::RgbImage::new(4, 3)
            .save_with_format(wnid.join("a.JPEG"), image::ImageFormat::Jpeg)
            .unwrap();
        let index = tmp.path().join("index");
        super::ingest_imagenet(&root, None, &index).unwrap();
        let meta = |dir: &Path| std::fs::read_to_string(dir.join("index.json")).unwrap();
        assert!(meta(&index).contains(&format!("\"root\": \"{}\"", root.display())));
        super::make_root_portable(&index, Some(&elsewhere)).unwrap();
        assert!(meta(&index).contains(&format!("\"root\": \"{}\"", root.display())));
        super::make_root_portable(&index, Some(&ws)).unwrap();
        let text = meta(&index);
        assert!(
            text.contains("\"root\": \"data/real/ILSVRC2012\""),
            "{text}"
        );
        assert!(
            text.contains("\"root_relative_to\": \"workspace\""),
            "{text}"
        );
        let moved = tmp.path().join("moved");
        let (m, _) = super::open_index_in(&index, Some(&moved)).unwrap();
        assert_eq!(m.root, moved.join("data/real/ILSVRC2012").to_string_lossy());
        let e = super::open_index(&index).unwrap_err().to_string();
        assert!(
            e.contains("root_relative_to") && e.contains("data/real/ILSVRC2012"),
            "{e}"
        );
    }
}
