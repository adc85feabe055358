//! The entry points of the ingest fuzz targets in `fuzz/` (`make fuzz`), which `make test`
//! also replays over the committed corpora: whatever the bytes, each must return — an error
//! is fine, a panic is not — and write nothing outside its scratch folder.

use std::path::{Path, PathBuf};

/// A scratch folder under the system's temporary folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Option<Scratch> {
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

    fn path(&self) -> &Path {
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
