//! CIFAR-100, binary version (the `cifar-100-binary` folder of
//! <https://www.cs.toronto.edu/~kriz/cifar.html>): `train.bin` and `test.bin` hold records of
//! 1 coarse-label byte, 1 fine-label byte and 3,072 pixel bytes (the red, green and blue
//! planes of a 32 × 32 image, rows in order); `fine_label_names.txt` and
//! `coarse_label_names.txt` name the labels, one per line.
//!
//! Each split becomes a stimulus-set store (`<out>/train`, `<out>/test`): one PNG per
//! record and `stimuli.parquet` with `stimulus_id` (`cifar100-<split>-<index>`), `label`
//! (the fine label's name), `fine_label`, `coarse_label` (indices) and `coarse_name`. The
//! paper's transfer test (§3.4) fits a linear readout on the train split's activations and
//! reports accuracy on the test split.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;
use ventral_store::arrow::array::{ArrayRef, RecordBatch, StringArray, UInt8Array, UInt32Array};
use ventral_store::arrow::datatypes::{DataType, Field, Schema};

use crate::error::{Result, invalid, io};
use crate::stimuli::{STIMULUS_SET_FORMAT, StimulusSetMeta};

/// Bytes per record.
pub const RECORD: usize = 2 + 3 * 32 * 32;

/// What a CIFAR ingest wrote.
#[derive(Clone, Debug, Serialize)]
pub struct CifarSummary {
    /// Images per split.
    pub counts: Vec<(String, usize)>,
    /// Fine classes.
    pub classes: usize,
}

/// The folder holding `train.bin`: `root` itself or `root/cifar-100-binary`.
fn data_dir(root: &Path) -> Result<PathBuf> {
    for d in [root.to_path_buf(), root.join("cifar-100-binary")] {
        if d.join("train.bin").is_file() {
            return Ok(d);
        }
    }
    Err(io(
        root,
        "no CIFAR-100 binary files (train.bin, test.bin) here or in cifar-100-binary/",
    ))
}

fn names(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    let v: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if v.is_empty() {
        return Err(invalid(path, "names", "the file names no label"));
    }
    Ok(v)
}

/// One decoded record.
pub(crate) struct Record {
    coarse: u8,
    fine: u8,
    png: Vec<u8>,
}

pub(crate) fn decode(
    file: &Path,
    bytes: &[u8],
    fine: &[String],
    coarse: &[String],
) -> Result<Vec<Record>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(invalid(
            file,
            "size",
            format!(
                "{} bytes is not a whole number of {RECORD}-byte records (truncated or not CIFAR-100 binary)",
                bytes.len()
            ),
        ));
    }
    bytes
        .par_chunks(RECORD)
        .enumerate()
        .map(|(i, r)| {
            let (c, f) = (r[0], r[1]);
            if c as usize >= coarse.len() {
                return Err(invalid(
                    file,
                    format!("record {i} coarse label"),
                    format!("{c} (there are {} coarse labels)", coarse.len()),
                ));
            }
            if f as usize >= fine.len() {
                return Err(invalid(
                    file,
                    format!("record {i} fine label"),
                    format!("{f} (there are {} fine labels)", fine.len()),
                ));
            }
            let px = &r[2..];
            let mut rgb = Vec::with_capacity(3 * 1024);
            for k in 0..1024 {
                rgb.extend([px[k], px[1024 + k], px[2048 + k]]);
            }
            let img = image::RgbImage::from_raw(32, 32, rgb)
                .ok_or_else(|| invalid(file, format!("record {i}"), "pixel count"))?;
            let mut png = std::io::Cursor::new(Vec::new());
            img.write_to(&mut png, image::ImageFormat::Png)
                .map_err(|e| invalid(file, format!("record {i}"), e.to_string()))?;
            Ok(Record {
                coarse: c,
                fine: f,
                png: png.into_inner(),
            })
        })
        .collect()
}

fn write_split(
    split: &str,
    file: &Path,
    records: &[Record],
    fine: &[String],
    coarse: &[String],
    out: &Path,
) -> Result<()> {
    let images = out.join("images");
    std::fs::create_dir_all(&images).map_err(|e| io(&images, e))?;
    let ids: Vec<String> = (0..records.len())
        .map(|i| format!("cifar100-{split}-{i:05}"))
        .collect();
    let digests: Vec<String> = records
        .par_iter()
        .zip(&ids)
        .map(|(r, id)| {
            let p = images.join(format!("{id}.png"));
            std::fs::write(&p, &r.png).map_err(|e| io(&p, e))?;
            Ok(blake3::hash(&r.png).to_hex().to_string())
        })
        .collect::<Result<_>>()?;
    let strings = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
    let n = records.len();
    let cols: Vec<(&str, DataType, ArrayRef)> = vec![
        ("stimulus_id", DataType::Utf8, strings(ids.clone())),
        (
            "filename",
            DataType::Utf8,
            strings(ids.iter().map(|i| format!("{i}.png")).collect()),
        ),
        (
            "label",
            DataType::Utf8,
            strings(
                records
                    .iter()
                    .map(|r| fine[r.fine as usize].clone())
                    .collect(),
            ),
        ),
        (
            "fine_label",
            DataType::UInt8,
            Arc::new(UInt8Array::from_iter_values(records.iter().map(|r| r.fine))),
        ),
        (
            "coarse_label",
            DataType::UInt8,
            Arc::new(UInt8Array::from_iter_values(
                records.iter().map(|r| r.coarse),
            )),
        ),
        (
            "coarse_name",
            DataType::Utf8,
            strings(
                records
                    .iter()
                    .map(|r| coarse[r.coarse as usize].clone())
                    .collect(),
            ),
        ),
        (
            "path",
            DataType::Utf8,
            strings(ids.iter().map(|i| format!("images/{i}.png")).collect()),
        ),
        ("blake3", DataType::Utf8, strings(digests)),
        (
            "width",
            DataType::UInt32,
            Arc::new(UInt32Array::from(vec![32u32; n])),
        ),
        (
            "height",
            DataType::UInt32,
            Arc::new(UInt32Array::from(vec![32u32; n])),
        ),
    ];
    let schema = Schema::new(
        cols.iter()
            .map(|(n, t, _)| Field::new(*n, t.clone(), false))
            .collect::<Vec<_>>(),
    );
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        cols.into_iter().map(|(_, _, a)| a).collect(),
    )
    .map_err(|e| invalid(file, "table", e.to_string()))?;
    ventral_store::write_parquet(&out.join("stimuli.parquet"), &batch)?;
    let meta = StimulusSetMeta {
        format: STIMULUS_SET_FORMAT.into(),
        identifier: format!("cifar100.{split}"),
        count: n,
        source: vec![
            file.file_name()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default(),
        ],
        csv_columns: vec![
            "stimulus_id".into(),
            "filename".into(),
            "label".into(),
            "fine_label".into(),
            "coarse_label".into(),
            "coarse_name".into(),
        ],
    };
    let p = out.join("stimulus_set.json");
    let text =
        serde_json::to_string_pretty(&meta).map_err(|e| invalid(&p, "json", e.to_string()))?;
    std::fs::write(&p, text + "\n").map_err(|e| io(&p, e))?;
    Ok(())
}

/// Ingest the CIFAR-100 binary files under `root` into `out` (which must not exist): a
/// stimulus-set store per split. On error nothing is left at `out`.
pub fn ingest_cifar(root: &Path, out: &Path) -> Result<CifarSummary> {
    let dir = data_dir(root)?;
    let fine = names(&dir.join("fine_label_names.txt"))?;
    let coarse = names(&dir.join("coarse_label_names.txt"))?;
    if fine.len() > 256 || coarse.len() > 256 {
        return Err(invalid(
            dir.join("fine_label_names.txt"),
            "names",
            "more than 256 labels cannot be stored in one byte",
        ));
    }
    // Read and check everything before writing anything.
    let mut splits = Vec::new();
    for split in ["train", "test"] {
        let file = dir.join(format!("{split}.bin"));
        let bytes = std::fs::read(&file).map_err(|e| io(&file, e))?;
        let records = decode(&file, &bytes, &fine, &coarse)?;
        splits.push((split, file, records));
    }
    crate::write_fresh(out, |tmp| {
        for (split, file, records) in &splits {
            write_split(split, file, records, &fine, &coarse, &tmp.join(split))?;
        }
        Ok(CifarSummary {
            counts: splits
                .iter()
                .map(|(s, _, r)| (s.to_string(), r.len()))
                .collect(),
            classes: fine.len(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two classes' names and `records` (coarse, fine, first red pixel) written as CIFAR.
    fn write(dir: &Path, split: &str, records: &[(u8, u8, u8)]) {
        let mut bytes = Vec::new();
        for &(c, f, r) in records {
            bytes.extend([c, f]);
            let mut px = vec![0u8; 3072];
            px[0] = r; // red plane, pixel (0, 0)
            px[1024 + 1] = 200; // green plane, pixel (1, 0)
            px[2048 + 32] = 100; // blue plane, pixel (0, 1)
            bytes.extend(px);
        }
        std::fs::write(dir.join(format!("{split}.bin")), bytes).unwrap();
    }

    fn root(train: &[(u8, u8, u8)], test: &[(u8, u8, u8)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("cifar-100-binary");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("fine_label_names.txt"), "apple\nbee\nchair\n").unwrap();
        std::fs::write(d.join("coarse_label_names.txt"), "fruit\ninsects\n").unwrap();
        write(&d, "train", train);
        write(&d, "test", test);
        t
    }

    #[test]
    fn records_become_stimulus_sets_with_planes_interleaved() {
        let t = root(&[(0, 0, 7), (1, 1, 9), (0, 2, 11)], &[(1, 1, 13)]);
        let out = t.path().join("out");
        let s = ingest_cifar(t.path(), &out).unwrap();
        assert_eq!(s.classes, 3);
        assert_eq!(
            s.counts,
            [("train".to_string(), 3), ("test".to_string(), 1)]
        );
        let (meta, batch) = crate::stimuli::open_stimulus_set(&out.join("train")).unwrap();
        assert_eq!(meta.count, 3);
        let labels: Vec<String> = {
            use ventral_store::arrow::array::{Array, AsArray};
            let a = batch.column_by_name("label").unwrap().as_string::<i32>();
            (0..a.len()).map(|i| a.value(i).to_string()).collect()
        };
        assert_eq!(labels, ["apple", "bee", "chair"]);
        let img = image::open(out.join("train/images/cifar100-train-00001.png"))
            .unwrap()
            .to_rgb8();
        assert_eq!(img.dimensions(), (32, 32));
        assert_eq!(img.get_pixel(0, 0).0, [9, 0, 0]);
        assert_eq!(img.get_pixel(1, 0).0, [0, 200, 0]);
        assert_eq!(img.get_pixel(0, 1).0, [0, 0, 100]);
    }

    #[test]
    fn bad_files_are_named_and_nothing_is_written() {
        // A fine label beyond the names.
        let t = root(&[(0, 5, 1)], &[(0, 0, 1)]);
        let out = t.path().join("out");
        let e = ingest_cifar(t.path(), &out).unwrap_err().to_string();
        assert!(
            e.contains("train.bin") && e.contains("record 0 fine label") && e.contains('5'),
            "{e}"
        );
        assert!(!out.exists());
        // A truncated file.
        let t = root(&[(0, 0, 1)], &[(0, 0, 1)]);
        let test = t.path().join("cifar-100-binary/test.bin");
        let mut b = std::fs::read(&test).unwrap();
        b.truncate(100);
        std::fs::write(&test, b).unwrap();
        let e = ingest_cifar(t.path(), &out).unwrap_err().to_string();
        assert!(e.contains("test.bin") && e.contains("100 bytes"), "{e}");
        assert!(!out.exists());
        // No CIFAR files at all.
        let empty = tempfile::tempdir().unwrap();
        let e = ingest_cifar(empty.path(), &out).unwrap_err().to_string();
        assert!(e.contains("train.bin"), "{e}");
    }
}
