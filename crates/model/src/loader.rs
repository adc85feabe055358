//! The training loader of the paper's recipe: torchvision's `RandomResizedCrop(224)` and
//! `RandomHorizontalFlip()`, then `ToTensor()` and ImageNet's `Normalize`, as the official
//! CORnet training script composes them — decoded, cropped, resized and normalised straight
//! into a batch buffer.
//!
//! Per image: the JPEG is decoded by zune-jpeg into a reused RGB buffer (other formats go
//! through `image`, with PIL's `convert('RGB')` semantics); the crop box is drawn as
//! torchvision's `RandomResizedCrop.get_params` draws it (area scale uniform in (0.08, 1),
//! log-aspect uniform in (¾, 4⁄3), ten tries, then the centre crop of the clamped ratio;
//! Python's round-half-even); the box is resized to `size × size` with PIL's antialiased
//! bilinear convolution (fast_image_resize's `Convolution(Bilinear)`, which reads only the
//! box, as PIL does after `crop`); flip and normalisation are fused into the write of the
//! channel-first floats. Images are spread over rayon's threads, each with its own decode and
//! resize buffers; every image's randomness comes from its own seed, so a batch is the same
//! bytes at any thread count.

use std::cell::RefCell;
use std::path::Path;

use fast_image_resize as fr;
use rayon::prelude::*;

use crate::error::{ModelError, Result, io};
use crate::images::{MEAN, STD, load_rgb, splitmix};

/// torchvision's defaults for `RandomResizedCrop`.
pub const SCALE: (f64, f64) = (0.08, 1.0);
/// torchvision's default aspect-ratio range for `RandomResizedCrop`.
pub const RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);

/// A crop box in pixels of the decoded image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropBox {
    /// Left column.
    pub left: u32,
    /// Top row.
    pub top: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// A stream of uniform numbers in [0, 1) from one seed (SplitMix64).
struct Uniform(u64);

impl Uniform {
    fn next(&mut self) -> f64 {
        self.0 = splitmix(self.0);
        (self.0 >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// An integer uniform in `0..n` (`n ≥ 1`), as `torch.randint(0, n)`.
    fn below(&mut self, n: u32) -> u32 {
        ((self.next() * n as f64) as u32).min(n - 1)
    }
}

/// torchvision's `RandomResizedCrop.get_params` for an image of `width × height`, drawn
/// from `seed`, and whether the view is flipped (`RandomHorizontalFlip`, p = ½).
pub fn random_resized_crop(width: u32, height: u32, seed: u64) -> (CropBox, bool) {
    let mut u = Uniform(seed);
    let area = width as f64 * height as f64;
    let (lr0, lr1) = (RATIO.0.ln(), RATIO.1.ln());
    let mut chosen = None;
    for _ in 0..10 {
        let target = area * (SCALE.0 + (SCALE.1 - SCALE.0) * u.next());
        let aspect = (lr0 + (lr1 - lr0) * u.next()).exp();
        let w = (target * aspect).sqrt().round_ties_even();
        let h = (target / aspect).sqrt().round_ties_even();
        if w > 0.0 && w <= width as f64 && h > 0.0 && h <= height as f64 {
            let (w, h) = (w as u32, h as u32);
            let top = u.below(height - h + 1);
            let left = u.below(width - w + 1);
            chosen = Some(CropBox {
                left,
                top,
                width: w,
                height: h,
            });
            break;
        }
    }
    let bx = chosen.unwrap_or_else(|| {
        let in_ratio = width as f64 / height as f64;
        let (w, h) = if in_ratio < RATIO.0 {
            (
                width,
                ((width as f64 / RATIO.0).round_ties_even() as u32).max(1),
            )
        } else if in_ratio > RATIO.1 {
            (
                ((height as f64 * RATIO.1).round_ties_even() as u32).max(1),
                height,
            )
        } else {
            (width, height)
        };
        CropBox {
            left: (width - w) / 2,
            top: (height - h) / 2,
            width: w,
            height: h,
        }
    });
    (bx, u.next() < 0.5)
}

/// Per-thread buffers: the decoded image and the resized crop.
#[derive(Default)]
struct Scratch {
    rgb: Vec<u8>,
    resized: Vec<u8>,
    resizer: Option<fr::Resizer>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.len() > 3 && bytes[..3] == [0xFF, 0xD8, 0xFF]
}

/// Decode `bytes` into `out` (RGB, row-major); returns the image's width and height.
fn decode_rgb(path: &Path, bytes: &[u8], out: &mut Vec<u8>) -> Result<(u32, u32)> {
    if is_jpeg(bytes) {
        use zune_core::bytestream::ZCursor;
        use zune_core::colorspace::ColorSpace;
        use zune_core::options::DecoderOptions;
        let opts = DecoderOptions::default()
            .jpeg_set_out_colorspace(ColorSpace::RGB)
            .set_max_width(1 << 16)
            .set_max_height(1 << 16);
        let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), opts);
        let plain = d.decode_headers().is_ok()
            && matches!(
                d.input_colorspace(),
                Some(ColorSpace::YCbCr | ColorSpace::RGB | ColorSpace::Luma)
            );
        let decoded = plain.then_some(()).ok_or(()).and_then(|()| {
            let n = d.output_buffer_size().unwrap_or(0);
            out.resize(n, 0);
            d.decode_into(out).map_err(|_| ())
        });
        if decoded.is_ok()
            && let Some((w, h)) = d.dimensions()
            && d.output_colorspace() == Some(ColorSpace::RGB)
        {
            return Ok((w as u32, h as u32));
        }
        // Anything zune-jpeg does not turn into RGB (CMYK, a damaged file) goes the general
        // way, which names the file if it cannot be read at all.
    }
    let img = load_rgb(path)?;
    let (w, h) = img.dimensions();
    out.clear();
    out.extend_from_slice(img.as_raw());
    Ok((w, h))
}

/// Resize `bx` of the RGB image `rgb` (`w × h`) to `size × size` into `out`.
fn resize_box(
    resizer: &mut fr::Resizer,
    rgb: &[u8],
    (w, h): (u32, u32),
    bx: CropBox,
    size: u32,
    out: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    let src =
        fr::images::ImageRef::new(w, h, rgb, fr::PixelType::U8x3).map_err(|e| e.to_string())?;
    let cropped = fr::images::CroppedImage::new(&src, bx.left, bx.top, bx.width, bx.height)
        .map_err(|e| e.to_string())?;
    out.resize((size * size * 3) as usize, 0);
    let mut dst = fr::images::Image::from_slice_u8(size, size, out, fr::PixelType::U8x3)
        .map_err(|e| e.to_string())?;
    let opts =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear));
    resizer
        .resize(&cropped, &mut dst, &opts)
        .map_err(|e| e.to_string())
}

/// The normalised value of each 8-bit level, per channel: torchvision's `ToTensor` (÷ 255)
/// then `Normalize` ((x − mean) / std), in f32 — a table, since the value depends on the
/// level alone.
fn levels() -> &'static [[f32; 256]; 3] {
    static TABLE: std::sync::OnceLock<[[f32; 256]; 3]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|c| std::array::from_fn(|v| (v as f32 / 255.0 - MEAN[c]) / STD[c]))
    })
}

/// Write the normalised channel-first floats of the `size × size` RGB image `rgb` into
/// `out` (`3 · size²`), mirrored left to right when `flip`.
fn write_chw(rgb: &[u8], size: u32, flip: bool, out: &mut [f32]) {
    let s = size as usize;
    let n = s * s;
    let table = levels();
    let (r_out, rest) = out.split_at_mut(n);
    let (g_out, b_out) = rest.split_at_mut(n);
    for y in 0..s {
        let row = &rgb[y * s * 3..(y + 1) * s * 3];
        let (ro, go, bo) = (
            &mut r_out[y * s..(y + 1) * s],
            &mut g_out[y * s..(y + 1) * s],
            &mut b_out[y * s..(y + 1) * s],
        );
        for (x, p) in row.chunks_exact(3).enumerate() {
            let d = if flip { s - 1 - x } else { x };
            ro[d] = table[0][p[0] as usize];
            go[d] = table[1][p[1] as usize];
            bo[d] = table[2][p[2] as usize];
        }
    }
}

/// One training view of the file at `path` (the paper's recipe) into `out` (`3 · size²`
/// floats), drawn from `seed`; returns the crop box and flip it drew.
pub fn train_view_into(
    path: &Path,
    size: u32,
    seed: u64,
    out: &mut [f32],
) -> Result<(CropBox, bool)> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        let dims = decode_rgb(path, &bytes, &mut s.rgb)?;
        let (bx, flip) = random_resized_crop(dims.0, dims.1, seed);
        let resizer = s.resizer.get_or_insert_with(fr::Resizer::new);
        resize_box(resizer, &s.rgb, dims, bx, size, &mut s.resized).map_err(|message| {
            ModelError::Io {
                path: path.to_path_buf(),
                message: format!(
                    "resizing the crop {bx:?} of a {}x{} image: {message}",
                    dims.0, dims.1
                ),
            }
        })?;
        write_chw(&s.resized, size, flip, out);
        Ok((bx, flip))
    })
}

/// A batch of training views (`N · 3 · size²` floats, channel-first) of `paths`, image `k`
/// drawn from `seeds[k]`, decoded in parallel on rayon's threads.
pub fn train_batch(paths: &[&Path], seeds: &[u64], size: u32) -> Result<Vec<f32>> {
    let mut out = vec![0f32; paths.len() * (3 * size * size) as usize];
    train_batch_into(paths, seeds, size, &mut out)?;
    Ok(out)
}

/// [`train_batch`] into `out` (`N · 3 · size²` floats), e.g. a reused buffer or a tensor's
/// memory.
pub fn train_batch_into(paths: &[&Path], seeds: &[u64], size: u32, out: &mut [f32]) -> Result<()> {
    assert_eq!(paths.len(), seeds.len(), "train_batch: one seed per image");
    let per = (3 * size * size) as usize;
    assert_eq!(
        out.len(),
        paths.len() * per,
        "train_batch: the output's length"
    );
    out.par_chunks_mut(per)
        .zip(paths.par_iter().zip(seeds.par_iter()))
        .try_for_each(|(o, (p, &seed))| train_view_into(p, size, seed, o).map(|_| ()))
}

/// The crop box and flip of a file's training view without decoding its pixels (its
/// dimensions are read from its header): for statistics of the augmentation.
pub fn crop_of(path: &Path, seed: u64) -> Result<(CropBox, bool)> {
    let (w, h) = image::image_dimensions(path).map_err(|e| ModelError::Io {
        path: path.to_path_buf(),
        message: format!("unreadable image: {e}"),
    })?;
    Ok(random_resized_crop(w, h, seed))
}

/// [`train_batch_into`] straight into `x`, a contiguous float32 host tensor `(N, 3, size,
/// size)` that nothing else reads or writes while it is filled (a fresh one, or one handed
/// back after its batch was used): training's batches, without a copy.
pub fn fill_tensor(x: &mut tch::Tensor, paths: &[&Path], seeds: &[u64], size: u32) -> Result<()> {
    let want = [paths.len() as i64, 3, size as i64, size as i64];
    if x.size() != want
        || x.kind() != tch::Kind::Float
        || x.device() != tch::Device::Cpu
        || !x.is_contiguous()
    {
        return Err(ModelError::Io {
            path: paths.first().map(|p| p.to_path_buf()).unwrap_or_default(),
            message: format!(
                "a batch tensor must be contiguous float32 on the CPU, shape {want:?}; got {:?} {:?} on {:?}",
                x.kind(),
                x.size(),
                x.device()
            ),
        });
    }
    let n = paths.len() * (3 * size * size) as usize;
    // SAFETY: `x` is a contiguous float32 tensor of `n` elements in host memory (checked
    // above), borrowed mutably for as long as the slice lives; the caller hands over a tensor
    // that no other handle reads or writes meanwhile.
    let out = unsafe { std::slice::from_raw_parts_mut(x.data_ptr() as *mut f32, n) };
    train_batch_into(paths, seeds, size, out)
}
