//! The entry points of the ingest fuzz targets in `fuzz/` (`make fuzz`), which `make test`
//! also replays over the committed corpora: whatever the bytes, each must return — an error
//! is fine, a panic is not — and write nothing outside its scratch folder.

use std::path::{Path, PathBuf};

/// A scratch folder under the system's temporary folder, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A new empty folder, `None` when it cannot be made.
    pub fn new(name: &str) -> Option<Scratch> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ventral-fuzz-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).ok()?;
        Some(Scratch(dir))
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// CIFAR-100 binary records, decoded against 100 fine and 20 coarse label names.
pub fn cifar(data: &[u8]) {
    let fine: Vec<String> = (0..100).map(|i| format!("fine{i}")).collect();
    let coarse: Vec<String> = (0..20).map(|i| format!("coarse{i}")).collect();
    let _ = crate::cifar::decode(Path::new("fuzz/train.bin"), data, &fine, &coarse);
}

/// A COCO instances file, indexed against an image folder holding one 2×2 PNG, `a.png`.
pub fn coco(data: &[u8]) {
    let Some(s) = Scratch::new("coco") else {
        return;
    };
    let images = s.path().join("images");
    let json = s.path().join("instances.json");
    let png = image::RgbImage::from_pixel(2, 2, image::Rgb([1, 2, 3]));
    if std::fs::create_dir_all(&images).is_err()
        || png.save(images.join("a.png")).is_err()
        || std::fs::write(&json, data).is_err()
    {
        return;
    }
    let _ = crate::coco::ingest_coco(&images, &json, false, &s.path().join("out"));
}

/// A BrainIO StimulusSet: the first two bytes give the CSV's length (little-endian), the
/// CSV follows, and the rest is the ZIP archive.
pub fn stimulus_set(data: &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let n = (u16::from_le_bytes(*len) as usize).min(rest.len());
    let (csv, zip) = rest.split_at(n);
    let Some(s) = Scratch::new("stimuli") else {
        return;
    };
    let (csv_path, zip_path) = (s.path().join("set.csv"), s.path().join("set.zip"));
    if std::fs::write(&csv_path, csv).is_err() || std::fs::write(&zip_path, zip).is_err() {
        return;
    }
    let _ =
        crate::stimuli::ingest_stimulus_set(&csv_path, &zip_path, "fuzz", &s.path().join("out"));
}

/// The files of a folder as one input: `[u16 name length][name][u32 length][bytes]`,
/// repeated, names relative and `/`-separated, in name order (the fuzz seeds are made so).
pub fn pack(dir: &Path) -> std::io::Result<Vec<u8>> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type()?.is_dir() {
                walk(&e.path(), &r, out)?;
            } else {
                out.push((r, e.path()));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, "", &mut files)?;
    files.sort();
    let mut out = Vec::new();
    for (name, path) in files {
        let bytes = std::fs::read(path)?;
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// Unpack a [`pack`]ed input into `dir`; names that would leave it are skipped.
fn unpack(mut data: &[u8], dir: &Path) -> Option<()> {
    while let Some((n, rest)) = data.split_first_chunk::<2>() {
        let n = u16::from_le_bytes(*n) as usize;
        let name = rest.get(..n)?;
        let (len, rest) = rest.get(n..)?.split_first_chunk::<4>()?;
        let len = (u32::from_le_bytes(*len) as usize).min(rest.len());
        let (bytes, rest) = rest.split_at(len);
        data = rest;
        let Some(rel) = std::str::from_utf8(name)
            .ok()
            .and_then(crate::stimuli::safe_relative)
        else {
            continue;
        };
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent()?).ok()?;
        std::fs::write(&p, bytes).ok()?;
    }
    Some(())
}

/// The most values the `zarr_assembly` target reads from one input (a hostile shape may
/// declare far more; opening it is fuzzed, reading all of it would only test memory).
const FUZZ_MAX_VALUES: u64 = 1 << 20;

/// An assembly store (ventral's Zarr v3 layout, as every scorer and `ventral sql` read it):
/// its metadata, coordinate tables, chunk grid and shard indexes, as a [`pack`]ed folder.
/// Returns how many values it read, or why it refused.
pub fn read_assembly(data: &[u8]) -> Result<usize, String> {
    let s = Scratch::new("zarr").ok_or("no scratch folder")?;
    unpack(data, s.path()).ok_or("not a packed folder")?;
    let a = ventral_store::Assembly::open(s.path()).map_err(|e| e.to_string())?;
    a.all_coords().map_err(|e| e.to_string())?;
    let chunk: u64 = a.meta().chunk_shape.iter().product();
    let total = a
        .meta()
        .shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .unwrap_or(u64::MAX);
    if chunk > FUZZ_MAX_VALUES || total > FUZZ_MAX_VALUES {
        return Ok(0);
    }
    let all = a.read_f32(&a.full()).map_err(|e| e.to_string())?;
    // Row bands through the shard index, as `ventral sql` reads a few stimuli.
    let mut buf = Vec::new();
    for idx in a.chunks_in(&a.full()) {
        a.read_chunk_rows_f32_into(&idx, Some(&[0]), &mut buf)
            .map_err(|e| e.to_string())?;
    }
    Ok(all.len())
}

/// The `zarr_assembly` target: [`read_assembly`], whatever it answers.
pub fn zarr_assembly(data: &[u8]) {
    let _ = read_assembly(data);
}

/// The seed of the store targets: a small neural assembly (12 stimuli × 5 neuroids, values
/// `i / 2 - 3`) in two row chunks, each a shard of three bands, written at `dir`.
pub fn small_assembly(dir: &Path) -> crate::Result<()> {
    use std::sync::Arc;
    use ventral_store::arrow::array::{ArrayRef, StringArray};
    use ventral_store::arrow::datatypes::{DataType, Field, Schema};
    use ventral_store::arrow::record_batch::RecordBatch;
    let ids = |prefix: &str, col: &str, n: usize| {
        let values: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(col, DataType::Utf8, false)])),
            vec![Arc::new(StringArray::from(values)) as ArrayRef],
        )
        .map_err(|e| crate::invalid(dir, col, e.to_string()))
    };
    let mut spec =
        ventral_store::AssemblySpec::new("fuzz.seed", "neural", &["presentation", "neuroid"], &[5]);
    spec.chunk_rows = Some(6);
    spec.inner_rows = Some(2);
    let mut w = ventral_store::AssemblyWriter::<f32>::create(dir, spec)?;
    let values: Vec<f32> = (0..12 * 5).map(|i| i as f32 * 0.5 - 3.0).collect();
    w.append(&values)?;
    w.finish(vec![
        ("presentation".into(), ids("s", "stimulus_id", 12)?),
        ("neuroid".into(), ids("n", "neuroid_id", 5)?),
    ])?;
    Ok(())
}
