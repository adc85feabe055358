//! The report's figures, as SVG (plotters, no font files needed: text stays SVG text).

use plotters::prelude::*;

use crate::{Entry, PUBLISHED};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn err(e: impl std::fmt::Display) -> Box<dyn std::error::Error + Send + Sync> {
    e.to_string().into()
}

/// Fig. 1 after the paper: Brain-Score against ImageNet top-1, ours beside the published
/// CORnet-S.
pub fn brainscore_vs_top1(points: &[(String, f64, f64)]) -> Res<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (520, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let all: Vec<(String, f64, f64)> =
            std::iter::once(("CORnet-S (published)".to_string(), 0.731, 0.471))
                .chain(points.iter().cloned())
                .collect();
        let ymin = all.iter().map(|p| p.2).fold(0.0f64, f64::min) - 0.05;
        let mut chart = ChartBuilder::on(&root)
            .caption("Brain-Score vs ImageNet top-1 (Fig. 1)", ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..1.0, ymin..0.7)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("ImageNet top-1")
            .y_desc("Brain-Score")
            .draw()
            .map_err(err)?;
        for (i, (name, x, y)) in all.iter().enumerate() {
            let colour = if i == 0 { BLUE } else { RED };
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((*x, *y))
                        + Circle::new((0, 0), 5, colour.filled())
                        + Text::new(name.clone(), (7, -12), ("sans-serif", 11)),
                ))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Table 1 as grouped bars: each benchmark, ours (per model) beside the published value.
pub fn table1_bars(entries: &[Entry]) -> Res<String> {
    let cols = ["V4", "IT", "Behaviour", "OST"];
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let ymin = entries
            .iter()
            .map(|e| e.value)
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::min)
            - 0.05;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Table 1: ours (red) vs published CORnet-S (blue)",
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..cols.len() as f64, ymin..0.8)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(cols.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 0.01 && i < cols.len() {
                    cols[i].to_string()
                } else {
                    String::new()
                }
            })
            .y_desc("ceiled score")
            .draw()
            .map_err(err)?;
        let published: std::collections::BTreeMap<&str, f64> = PUBLISHED.iter().copied().collect();
        for (i, c) in cols.iter().enumerate() {
            let x = i as f64;
            let p = published[c];
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x + 0.1, 0.0), (x + 0.45, p)],
                    BLUE.filled(),
                )))
                .map_err(err)?;
            if let Some(e) = entries
                .iter()
                .find(|e| e.column == *c && e.value.is_finite())
            {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x + 0.55, 0.0), (x + 0.9, e.value)],
                        RED.filled(),
                    )))
                    .map_err(err)?;
            }
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Fig. 5 after the paper: the model's object solution time per image against the monkey's.
pub fn ost_scatter(points: &[(f64, f64)], rho: f64) -> Res<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (420, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("OST per image, Spearman {rho:.2} (Fig. 5)"),
                ("sans-serif", 16),
            )
            .margin(12)
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
                    .map(|&(m, o)| Circle::new((m, o), 3, RED.mix(0.6).filled())),
            )
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
