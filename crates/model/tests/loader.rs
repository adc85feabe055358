//! The training loader (`ventral_model::loader`) against torchvision: the same distribution
//! of crop boxes and flips as `RandomResizedCrop.get_params` and `RandomHorizontalFlip`, the
//! same pixels as torchvision's `resized_crop` + `ToTensor` + `Normalize` for a given box
//! (up to the JPEG decoders' rounding), and a batch that is the same bytes at any thread
//! count.

use std::path::{Path, PathBuf};
use std::process::Command;

use ventral_model::images::splitmix;
use ventral_model::loader::{self, CropBox};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/loader.py")
}

fn python() -> Option<PathBuf> {
    let py = ventral_testkit::venv_python("VENTRAL_PYTHON", ".venv");
    if py.is_none() {
        ventral_testkit::skipped("no project venv with torchvision (run `make test`)");
    }
    py
}

/// JPEGs of assorted sizes (landscape, portrait, tiny, extreme aspect) with textured content.
fn jpegs(dir: &Path) -> Vec<PathBuf> {
    let sizes = [
        (500u32, 375u32),
        (375, 500),
        (640, 480),
        (231, 229),
        (500, 120),
        (90, 400),
        (1000, 700),
        (300, 300),
    ];
    let mut out = vec![];
    for (k, &(w, h)) in sizes.iter().enumerate() {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let v = splitmix((k as u64) << 40 ^ (y as u64) << 20 ^ x as u64);
            let t = ((x as f64 / 7.0).sin() * 60.0 + (y as f64 / 11.0).cos() * 60.0) as i32;
            image::Rgb([
                (128 + t + (v & 31) as i32) as u8,
                (100 + t / 2 + ((v >> 8) & 63) as i32) as u8,
                (90 - t / 3 + ((v >> 16) & 15) as i32) as u8,
            ])
        });
        let p = dir.join(format!("img{k}.JPEG"));
        let f = std::fs::File::create(&p).expect("create a JPEG");
        image::codecs::jpeg::JpegEncoder::new_with_quality(f, 90)
            .encode_image(&img)
            .expect("encode a JPEG");
        out.push(p);
    }
    out
}

#[test]
fn a_batch_is_the_same_bytes_at_any_thread_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = jpegs(dir.path());
    let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let seeds: Vec<u64> = (0..paths.len() as u64).map(|k| splitmix(k + 77)).collect();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(|| loader::train_batch(&paths, &seeds, 224).expect("a batch"))
    };
    let one = run(1);
    assert_eq!(one.len(), paths.len() * 3 * 224 * 224);
    assert!(one.iter().all(|v| v.is_finite()));
    for t in [2, 3] {
        let other = run(t);
        assert!(
            one.iter()
                .zip(&other)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "the batch differs at {t} threads"
        );
    }
    // Other seeds give other views.
    let seeds2: Vec<u64> = seeds.iter().map(|s| s ^ 1).collect();
    let two = loader::train_batch(&paths, &seeds2, 224).expect("a batch");
    assert_ne!(one, two);
}

/// The two-sample Kolmogorov–Smirnov statistic.
fn ks(mut a: Vec<f64>, mut b: Vec<f64>) -> f64 {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

#[test]
fn crop_boxes_and_flips_follow_torchvisions_distribution() {
    let Some(py) = python() else { return };
    let n = 20_000;
    // A typical landscape photo, and one so wide that most tries fail and the centre crop of
    // the clamped ratio is the fallback.
    for (w, h) in [(500u32, 375u32), (500, 90)] {
        let out = Command::new(&py)
            .arg(script())
            .args([
                "params",
                &w.to_string(),
                &h.to_string(),
                &n.to_string(),
                "1",
            ])
            .output()
            .expect("run bench/loader.py");
        assert!(
            out.status.success(),
            "loader.py params: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Vec<(CropBox, bool)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: Vec<u32> = l
                    .split(' ')
                    .map(|x| x.parse().expect("an integer"))
                    .collect();
                (
                    CropBox {
                        top: v[0],
                        left: v[1],
                        height: v[2],
                        width: v[3],
                    },
                    v[4] == 1,
                )
            })
            .collect();
        assert_eq!(theirs.len(), n);
        let ours: Vec<(CropBox, bool)> = (0..n as u64)
            .map(|k| loader::random_resized_crop(w, h, splitmix(k ^ 0xC0FFEE)))
            .collect();
        for (b, _) in &ours {
            assert!(
                b.width >= 1 && b.height >= 1 && b.left + b.width <= w && b.top + b.height <= h
            );
        }
        let area = (w * h) as f64;
        type Stat = fn(&CropBox, f64, u32, u32) -> f64;
        let stats: [(&str, Stat); 4] = [
            ("area scale", |b, a, _, _| (b.width * b.height) as f64 / a),
            ("log aspect", |b, _, _, _| {
                (b.width as f64 / b.height as f64).ln()
            }),
            ("left", |b, _, w, _| {
                (b.left as f64 + 0.5) / (w - b.width + 1) as f64
            }),
            ("top", |b, _, _, h| {
                (b.top as f64 + 0.5) / (h - b.height + 1) as f64
            }),
        ];
        // Critical value of the two-sample KS test at α = 0.001 for n = m = 20,000.
        let crit = 1.949 * (2.0 / n as f64).sqrt();
        for (name, f) in stats {
            let a: Vec<f64> = ours.iter().map(|(b, _)| f(b, area, w, h)).collect();
            let b: Vec<f64> = theirs.iter().map(|(b, _)| f(b, area, w, h)).collect();
            let d = ks(a, b);
            assert!(d < crit, "{w}x{h}: {name}: KS statistic {d:.4} ≥ {crit:.4}");
        }
        let fall = |v: &[(CropBox, bool)]| {
            v.iter()
                .filter(|(b, _)| {
                    b.left == (w - b.width) / 2
                        && b.top == (h - b.height) / 2
                        && (b.width == w || b.height == h)
                })
                .count() as f64
                / n as f64
        };
        let (fo, ft) = (fall(&ours), fall(&theirs));
        assert!(
            (fo - ft).abs() < 0.02,
            "{w}x{h}: centre-crop share {fo:.3} vs {ft:.3}"
        );
        let flips = |v: &[(CropBox, bool)]| v.iter().filter(|(_, f)| *f).count() as f64 / n as f64;
        let (a, b) = (flips(&ours), flips(&theirs));
        assert!(
            (a - 0.5).abs() < 0.015 && (b - 0.5).abs() < 0.015,
            "flip shares {a:.3}, {b:.3}"
        );
    }
}

#[test]
fn a_view_matches_torchvisions_for_the_same_box() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let files = jpegs(dir.path());
    let size = 224u32;
    let per = (3 * size * size) as usize;
    let std = ventral_model::images::STD;
    let mut worst = (0.0f64, 0.0f64);
    // Our views, and one job per view for one run of the reference.
    let mut cases = vec![];
    let mut jobs = String::new();
    for (k, f) in files.iter().enumerate() {
        for s in 0..3u64 {
            let mut ours = vec![0f32; per];
            let (b, flip) = loader::train_view_into(f, size, splitmix(k as u64 * 7 + s), &mut ours)
                .expect("a view");
            let out = dir.path().join(format!("view-{k}-{s}.f32"));
            jobs.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{size}\t{}\n",
                f.display(),
                b.top,
                b.left,
                b.height,
                b.width,
                u32::from(flip),
                out.display()
            ));
            cases.push((f.clone(), b, flip, ours, out));
        }
    }
    let job_file = dir.path().join("jobs.tsv");
    std::fs::write(&job_file, jobs).expect("write the jobs");
    let st = Command::new(&py)
        .arg(script())
        .arg("views")
        .arg(&job_file)
        .output()
        .expect("run bench/loader.py views");
    assert!(
        st.status.success(),
        "loader.py views: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    for (f, b, flip, ours, out) in cases {
        let bytes = std::fs::read(&out).expect("the reference view");
        let theirs: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(theirs.len(), per);
        // Differences in 8-bit levels (normalised values times std times 255).
        let n = (size * size) as usize;
        let levels: Vec<f64> = (0..per)
            .map(|i| ((ours[i] - theirs[i]) as f64 * std[i / n] as f64 * 255.0).abs())
            .collect();
        let mean = levels.iter().sum::<f64>() / per as f64;
        let max = levels.iter().cloned().fold(0.0, f64::max);
        worst = (worst.0.max(mean), worst.1.max(max));
        // The two JPEG decoders (zune-jpeg here, libjpeg-turbo in PIL) round their IDCT
        // and chroma upsampling differently; the crop, the antialiased bilinear resize,
        // the flip and the normalisation are the same.
        assert!(
            mean < 1.0 && max < 12.0,
            "{} box {b:?} flip {flip}: mean difference {mean:.3} levels, max {max:.1}",
            f.display()
        );
    }
    eprintln!(
        "largest differences from torchvision: mean {:.3} levels, max {:.1} levels",
        worst.0, worst.1
    );
}
