//! MS COCO: an image folder plus `instances_*.json`, indexed (not copied).
//!
//! The index store (same `index.json` as ImageNet's, dataset `COCO`):
//!
//! ```text
//! images.parquet       image_id, file_name, path, width, height, blake3, grayscale,
//!                      n_objects, categories ("|"-joined names), main_category (largest area)
//! categories.parquet   id, name, supercategory
//! annotations.parquet  image_id, category_id, area, iscrowd, bbox_x, bbox_y, bbox_w, bbox_h
//! ```
//!
//! `grayscale` is the decoder's colour type (one channel); Kar2019's OST images are COCO
//! images shown in grayscale, and `grayscale_only` keeps just the one-channel ones.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid, io};
use crate::imagenet::{IndexMeta, write_meta};
use crate::stimuli::safe_relative;

#[derive(Deserialize)]
struct Instances {
    images: Vec<CocoImage>,
    categories: Vec<CocoCategory>,
    #[serde(default)]
    annotations: Vec<CocoAnnotation>,
}

#[derive(Deserialize)]
struct CocoImage {
    id: i64,
    file_name: String,
}

#[derive(Deserialize, Clone)]
struct CocoCategory {
    id: i64,
    name: String,
    #[serde(default)]
    supercategory: String,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    image_id: i64,
    category_id: i64,
    #[serde(default)]
    area: f64,
    #[serde(default)]
    iscrowd: i64,
    #[serde(default)]
    bbox: Vec<f64>,
}

/// What a COCO ingest wrote.
#[derive(Clone, Debug, Serialize)]
pub struct CocoSummary {
    /// Images indexed.
    pub images: usize,
    /// Of which one-channel.
    pub grayscale: usize,
    /// Categories.
    pub categories: usize,
    /// Annotations.
    pub annotations: usize,
}

/// Index the COCO images in `images_dir` described by `instances` into a new store at `out`.
pub fn ingest_coco(
    images_dir: &Path,
    instances: &Path,
    grayscale_only: bool,
    out: &Path,
) -> Result<CocoSummary> {
    let text = std::fs::read(instances).map_err(|e| io(instances, e))?;
    let inst: Instances = serde_json::from_slice(&text).map_err(|e| {
        invalid(
            instances,
            format!("line {} column {}", e.line(), e.column()),
            format!("not a COCO instances file: {e}"),
        )
    })?;
    drop(text);
    let cats: HashMap<i64, &CocoCategory> = inst.categories.iter().map(|c| (c.id, c)).collect();
    let mut seen = BTreeSet::new();
    for im in &inst.images {
        if !seen.insert(im.id) {
            return Err(invalid(
                instances,
                format!("image id {}", im.id),
                "duplicate",
            ));
        }
    }
    for (i, a) in inst.annotations.iter().enumerate() {
        if !seen.contains(&a.image_id) {
            return Err(invalid(
                instances,
                format!("annotations[{i}].image_id"),
                format!("{} is not an image of the file", a.image_id),
            ));
        }
        if !cats.contains_key(&a.category_id) {
            return Err(invalid(
                instances,
                format!("annotations[{i}].category_id"),
                format!("{} is not a category of the file", a.category_id),
            ));
        }
    }
    let mut images: Vec<&CocoImage> = inst.images.iter().collect();
    images.sort_by_key(|im| im.id);
    let facts: Vec<(String, String, u32, u32, bool)> = images
        .par_iter()
        .map(|im| {
            let Some(rel) = safe_relative(&im.file_name) else {
                return Err(invalid(
                    instances,
                    format!("image {} file_name", im.id),
                    format!("`{}` leaves the image folder", im.file_name),
                ));
            };
            let p = images_dir.join(&rel);
            let bytes = std::fs::read(&p).map_err(|e| io(&p, e))?;
            let reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
                .with_guessed_format()
                .map_err(|e| invalid(&p, "image", e.to_string()))?;
            let decoder = reader
                .into_decoder()
                .map_err(|e| invalid(&p, "image", format!("unreadable image: {e}")))?;
            use image::ImageDecoder;
            let (w, h) = decoder.dimensions();
            let gray = decoder.color_type().channel_count() <= 2;
            Ok((
                rel.to_string_lossy().to_string(),
                blake3::hash(&bytes).to_hex().to_string(),
                w,
                h,
                gray,
            ))
        })
        .collect::<Result<_>>()?;
    let keep: Vec<usize> = (0..images.len())
        .filter(|&i| !grayscale_only || facts[i].4)
        .collect();
    let kept_ids: BTreeSet<i64> = keep.iter().map(|&i| images[i].id).collect();
    let mut per_image: BTreeMap<i64, Vec<&CocoAnnotation>> = BTreeMap::new();
    for a in &inst.annotations {
        per_image.entry(a.image_id).or_default().push(a);
    }
    let cat_names = |id: i64| -> (String, String, usize) {
        let anns = per_image.get(&id).map(Vec::as_slice).unwrap_or(&[]);
        let names: BTreeSet<&str> = anns
            .iter()
            .map(|a| cats[&a.category_id].name.as_str())
            .collect();
        let main = anns
            .iter()
            .max_by(|a, b| {
                a.area
                    .total_cmp(&b.area)
                    .then(b.category_id.cmp(&a.category_id))
            })
            .map(|a| cats[&a.category_id].name.clone())
            .unwrap_or_default();
        (
            names.into_iter().collect::<Vec<_>>().join("|"),
            main,
            anns.len(),
        )
    };
    let derived: Vec<(String, String, usize)> =
        keep.iter().map(|&i| cat_names(images[i].id)).collect();
    let img_batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("image_id", DataType::Int64, false),
            Field::new("file_name", DataType::Utf8, false),
            Field::new("path", DataType::Utf8, false),
            Field::new("width", DataType::UInt32, false),
            Field::new("height", DataType::UInt32, false),
            Field::new("blake3", DataType::Utf8, false),
            Field::new("grayscale", DataType::Boolean, false),
            Field::new("n_objects", DataType::Int64, false),
            Field::new("categories", DataType::Utf8, false),
            Field::new("main_category", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(
                keep.iter().map(|&i| images[i].id),
            )) as ArrayRef,
            Arc::new(StringArray::from_iter_values(
                keep.iter().map(|&i| &images[i].file_name),
            )),
            Arc::new(StringArray::from_iter_values(
                keep.iter().map(|&i| &facts[i].0),
            )),
            Arc::new(UInt32Array::from_iter_values(
                keep.iter().map(|&i| facts[i].2),
            )),
            Arc::new(UInt32Array::from_iter_values(
                keep.iter().map(|&i| facts[i].3),
            )),
            Arc::new(StringArray::from_iter_values(
                keep.iter().map(|&i| &facts[i].1),
            )),
            Arc::new(BooleanArray::from(
                keep.iter().map(|&i| facts[i].4).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from_iter_values(
                derived.iter().map(|d| d.2 as i64),
            )),
            Arc::new(StringArray::from_iter_values(derived.iter().map(|d| &d.0))),
            Arc::new(StringArray::from_iter_values(derived.iter().map(|d| &d.1))),
        ],
    )
    .map_err(|e| invalid(out, "images.parquet", e.to_string()))?;
    let mut categories = inst.categories.clone();
    categories.sort_by_key(|c| c.id);
    let cat_batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("supercategory", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(
                categories.iter().map(|c| c.id),
            )) as ArrayRef,
            Arc::new(StringArray::from_iter_values(
                categories.iter().map(|c| &c.name),
            )),
            Arc::new(StringArray::from_iter_values(
                categories.iter().map(|c| &c.supercategory),
            )),
        ],
    )
    .map_err(|e| invalid(out, "categories.parquet", e.to_string()))?;
    let anns: Vec<&CocoAnnotation> = per_image
        .iter()
        .filter(|(id, _)| kept_ids.contains(id))
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    let bb = |a: &CocoAnnotation, k: usize| a.bbox.get(k).copied().unwrap_or(f64::NAN);
    let ann_batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("image_id", DataType::Int64, false),
            Field::new("category_id", DataType::Int64, false),
            Field::new("area", DataType::Float64, false),
            Field::new("iscrowd", DataType::Int64, false),
            Field::new("bbox_x", DataType::Float64, false),
            Field::new("bbox_y", DataType::Float64, false),
            Field::new("bbox_w", DataType::Float64, false),
            Field::new("bbox_h", DataType::Float64, false),
        ])),
        vec![
            Arc::new(Int64Array::from_iter_values(
                anns.iter().map(|a| a.image_id),
            )) as ArrayRef,
            Arc::new(Int64Array::from_iter_values(
                anns.iter().map(|a| a.category_id),
            )),
            Arc::new(Float64Array::from_iter_values(anns.iter().map(|a| a.area))),
            Arc::new(Int64Array::from_iter_values(anns.iter().map(|a| a.iscrowd))),
            Arc::new(Float64Array::from_iter_values(
                anns.iter().map(|a| bb(a, 0)),
            )),
            Arc::new(Float64Array::from_iter_values(
                anns.iter().map(|a| bb(a, 1)),
            )),
            Arc::new(Float64Array::from_iter_values(
                anns.iter().map(|a| bb(a, 2)),
            )),
            Arc::new(Float64Array::from_iter_values(
                anns.iter().map(|a| bb(a, 3)),
            )),
        ],
    )
    .map_err(|e| invalid(out, "annotations.parquet", e.to_string()))?;
    let mut counts = BTreeMap::new();
    counts.insert("images".to_string(), keep.len());
    let meta = IndexMeta {
        format: crate::IMAGE_INDEX_FORMAT.into(),
        dataset: "COCO".into(),
        // Absolute: a relative root would be read against the index's own folder.
        root: std::path::absolute(images_dir)
            .map_err(|e| io(images_dir, e))?
            .to_string_lossy()
            .to_string(),
        root_relative_to: None,
        counts,
        classes: categories.len(),
    };
    crate::write_fresh(out, |tmp| {
        ventral_store::write_parquet(&tmp.join("images.parquet"), &img_batch)?;
        ventral_store::write_parquet(&tmp.join("categories.parquet"), &cat_batch)?;
        ventral_store::write_parquet(&tmp.join("annotations.parquet"), &ann_batch)?;
        write_meta(tmp, &meta)
    })?;
    Ok(CocoSummary {
        images: keep.len(),
        grayscale: keep.iter().filter(|&&i| facts[i].4).count(),
        categories: categories.len(),
        annotations: anns.len(),
    })
}
