//! Procedural objects on textured backgrounds.
//!
//! An object is a closed outline given by its radius as a function of angle, a sum of
//! harmonics `r(θ) = 1 + Σ a_h cos(hθ + φ_h)`: a category fixes which harmonics dominate
//! (its family), an object fixes their amplitudes and phases. Its surface carries a grating
//! of its own frequency and orientation and a shading gradient. A pose — in-plane rotation
//! `rxy`, out-of-plane rotations `rxz`, `ryz` (rendered as foreshortening), position
//! `ty`, `tz` and scale `s` — places it; HvM's variation levels draw poses from HvM's ranges.
//! Backgrounds are sums of random gratings. Pixels are supersampled 2×2.

use image::{Rgb, RgbImage};

use crate::rng::Rng;

/// The outline and surface of one object.
#[derive(Clone, Debug)]
pub struct Shape {
    /// `(harmonic, amplitude, phase)`.
    pub harmonics: Vec<(f64, f64, f64)>,
    /// Aspect ratio (x stretch).
    pub aspect: f64,
    /// Grating frequency (cycles per object radius) and orientation (radians).
    pub texture: (f64, f64),
    /// Mean surface colour (RGB in [0, 1]).
    pub color: [f64; 3],
    /// Grating contrast.
    pub contrast: f64,
}

impl Shape {
    fn radius(&self, theta: f64) -> f64 {
        let mut r = 1.0;
        for &(h, a, p) in &self.harmonics {
            r += a * (h * theta + p).cos();
        }
        r.max(0.15)
    }
}

/// Where and how an object is seen.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pose {
    /// In-plane rotation (degrees).
    pub rxy: f64,
    /// Rotation about the vertical axis (degrees): foreshortens x.
    pub rxz: f64,
    /// Rotation about the horizontal axis (degrees): foreshortens y.
    pub ryz: f64,
    /// Horizontal position (HvM units: ±0.6 at V6).
    pub ty: f64,
    /// Vertical position (HvM units: ±1.2 at V6).
    pub tz: f64,
    /// Scale (1 = nominal).
    pub s: f64,
}

/// A background: a few gratings.
#[derive(Clone, Debug)]
pub struct Background {
    /// `(frequency cycles/image, orientation, phase, amplitude)`.
    pub gratings: Vec<(f64, f64, f64, f64)>,
    /// Mean colour.
    pub color: [f64; 3],
}

impl Background {
    /// A random background.
    pub fn random(rng: &mut Rng, colour: bool) -> Background {
        let n = 3 + rng.below(3);
        let gratings = (0..n)
            .map(|_| {
                (
                    rng.range(1.0, 12.0),
                    rng.range(0.0, std::f64::consts::PI),
                    rng.range(0.0, std::f64::consts::TAU),
                    rng.range(0.03, 0.12),
                )
            })
            .collect();
        let g = rng.range(0.3, 0.6);
        let color = if colour {
            [
                rng.range(0.2, 0.7),
                rng.range(0.2, 0.7),
                rng.range(0.2, 0.7),
            ]
        } else {
            [g, g, g]
        };
        Background { gratings, color }
    }
}

/// One object placed in a scene.
#[derive(Clone, Debug)]
pub struct Placed {
    /// The object.
    pub shape: Shape,
    /// Its pose.
    pub pose: Pose,
    /// Its nominal radius as a fraction of the image size.
    pub size: f64,
}

impl Placed {
    /// Centre in pixels and radius in pixels for an image of `n` pixels.
    pub fn geometry(&self, n: f64) -> (f64, f64, f64) {
        let cx = n * (0.5 + 0.25 * self.pose.ty);
        let cy = n * (0.5 - 0.125 * self.pose.tz);
        (cx, cy, self.size * n * self.pose.s)
    }

    /// Bounding box `(x, y, w, h)` in pixels (COCO convention).
    pub fn bbox(&self, n: f64) -> [f64; 4] {
        let (cx, cy, r) = self.geometry(n);
        let max_r = r
            * (1.0 + self.shape.harmonics.iter().map(|h| h.1.abs()).sum::<f64>())
            * self.shape.aspect.max(1.0);
        let x0 = (cx - max_r).max(0.0);
        let y0 = (cy - max_r).max(0.0);
        let x1 = (cx + max_r).min(n);
        let y1 = (cy + max_r).min(n);
        [x0, y0, (x1 - x0).max(0.0), (y1 - y0).max(0.0)]
    }

    /// Surface value at pixel (x, y), if the object covers it.
    fn sample(&self, x: f64, y: f64, n: f64) -> Option<[f64; 3]> {
        let (cx, cy, r) = self.geometry(n);
        let (dx, dy) = ((x - cx) / r, (y - cy) / r);
        let a = -self.pose.rxy.to_radians();
        let (ca, sa) = (a.cos(), a.sin());
        let (mut u, mut v) = (ca * dx - sa * dy, sa * dx + ca * dy);
        let fx = self.pose.rxz.to_radians().cos().abs().max(0.25) * self.shape.aspect;
        let fy = self.pose.ryz.to_radians().cos().abs().max(0.25);
        u /= fx;
        v /= fy;
        let rho = (u * u + v * v).sqrt();
        let theta = v.atan2(u);
        if rho > self.shape.radius(theta) {
            return None;
        }
        let (f, o) = self.shape.texture;
        let g = (std::f64::consts::TAU * f * (u * o.cos() + v * o.sin())).sin();
        let shade = 0.85 + 0.15 * (u - v) * 0.5;
        let c = self.shape.color;
        let k = self.shape.contrast;
        Some([
            (c[0] * shade + k * g).clamp(0.0, 1.0),
            (c[1] * shade + k * g).clamp(0.0, 1.0),
            (c[2] * shade + k * g).clamp(0.0, 1.0),
        ])
    }
}

/// A scene: a background, objects back to front, grayscale or colour, an optional circular
/// aperture (HvM's disc fade).
#[derive(Clone, Debug)]
pub struct Scene {
    /// The background.
    pub background: Background,
    /// Objects, drawn in order (later ones in front).
    pub objects: Vec<Placed>,
    /// Convert to gray.
    pub gray: bool,
    /// Fade to mid-gray outside a centred disc.
    pub disc: bool,
}

impl Scene {
    /// Render at `n × n` pixels.
    pub fn render(&self, n: u32) -> RgbImage {
        let nf = n as f64;
        let mut img = RgbImage::new(n, n);
        for (px, py, p) in img.enumerate_pixels_mut() {
            let mut acc = [0.0f64; 3];
            for (sx, sy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let (x, y) = (px as f64 + sx, py as f64 + sy);
                let mut c = self.background.color;
                let mut b = 0.0;
                for &(f, o, ph, a) in &self.background.gratings {
                    b += a
                        * (std::f64::consts::TAU * f * (x * o.cos() + y * o.sin()) / nf + ph).sin();
                }
                for ch in &mut c {
                    *ch = (*ch + b).clamp(0.0, 1.0);
                }
                for o in &self.objects {
                    if let Some(s) = o.sample(x, y, nf) {
                        c = s;
                    }
                }
                if self.gray {
                    let l = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
                    c = [l, l, l];
                }
                if self.disc {
                    let d = ((x - nf / 2.0).powi(2) + (y - nf / 2.0).powi(2)).sqrt() / (nf / 2.0);
                    let w = ((1.0 - d) / 0.08).clamp(0.0, 1.0);
                    for ch in &mut c {
                        *ch = 0.5 + (*ch - 0.5) * w;
                    }
                }
                for k in 0..3 {
                    acc[k] += c[k] / 4.0;
                }
            }
            *p = Rgb([
                (acc[0] * 255.0).round() as u8,
                (acc[1] * 255.0).round() as u8,
                (acc[2] * 255.0).round() as u8,
            ]);
        }
        img
    }
}

/// Mid-level features of an image (what the hidden V4 sees): oriented gradient energy in a
/// 4 × 4 grid of cells, 6 orientations each, on a 32 × 32 grayscale version (96 values).
pub fn midlevel_features(img: &RgbImage) -> Vec<f64> {
    let small = image::imageops::resize(img, 32, 32, image::imageops::FilterType::Triangle);
    let lum = |x: u32, y: u32| {
        let p = small.get_pixel(x.min(31), y.min(31));
        (0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64) / 255.0
    };
    let mut f = vec![0.0f64; 96];
    for y in 1..31 {
        for x in 1..31 {
            let gx = lum(x + 1, y) - lum(x - 1, y);
            let gy = lum(x, y + 1) - lum(x, y - 1);
            let mag = (gx * gx + gy * gy).sqrt();
            let ang = gy.atan2(gx).rem_euclid(std::f64::consts::PI);
            let bin = ((ang / std::f64::consts::PI * 6.0) as usize).min(5);
            let cell = (y as usize / 8) * 4 + (x as usize / 8);
            f[cell * 6 + bin] += mag;
        }
    }
    f
}
