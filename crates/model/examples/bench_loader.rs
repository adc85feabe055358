//! `make bench`'s training-loader figure (bench/loader.sh): the paper's augmentation
//! (`ventral_model::loader`) over an ImageFolder tree, batch after batch, on a rayon pool of
//! `--threads` threads, each batch made into the tensor training reads. Prints images/s of
//! the last of `--epochs` passes (the first warms the page cache), and how many crops were
//! at least twice the output size in both directions (where a decoder's DCT-domain
//! downscaling could have skipped work).
//!
//! Usage: bench_loader DIR [--threads 1] [--batch 64] [--size 224] [--epochs 2]

use std::path::{Path, PathBuf};
use std::time::Instant;

use ventral_model::images::splitmix;
use ventral_model::loader;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut classes: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("bench_loader: cannot read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    classes.sort();
    let mut out = vec![];
    for c in classes {
        let mut f: Vec<PathBuf> = std::fs::read_dir(&c)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        f.sort();
        out.extend(f);
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(
        args.first()
            .expect("usage: bench_loader DIR [--threads T] …"),
    );
    let opt = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (threads, batch, size, epochs) = (
        opt("--threads", 1),
        opt("--batch", 64),
        opt("--size", 224) as u32,
        opt("--epochs", 2),
    );
    let paths = files(&dir);
    assert!(
        !paths.is_empty(),
        "bench_loader: no images under {}",
        dir.display()
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool");
    let mut rate = 0.0;
    let mut drawn: Vec<(usize, u64)> = vec![];
    let mut spare: Option<tch::Tensor> = None;
    for epoch in 0..epochs {
        // The order of an epoch: a seeded shuffle, as training draws it.
        let mut order: Vec<usize> = (0..paths.len()).collect();
        for i in (1..order.len()).rev() {
            let j = (splitmix((epoch as u64) << 32 | i as u64) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let t0 = Instant::now();
        pool.install(|| {
            for (b, idx) in order.chunks(batch).enumerate() {
                let ps: Vec<&Path> = idx.iter().map(|&i| paths[i].as_path()).collect();
                let seeds: Vec<u64> = (0..idx.len())
                    .map(|k| splitmix((epoch as u64) << 40 ^ (b as u64) << 20 ^ k as u64))
                    .collect();
                // As training does on the CPU: into a tensor's memory, the tensors recycled.
                let mut x = spare
                    .take()
                    .filter(|t: &tch::Tensor| t.size()[0] == idx.len() as i64)
                    .unwrap_or_else(|| {
                        tch::Tensor::empty(
                            [idx.len() as i64, 3, size as i64, size as i64],
                            (tch::Kind::Float, tch::Device::Cpu),
                        )
                    });
                loader::fill_tensor(&mut x, &ps, &seeds, size)
                    .unwrap_or_else(|e| panic!("bench_loader: {e}"));
                spare = Some(std::hint::black_box(x));
                if epoch + 1 == epochs {
                    drawn.extend(idx.iter().copied().zip(seeds.iter().copied()));
                }
            }
        });
        rate = paths.len() as f64 / t0.elapsed().as_secs_f64();
    }
    let big = drawn
        .iter()
        .filter(|&&(i, s)| {
            let (bx, _) = loader::crop_of(&paths[i], s).expect("a readable image");
            bx.width >= 2 * size && bx.height >= 2 * size
        })
        .count();
    println!(
        "RESULT images_per_s={rate:.1} threads={threads} batch={batch} images={} big_crops={big}",
        paths.len()
    );
}
