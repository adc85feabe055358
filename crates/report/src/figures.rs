//! The report's figures after the paper, each drawn twice by the same code: as SVG (text
//! stays text) and as PNG (plotters' bitmap backend, text rasterised with DejaVu Sans).

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::PUBLISHED;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn err(e: impl std::fmt::Display) -> Box<dyn std::error::Error + Send + Sync> {
    e.to_string().into()
}

/// Where DejaVu Sans is looked for (Debian's `fonts-dejavu-core`, which `make` installs);
/// `VENTRAL_FONT` names another TrueType file.
const FONT_PATHS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Register the font plotters draws text with (once per process). Every figure, SVG
/// included, needs it: plotters measures text with it.
fn font() -> Res<()> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let candidates: Vec<String> = std::env::var("VENTRAL_FONT")
            .ok()
            .into_iter()
            .chain(FONT_PATHS.iter().map(|s| s.to_string()))
            .collect();
        for p in &candidates {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                return plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                    .map_err(|_| format!("{p}: not a TrueType font"));
            }
        }
        Err(format!(
            "no font for the figures: none of {} exists (install Debian's fonts-dejavu-core, or set VENTRAL_FONT to a .ttf file)",
            candidates.join(", ")
        ))
    })
    .clone()
    .map_err(err)
}

/// One figure in both formats.
#[derive(Clone, Debug)]
pub struct Figure {
    /// File stem (`fig1_brainscore_vs_top1`).
    pub name: String,
    /// What it shows, for the report's text.
    pub title: String,
    /// The SVG document.
    pub svg: String,
    /// The PNG file's bytes.
    pub png: Vec<u8>,
}

fn png_of(px: &[u8], (w, h): (u32, u32)) -> Res<Vec<u8>> {
    let img = image::RgbImage::from_raw(w, h, px.to_vec()).ok_or("PNG: buffer size")?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(err)?;
    Ok(out.into_inner())
}

/// Draw `$f(&root, args…)` on an SVG and on a bitmap backend of `$size`.
macro_rules! figure {
    ($name:expr, $title:expr, $size:expr, $f:ident ( $($arg:expr),* )) => {{
        font()?;
        let size: (u32, u32) = $size;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            $f(&root, $($arg),*)?;
            root.present().map_err(err)?;
        }
        let mut px = vec![255u8; (size.0 * size.1 * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut px, size).into_drawing_area();
            $f(&root, $($arg),*)?;
            root.present().map_err(err)?;
        }
        Ok(Figure {
            name: $name.to_string(),
            title: $title.to_string(),
            svg,
            png: png_of(&px, size)?,
        })
    }};
}

type Area<'a, DB> = DrawingArea<DB, Shift>;

fn range(values: impl Iterator<Item = f64>, lo: f64, hi: f64) -> (f64, f64) {
    let (mut a, mut b) = (lo, hi);
    for v in values.filter(|v| v.is_finite()) {
        a = a.min(v);
        b = b.max(v);
    }
    if !a.is_finite() || !b.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((b - a) * 0.08).max(0.02);
    (a - pad, b + pad)
}

/// The palette index of grey (context points).
const GREY: usize = 7;

fn palette(i: usize) -> RGBColor {
    const C: [RGBColor; 8] = [
        RGBColor(214, 39, 40),
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    C[i % C.len()]
}

fn scatter<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    caption: &str,
    (x_desc, y_desc): (&str, &str),
    points: &[(String, f64, f64, usize)],
    line: bool,
) -> Res<()> {
    root.fill(&WHITE).map_err(err)?;
    let (x0, x1) = range(points.iter().map(|p| p.1), f64::INFINITY, f64::NEG_INFINITY);
    let (y0, y1) = range(points.iter().map(|p| p.2), f64::INFINITY, f64::NEG_INFINITY);
    // Room on the right for the labels.
    let x1 = x1 + (x1 - x0) * 0.25;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 16))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(err)?;
    if line && points.len() > 1 {
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.1, p.2)),
                BLACK.mix(0.3),
            ))
            .map_err(err)?;
    }
    for (name, x, y, c) in points {
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((*x, *y))
                    + Circle::new((0, 0), 5, palette(*c).filled())
                    + Text::new(name.clone(), (7, -12), ("sans-serif", 11)),
            ))
            .map_err(err)?;
    }
    Ok(())
}

fn fig1<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    points: &[(String, f64, f64)],
    published: &[(String, f64, f64)],
) -> Res<()> {
    // The published models in grey and unlabelled but for CORnet-S; ours labelled, on top.
    let mut all: Vec<(String, f64, f64, usize)> = published
        .iter()
        .filter(|p| p.0 != "CORnet-S")
        .map(|p| (String::new(), p.1, p.2, GREY))
        .collect();
    let cornet = published
        .iter()
        .find(|p| p.0 == "CORnet-S")
        .map_or((0.731, 0.471), |p| (p.1, p.2));
    all.push(("CORnet-S (published)".to_string(), cornet.0, cornet.1, 1));
    all.extend(points.iter().map(|p| (p.0.clone(), p.1, p.2, 0)));
    scatter(
        root,
        "Brain-Score vs ImageNet top-1 (Fig. 1)",
        ("ImageNet top-1", "Brain-Score"),
        &all,
        false,
    )
}

/// Fig. 1: Brain-Score against ImageNet top-1, `(model, top-1, Brain-Score)`, beside the
/// published models (`published`, the same triples; CORnet-S marked), or the published
/// CORnet-S alone when none are given.
pub fn brainscore_vs_top1(
    points: &[(String, f64, f64)],
    published: &[(String, f64, f64)],
) -> Res<Figure> {
    figure!(
        "fig1_brainscore_vs_top1",
        "Brain-Score vs ImageNet top-1 (Fig. 1)",
        (520, 380),
        fig1(points, published)
    )
}

/// Grouped bars: one group per label, one bar per series; `None` leaves a gap.
fn bars<DB: DrawingBackend>(
    root: &Area<'_, DB>,
    caption: &str,
    y_desc: &str,
    groups: &[String],
    series: &[(String, Vec<Option<f64>>)],
) -> Res<()> {
    root.fill(&WHITE).map_err(err)?;
    let (y0, y1) = range(
        series.iter().flat_map(|s| s.1.iter().flatten().copied()),
        0.0,
        0.1,
    );
    let n = groups.len().max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 16))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..n as f64, y0.min(0.0)..y1)
        .map_err(err)?;
    let labels = groups.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 && i < labels.len() {
                labels[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .draw()
        .map_err(err)?;
    let k = series.len().max(1) as f64;
    let w = 0.8 / k;
    for (s, (name, values)) in series.iter().enumerate() {
        let colour = palette(s);
        chart
            .draw_series(values.iter().enumerate().filter_map(|(g, v)| {
                let v = (*v)?;
                let x = g as f64 + 0.1 + s as f64 * w;
                v.is_finite()
                    .then(|| Rectangle::new([(x, 0.0), (x + w * 0.9, v)], colour.filled()))
            }))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 11))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Table 1 as grouped bars: each benchmark, the published CORnet-S and each of our models.
pub fn table1_bars(rows: &[(String, [Option<f64>; 4])]) -> Res<Figure> {
    let cols = ["V4", "IT", "Behaviour", "OST"];
    let published: std::collections::BTreeMap<&str, f64> = PUBLISHED.iter().copied().collect();
    let mut series = vec![(
        "CORnet-S (published)".to_string(),
        cols.iter().map(|c| Some(published[c])).collect::<Vec<_>>(),
    )];
    series.extend(rows.iter().map(|(m, v)| (m.clone(), v.to_vec())));
    let groups: Vec<String> = cols.iter().map(|s| s.to_string()).collect();
    figure!(
        "table1",
        "Table 1 as bars: ours beside the published CORnet-S",
        (600, 400),
        bars(
            "Table 1: ours beside the published CORnet-S",
            "ceiled score",
            &groups,
            &series
        )
    )
}

fn fig3<DB: DrawingBackend>(root: &Area<'_, DB>, points: &[(String, f64, f64, f64)]) -> Res<()> {
    let mut all = Vec::new();
    for (m, d, v4, it) in points {
        all.push((format!("{m} V4"), *d, *v4, 1));
        all.push((format!("{m} IT"), *d, *it, 0));
    }
    scatter(
        root,
        "Depth vs V4 (blue) and IT (red) (Fig. 3)",
        ("depth (convolutions on the longest path)", "ceiled score"),
        &all,
        false,
    )
}

/// Fig. 3: depth against V4 and IT scores, `(model, depth, V4, IT)`.
pub fn depth_vs_scores(points: &[(String, f64, f64, f64)]) -> Res<Figure> {
    figure!(
        "fig3_depth_vs_scores",
        "Depth vs V4 and IT scores (Fig. 3)",
        (620, 420),
        fig3(points)
    )
}

/// Fig. 4: the circuitry variants' scores side by side: per model, V4, IT and top-1.
pub fn variants(rows: &[(String, [Option<f64>; 3])]) -> Res<Figure> {
    let groups: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let names = ["V4", "IT", "ImageNet top-1"];
    let series: Vec<(String, Vec<Option<f64>>)> = names
        .iter()
        .enumerate()
        .map(|(k, n)| (n.to_string(), rows.iter().map(|r| r.1[k]).collect()))
        .collect();
    figure!(
        "fig4_variants",
        "Circuitry variants: V4, IT and ImageNet top-1 (Fig. 4)",
        (120 + 110 * rows.len() as u32, 420),
        bars("Circuitry variants (Fig. 4)", "score", &groups, &series)
    )
}

fn fig5<DB: DrawingBackend>(root: &Area<'_, DB>, points: &[(f64, f64)], rho: f64) -> Res<()> {
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("OST per image, Spearman {rho:.2} (Fig. 5)"),
            ("sans-serif", 16),
        )
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(60.0..260.0, 60.0..260.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("monkey OST (ms)")
        .y_desc("model OST (ms)")
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            vec![(60.0, 60.0), (260.0, 260.0)],
            BLACK.mix(0.3),
        ))
        .map_err(err)?;
    chart
        .draw_series(
            points
                .iter()
                .map(|&(m, o)| Circle::new((m, o), 3, palette(0).mix(0.6).filled())),
        )
        .map_err(err)?;
    Ok(())
}

/// Fig. 5: the model's object solution time per image against the monkey's.
pub fn ost_scatter(points: &[(f64, f64)], rho: f64) -> Res<Figure> {
    figure!(
        "fig5_ost",
        "Object solution times, model vs monkey (Fig. 5)",
        (420, 400),
        fig5(points, rho)
    )
}

/// Fig. 7: IT predictivity early (90–110 ms) and late (190–210 ms), per model.
pub fn early_late(rows: &[(String, Option<f64>, Option<f64>)]) -> Res<Figure> {
    let groups: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let series = vec![
        (
            "early IT (90–110 ms)".to_string(),
            rows.iter().map(|r| r.1).collect(),
        ),
        (
            "late IT (190–210 ms)".to_string(),
            rows.iter().map(|r| r.2).collect(),
        ),
    ];
    figure!(
        "fig7_early_late_it",
        "Early and late IT predictivity (Fig. 7)",
        (160 + 160 * rows.len() as u32, 400),
        bars(
            "Early vs late IT (Fig. 7)",
            "ceiled score",
            &groups,
            &series
        )
    )
}

fn fig8<DB: DrawingBackend>(root: &Area<'_, DB>, points: &[(String, f64, f64)]) -> Res<()> {
    let all: Vec<(String, f64, f64, usize)> =
        points.iter().map(|p| (p.0.clone(), p.1, p.2, 0)).collect();
    scatter(
        root,
        "Behaviour vs ImageNet top-1 over training (Fig. 8)",
        ("ImageNet top-1", "behaviour (I2n, ceiled)"),
        &all,
        true,
    )
}

/// Fig. 8: behaviour against ImageNet top-1 along training, `(model, top-1, behaviour)` in
/// training order.
pub fn behaviour_vs_top1(points: &[(String, f64, f64)]) -> Res<Figure> {
    figure!(
        "fig8_behaviour_vs_top1",
        "Behaviour vs ImageNet top-1 over training (Fig. 8)",
        (560, 400),
        fig8(points)
    )
}

/// One line of the layer-profile figure: `(label, every candidate layer's score in
/// candidate order, the committed layer's index)`.
pub type LayerProfile = (String, Vec<f64>, Option<usize>);

fn layer_profiles_plot<DB: DrawingBackend>(root: &Area<'_, DB>, lines: &[LayerProfile]) -> Res<()> {
    root.fill(&WHITE).map_err(err)?;
    let (y0, y1) = range(
        lines.iter().flat_map(|l| l.1.iter().copied()),
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Per-layer scores, committed layers circled",
            ("sans-serif", 16),
        )
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..1.0, y0..y1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("relative depth of the candidate layer")
        .y_desc("ceiled score")
        .draw()
        .map_err(err)?;
    for (i, (label, values, chosen)) in lines.iter().enumerate() {
        let colour = palette(i);
        let n = values.len();
        let x = |k: usize| {
            if n > 1 {
                k as f64 / (n - 1) as f64
            } else {
                0.5
            }
        };
        chart
            .draw_series(LineSeries::new(
                values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(k, v)| (x(k), *v)),
                colour.stroke_width(2),
            ))
            .map_err(err)?
            .label(label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], colour.stroke_width(2))
            });
        if let Some(k) = chosen
            && let Some(v) = values.get(*k).filter(|v| v.is_finite())
        {
            chart
                .draw_series(std::iter::once(Circle::new(
                    (x(*k), *v),
                    6,
                    colour.stroke_width(2),
                )))
                .map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 11))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Every candidate layer's score per model and region (layer commitment's profile), the
/// committed layer circled.
pub fn layer_profiles(lines: &[LayerProfile]) -> Res<Figure> {
    figure!(
        "fig_layer_profiles",
        "Per-layer scores of each model and region; the committed layer circled",
        (620, 420),
        layer_profiles_plot(lines)
    )
}
