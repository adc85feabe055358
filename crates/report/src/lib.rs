//! `ventral-report`: the paper's Table 1 from score stores, beside the published CORnet-S
//! row, as Markdown, self-contained HTML and CSV — the `report` stage kind.
//!
//! ```toml
//! [stages.report]
//! kind = "report"
//! inputs = { scores = ["stage:v4", "stage:it"], imagenet = "stage:top1" }
//! profile = "embedded (synthetic world)"
//! ```
//!
//! Every number names the output (content digest) it was read from; the report also prints
//! the `ventral sql` query that rebuilds the table from the score stores. Benchmarks not run
//! are shown as "—", and the Brain-Score composite says which benchmarks it averages.

pub mod figures;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use ventral_dag::{BoxError, ParamSpec, ParamType, StageContext, StageKind};

/// The paper's published CORnet-S row (Table 1).
pub const PUBLISHED: [(&str, f64); 6] = [
    ("Brain-Score", 0.471),
    ("V4", 0.65),
    ("IT", 0.60),
    ("Behaviour", 0.382),
    ("OST", 0.25),
    ("ImageNet top-1", 0.731),
];

/// One score read from a store.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Table column (V4, IT, Behaviour, OST).
    pub column: String,
    /// Model.
    pub model: String,
    /// Ceiled score.
    pub value: f64,
    /// Raw score and ceiling, if known.
    pub raw: Option<(f64, f64)>,
    /// The output it came from (its folder name: the content digest).
    pub source: String,
}

fn column_of(benchmark: &str) -> String {
    for c in ["V4", "IT"] {
        if benchmark.contains(&format!(".{c}")) {
            return c.into();
        }
    }
    if benchmark.contains("Rajalingham") || benchmark.to_lowercase().contains("i2n") {
        return "Behaviour".into();
    }
    if benchmark.contains("Kar") || benchmark.to_lowercase().contains("ost") {
        return "OST".into();
    }
    benchmark.into()
}

fn digest_of(p: &Path) -> String {
    p.canonicalize()
        .ok()
        .and_then(|c| c.file_name().map(|s| s.to_string_lossy().to_string()))
        .unwrap_or_default()
}

/// Read `score.json` of each score store.
pub fn read_scores(dirs: &[&Path]) -> Result<Vec<Entry>, BoxError> {
    let mut out = Vec::new();
    for d in dirs {
        let p = d.join("score.json");
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?,
        )
        .map_err(|e| format!("{}: {e}", p.display()))?;
        let bench = v["benchmark"].as_str().unwrap_or_default();
        out.push(Entry {
            column: column_of(bench),
            model: v["model"].as_str().unwrap_or("model").to_string(),
            value: v["ceiled"].as_f64().unwrap_or(f64::NAN),
            raw: v["raw"].as_f64().zip(v["ceiling"].as_f64()),
            source: digest_of(d),
        });
    }
    Ok(out)
}

fn fmt(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:.3}"),
        _ => "—".into(),
    }
}

/// The report's Markdown.
pub fn markdown(entries: &[Entry], top1: &[(String, f64, String)], profile: &str) -> String {
    let mut models: Vec<String> = entries
        .iter()
        .map(|e| e.model.clone())
        .chain(top1.iter().map(|t| t.0.clone()))
        .collect();
    models.sort();
    models.dedup();
    let cols = ["V4", "IT", "Behaviour", "OST"];
    let mut s = String::new();
    s.push_str("# CORnet-S, reproduced\n\n");
    s.push_str(&format!(
        "Our numbers come from the **{profile}** profile. "
    ));
    if profile.contains("synthetic") || profile.contains("embedded") {
        s.push_str("They are measured on the synthetic world (generated images, a hidden brain with known ceilings, a narrow CORnet-S trained at low resolution), not on the real recordings: they test the pipeline, not the paper's claims.\n\n");
    } else {
        s.push_str("\n\n");
    }
    s.push_str("## Table 1\n\n| model | Brain-Score | V4 | IT | Behaviour | OST | ImageNet top-1 |\n|---|---|---|---|---|---|---|\n");
    let published: BTreeMap<&str, f64> = PUBLISHED.iter().copied().collect();
    s.push_str(&format!(
        "| CORnet-S (published, real data) | {} | {} | {} | {} | {} | {} |\n",
        fmt(Some(published["Brain-Score"])),
        fmt(Some(published["V4"])),
        fmt(Some(published["IT"])),
        fmt(Some(published["Behaviour"])),
        fmt(Some(published["OST"])),
        fmt(Some(published["ImageNet top-1"]))
    ));
    let mut notes = Vec::new();
    for m in &models {
        let get = |c: &str| entries.iter().find(|e| &e.model == m && e.column == c);
        let have: Vec<f64> = cols
            .iter()
            .filter_map(|c| get(c).map(|e| e.value))
            .collect();
        let composite = if have.is_empty() {
            None
        } else {
            Some(have.iter().sum::<f64>() / have.len() as f64)
        };
        let which: Vec<&str> = cols.iter().copied().filter(|c| get(c).is_some()).collect();
        if which.len() < cols.len() && !which.is_empty() {
            notes.push(format!(
                "{m}: Brain-Score here is the mean of {} only (the other benchmarks did not run).",
                which.join(", ")
            ));
        }
        let t = top1.iter().find(|t| &t.0 == m);
        s.push_str(&format!(
            "| {m} ({profile}) | {} | {} | {} | {} | {} | {} |\n",
            fmt(composite),
            fmt(get("V4").map(|e| e.value)),
            fmt(get("IT").map(|e| e.value)),
            fmt(get("Behaviour").map(|e| e.value)),
            fmt(get("OST").map(|e| e.value)),
            fmt(t.map(|t| t.1))
        ));
    }
    s.push('\n');
    for n in notes {
        s.push_str(&format!("- {n}\n"));
    }
    s.push_str("\n## Where each number comes from\n\n| model | column | ceiled | raw | ceiling | output |\n|---|---|---|---|---|---|\n");
    for e in entries {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | `{}` |\n",
            e.model,
            e.column,
            fmt(Some(e.value)),
            fmt(e.raw.map(|r| r.0)),
            fmt(e.raw.map(|r| r.1)),
            e.source
        ));
    }
    for (m, v, src) in top1 {
        s.push_str(&format!(
            "| {m} | ImageNet top-1 | {} | | | `{src}` |\n",
            fmt(Some(*v))
        ));
    }
    s.push_str("\nThe same table from the score stores:\n\n```sql\nSELECT model, benchmark, value AS ceiled, stage, stage_key\nFROM scores\nWHERE quantity = 'ceiled' AND split IS NULL\nORDER BY model, benchmark;\n```\n\n`ventral sql` runs it in the workspace; `ventral show STAGE` gives each stage's key and output.\n");
    s
}

/// A CSV field, quoted when it holds a comma, quote or newline.
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A self-contained HTML page of the Markdown (tables and code blocks rendered).
pub fn html(md: &str) -> String {
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>ventral report</title><style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}code,pre{background:#f4f4f4}</style></head><body>\n",
    );
    let mut in_table = false;
    let mut in_code = false;
    for line in md.lines() {
        if line.starts_with("```") {
            out.push_str(if in_code { "</pre>\n" } else { "<pre>" });
            in_code = !in_code;
            continue;
        }
        if in_code {
            out.push_str(&html_escape(line));
            out.push('\n');
            continue;
        }
        if line.starts_with('|') {
            if line.starts_with("|---") {
                continue;
            }
            if !in_table {
                out.push_str("<table>\n");
                in_table = true;
            }
            let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
            out.push_str("<tr>");
            for c in cells {
                out.push_str(&format!(
                    "<td>{}</td>",
                    html_escape(c.trim()).replace('`', "")
                ));
            }
            out.push_str("</tr>\n");
            continue;
        }
        if in_table {
            out.push_str("</table>\n");
            in_table = false;
        }
        if let Some(h) = line.strip_prefix("## ") {
            out.push_str(&format!("<h2>{}</h2>\n", html_escape(h)));
        } else if let Some(h) = line.strip_prefix("# ") {
            out.push_str(&format!("<h1>{}</h1>\n", html_escape(h)));
        } else if let Some(li) = line.strip_prefix("- ") {
            out.push_str(&format!("<li>{}</li>\n", html_escape(li)));
        } else if !line.trim().is_empty() {
            out.push_str(&format!("<p>{}</p>\n", html_escape(line).replace("**", "")));
        }
    }
    if in_table {
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

const PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "profile",
    ty: ParamType::Str,
    required: false,
    doc: "the profile that produced the numbers, stated in the report",
}];

/// `report`: Table 1 from score stores and ImageNet evaluations.
pub struct ReportKind {
    code: String,
}

impl ReportKind {
    /// With its code identity.
    pub fn new(code: &str) -> Self {
        ReportKind { code: code.into() }
    }
}

impl StageKind for ReportKind {
    fn name(&self) -> &str {
        "report"
    }
    fn code_identity(&self) -> &str {
        &self.code
    }
    fn params(&self) -> &[ParamSpec] {
        PARAMS
    }
    fn doc(&self) -> &str {
        "Table 1 (inputs `scores`: score stores; optional `imagenet`: evaluate outputs) as report.md, report.html, table1.csv"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let dirs: Vec<&Path> = ctx.input("scores")?.iter().map(|p| p.as_path()).collect();
        let entries = read_scores(&dirs)?;
        let model = entries
            .first()
            .map(|e| e.model.clone())
            .unwrap_or_else(|| "model".into());
        let mut top1 = Vec::new();
        if let Some(evals) = ctx.inputs.get("imagenet") {
            for d in evals {
                let p = d.join("eval.json");
                let v: Value = serde_json::from_str(
                    &std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?,
                )?;
                top1.push((
                    model.clone(),
                    v["top1"].as_f64().unwrap_or(f64::NAN),
                    digest_of(d),
                ));
            }
        }
        let profile = ctx
            .params
            .get("profile")
            .and_then(|v| v.as_str())
            .unwrap_or("embedded (synthetic world)");
        let mut md = markdown(&entries, &top1, profile);
        // Figures: SVG files beside the report, inlined into the HTML.
        let mut points = Vec::new();
        for (m, t, _) in &top1 {
            let have: Vec<f64> = entries
                .iter()
                .filter(|e| &e.model == m)
                .map(|e| e.value)
                .collect();
            if !have.is_empty() {
                points.push((m.clone(), *t, have.iter().sum::<f64>() / have.len() as f64));
            }
        }
        let mut figs = vec![
            (
                "fig1_brainscore_vs_top1.svg",
                figures::brainscore_vs_top1(&points)?,
            ),
            ("table1.svg", figures::table1_bars(&entries)?),
        ];
        // Fig. 5 from an OST score store's per-image solution times.
        for d in &dirs {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(d.join("score.json"))?)?;
            if let Some(pts) = v["per_image"].as_array() {
                let xy: Vec<(f64, f64)> = pts
                    .iter()
                    .filter_map(|p| Some((p[2].as_f64()?, p[1].as_f64()?)))
                    .collect();
                let rho = v["raw"].as_f64().unwrap_or(f64::NAN);
                figs.push(("fig5_ost.svg", figures::ost_scatter(&xy, rho)?));
            }
        }
        md.push_str("\n## Figures\n\n");
        for (name, svg) in &figs {
            std::fs::write(ctx.out_dir.join(name), svg)?;
            md.push_str(&format!("![{name}]({name})\n\n"));
        }
        md.push_str("Not drawn yet: depth vs scores and the circuitry variants (Fig. 3, 4; `pipelines/variants.toml` computes their numbers), early/late IT (Fig. 7), behaviour over training (Fig. 8).\n");
        std::fs::write(ctx.out_dir.join("report.md"), &md)?;
        let mut page = html(&md);
        for (name, svg) in &figs {
            page = page.replace(&format!("<p>![{name}]({name})</p>"), svg);
        }
        std::fs::write(ctx.out_dir.join("report.html"), page)?;
        let mut csv = String::from("model,column,ceiled,raw,ceiling,output\n");
        for e in &entries {
            csv.push_str(&format!(
                "{},{},{},{},{},{}\n",
                quote(&e.model),
                quote(&e.column),
                e.value,
                e.raw.map(|r| r.0.to_string()).unwrap_or_default(),
                e.raw.map(|r| r.1.to_string()).unwrap_or_default(),
                e.source
            ));
        }
        for (m, v, src) in &top1 {
            csv.push_str(&format!("{},ImageNet top-1,{v},,,{src}\n", quote(m)));
        }
        std::fs::write(ctx.out_dir.join("table1.csv"), csv)?;
        (ctx.progress)(&format!("{} scores", entries.len()));
        Ok(())
    }
}
