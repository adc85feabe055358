//! Images to tensors: Brain-Score's benchmark preprocessing and the training augmentations.
//!
//! Benchmark preprocessing (SPEC): load with PIL semantics (grey, palette and alpha become
//! RGB; alpha is dropped, not composited), resize to `size × size` (bilinear, antialiased
//! when shrinking — `image`'s triangle filter), scale to [0, 1], normalise with ImageNet's
//! mean and std. Training: random-resized-crop-free "random crop + flip" on an image first
//! resized so its short side is `size × 256/224`; validation: the same resize and a centre
//! crop. Images are decoded in parallel (rayon) and the result does not depend on the
//! thread count (each image's randomness comes from its own seed).

use std::path::Path;

use image::imageops::FilterType;
use image::{DynamicImage, RgbImage};
use rayon::prelude::*;
use tch::{Kind, Tensor};

use crate::error::{ModelError, Result, io};

/// ImageNet channel means.
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations.
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Decode an image file into RGB (PIL's `convert('RGB')`).
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    let img = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| io(path, e))?
        .decode()
        .map_err(|e| ModelError::Io {
            path: path.to_path_buf(),
            message: format!("unreadable image: {e}"),
        })?;
    Ok(match img {
        DynamicImage::ImageRgb8(i) => i,
        other => other.to_rgb8(),
    })
}

/// Normalised CHW floats of an RGB image.
fn chw(img: &RgbImage) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let n = (w * h) as usize;
    let mut out = vec![0f32; 3 * n];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * n + i] = (p[c] as f32 / 255.0 - MEAN[c]) / STD[c];
        }
    }
    out
}

/// Brain-Score's preprocessing of one image: resize to `size × size`, normalise.
pub fn preprocess(img: &RgbImage, size: u32) -> Vec<f32> {
    let r = image::imageops::resize(img, size, size, FilterType::Triangle);
    chw(&r)
}

/// A batch `(N, 3, size, size)` of files, preprocessed in parallel.
pub fn batch_from_files(paths: &[&Path], size: u32) -> Result<Tensor> {
    let per: Vec<Vec<f32>> = paths
        .par_iter()
        .map(|p| load_rgb(p).map(|img| preprocess(&img, size)))
        .collect::<Result<_>>()?;
    Ok(stack(per, size))
}

pub(crate) fn stack(per: Vec<Vec<f32>>, size: u32) -> Tensor {
    let n = per.len() as i64;
    let flat: Vec<f32> = per.into_iter().flatten().collect();
    Tensor::from_slice(&flat).view([n, 3, size as i64, size as i64])
}

/// SplitMix64: the per-image generator of the augmentations.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Training view of one image: resize the short side to `size·256/224`, crop `size × size`
/// at a position drawn from `seed`, flip horizontally with probability ½.
pub fn train_view(img: &RgbImage, size: u32, seed: u64) -> Vec<f32> {
    let short = ((size as f64) * 256.0 / 224.0).round() as u32;
    let r = resize_short(img, short);
    let (w, h) = r.dimensions();
    let a = splitmix(seed);
    let b = splitmix(a);
    let c = splitmix(b);
    let x = (a % (w - size + 1) as u64) as u32;
    let y = (b % (h - size + 1) as u64) as u32;
    let mut crop = image::imageops::crop_imm(&r, x, y, size, size).to_image();
    if c & 1 == 1 {
        crop = image::imageops::flip_horizontal(&crop);
    }
    chw(&crop)
}

/// Validation view: resize the short side to `size·256/224`, centre crop `size × size`.
pub fn val_view(img: &RgbImage, size: u32) -> Vec<f32> {
    let short = ((size as f64) * 256.0 / 224.0).round() as u32;
    let r = resize_short(img, short);
    let (w, h) = r.dimensions();
    let crop = image::imageops::crop_imm(&r, (w - size) / 2, (h - size) / 2, size, size).to_image();
    chw(&crop)
}

fn resize_short(img: &RgbImage, short: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let (nw, nh) = if w <= h {
        (
            short,
            ((h as f64) * short as f64 / w as f64)
                .round()
                .max(short as f64) as u32,
        )
    } else {
        (
            ((w as f64) * short as f64 / h as f64)
                .round()
                .max(short as f64) as u32,
            short,
        )
    };
    image::imageops::resize(img, nw, nh, FilterType::Triangle)
}

/// A `.npy` file of preprocessed images `(N, 3, H, W)` float32 (little-endian, C order).
pub fn read_npy(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    let bad = |m: &str| ModelError::Io {
        path: path.to_path_buf(),
        message: format!("not a (N, 3, H, W) float32 .npy: {m}"),
    };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("no NUMPY magic"));
    }
    let (hlen, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        if bytes.len() < 12 {
            return Err(bad("short header"));
        }
        (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        )
    };
    let header = String::from_utf8_lossy(
        bytes
            .get(start..start + hlen)
            .ok_or_else(|| bad("short header"))?,
    )
    .to_string();
    if !header.contains("'<f4'") {
        return Err(bad("dtype is not '<f4'"));
    }
    if header.contains("'fortran_order': True") {
        return Err(bad("Fortran order"));
    }
    let shape_txt = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let shape: Vec<i64> = shape_txt
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<i64>().map_err(|_| bad("shape")))
        .collect::<Result<_>>()?;
    if shape.len() != 4 || shape[1] != 3 {
        return Err(bad(&format!("shape {shape:?}")));
    }
    let data = &bytes[start + hlen..];
    let n: i64 = shape.iter().product();
    if data.len() != n as usize * 4 {
        return Err(bad("data length does not match the shape"));
    }
    Ok(Tensor::from_data_size(data, &shape, Kind::Float))
}

/// A host batch made ready for `device`: on CUDA it is copied into page-locked (pinned)
/// memory by the loader thread, so that [`upload`] can copy it asynchronously; elsewhere,
/// or if pinning fails, it is returned as it is.
pub fn pin_for(x: tch::Tensor, device: tch::Device) -> tch::Tensor {
    if device.is_cuda() {
        // `_pin_memory`, not `pin_memory`: tch always passes the device, which libtorch's
        // `pin_memory` warns about (deprecated) on every call.
        x.f_internal_pin_memory(device).unwrap_or(x)
    } else {
        x
    }
}

/// Move a host batch to `device`: on CUDA without waiting (truly asynchronous from the
/// pinned memory of [`pin_for`]; CUDA stages pageable memory itself). Out of device memory
/// is an error, not a panic.
pub fn upload(x: &tch::Tensor, device: tch::Device) -> crate::Result<tch::Tensor> {
    x.f_to_device_(device, x.kind(), device.is_cuda(), false)
        .map_err(|e| crate::error::torch(format!("copy a batch to {device:?}"), e))
}

/// `x` (N, C, H, W) with channels-last (NHWC) strides, its logical shape unchanged: what
/// PyTorch's `memory_format=torch.channels_last` is. Other ranks are returned as they are.
pub fn channels_last(x: &tch::Tensor) -> tch::Tensor {
    if x.dim() == 4 {
        x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    } else {
        x.shallow_clone()
    }
}

/// Start copying `x` to the host as f32. From CUDA the copy is queued without waiting, into
/// page-locked memory (what `.to("cpu", non_blocking=True)` does), so that every layer of a
/// batch is in flight at once; call [`downloads_done`] before reading the result.
pub fn download(x: &tch::Tensor) -> crate::Result<tch::Tensor> {
    let fail = |e| crate::error::torch("copy activations to the host", e);
    if x.device().is_cuda() {
        // Converted and made contiguous on the GPU first (a bf16 or channels-last output
        // would otherwise be converted element by element on the host).
        x.f_to_kind(tch::Kind::Float)
            .and_then(|f| f.f_contiguous())
            .and_then(|f| f.f_to_device_(tch::Device::Cpu, tch::Kind::Float, true, false))
            .map_err(fail)
    } else {
        x.f_to_kind(tch::Kind::Float).map_err(fail)
    }
}

/// Wait for the [`download`]s queued on `device`.
pub fn downloads_done(device: tch::Device) {
    if let tch::Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}
