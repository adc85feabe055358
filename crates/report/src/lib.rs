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
pub mod published;

use std::collections::BTreeMap;
use std::path::Path;

use ventral_stage::{BoxError, StageContext, StageKind};
use ventral_store::scores::{self, ImageOst, Member};

/// The paper's published CORnet-S row (Table 1).
pub const PUBLISHED: [(&str, f64); 6] = [
    ("Brain-Score", 0.471),
    ("V4", 0.65),
    ("IT", 0.60),
    ("Behaviour", 0.382),
    ("OST", 0.25),
    ("ImageNet top-1", 0.731),
];

/// The Table 1 benchmark columns (Brain-Score is their mean).
pub const TABLE1: [&str; 4] = ["V4", "IT", "Behaviour", "OST"];

/// One score read from a store.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The benchmark as the score store names it.
    pub benchmark: String,
    /// Table column: V4, IT, Behaviour, OST, Brain-Score, or the benchmark's own name for
    /// the generalisation tests.
    pub column: String,
    /// Model.
    pub model: String,
    /// Ceiled score.
    pub value: f64,
    /// Raw score and ceiling, if known.
    pub raw: Option<(f64, f64)>,
    /// A composite's members.
    pub members: Option<Vec<Member>>,
    /// An OST benchmark's per-image solution times (Fig. 5).
    pub per_image: Option<Vec<ImageOst>>,
    /// The output it came from (its folder name: the content digest).
    pub source: String,
}

/// One ImageNet evaluation.
#[derive(Clone, Debug)]
pub struct Eval {
    /// Model.
    pub model: String,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Depth (Fig. 3), when the architecture defines it.
    pub depth: Option<f64>,
    /// The output it came from.
    pub source: String,
}

/// The column a benchmark fills: Table 1's (by the names Brain-Score and our kinds use),
/// `Brain-Score` for a composite, else its own name (generalisation, early/late IT).
pub fn column_of(benchmark: &str) -> String {
    let l = benchmark.to_lowercase();
    if benchmark == "Brain-Score" || l == "brain-score" {
        return "Brain-Score".into();
    }
    if ["early", "late", "new", "transfer"]
        .iter()
        .any(|k| l.contains(k))
    {
        return benchmark.into();
    }
    for c in ["V4", "IT"] {
        if benchmark.contains(&format!(".{c}")) {
            return c.into();
        }
    }
    if benchmark.contains("Rajalingham") || l.contains("i2n") {
        return "Behaviour".into();
    }
    if benchmark.contains("Kar") || l.contains("ost") {
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

/// Read the summary of each score store; a malformed one is an error naming its file and
/// field.
pub fn read_scores(dirs: &[&Path]) -> Result<Vec<Entry>, BoxError> {
    let mut out = Vec::new();
    for d in dirs {
        let v = scores::read_summary(d)?;
        out.push(Entry {
            column: column_of(&v.benchmark),
            benchmark: v.benchmark,
            model: v.model,
            value: v.ceiled,
            raw: v.raw.zip(v.ceiling),
            members: v.members,
            per_image: v.per_image,
            source: digest_of(d),
        });
    }
    Ok(out)
}

/// `(model, benchmark, [(layer, ceiled score)])` of one commitment's rows.
type ProfileRows = (String, String, Vec<(String, f64)>);

/// The per-layer profiles of layer commitments (`commit` outputs): for each model and
/// region, every candidate layer's ceiled score in candidate order and the committed one.
pub fn layer_profiles(dirs: &[std::path::PathBuf]) -> Result<Vec<figures::LayerProfile>, BoxError> {
    let mut out = Vec::new();
    for d in dirs {
        let rows = scores::read_score_rows(&d.join(scores::SCORES_FILE))?;
        let map_file = d.join("region_layer_map.json");
        let map: BTreeMap<String, String> = match std::fs::read_to_string(&map_file) {
            Ok(t) => {
                serde_json::from_str(&t).map_err(|e| format!("{}: {e}", map_file.display()))?
            }
            Err(e) => return Err(format!("{}: {e}", map_file.display()).into()),
        };
        // (model, benchmark) in the order the rows give them; layers in row order.
        let mut lines: Vec<ProfileRows> = Vec::new();
        for row in rows
            .iter()
            .filter(|x| x.quantity == "ceiled" && x.split.is_none())
        {
            let Some(layer) = &row.layer else { continue };
            match lines
                .iter_mut()
                .find(|l| l.0 == row.model && l.1 == row.benchmark)
            {
                Some(l) => l.2.push((layer.clone(), row.value)),
                None => lines.push((
                    row.model.clone(),
                    row.benchmark.clone(),
                    vec![(layer.clone(), row.value)],
                )),
            }
        }
        for (model, bench, layers) in lines {
            let region = column_of(&bench);
            let chosen = map
                .get(&region)
                .and_then(|l| layers.iter().position(|x| &x.0 == l));
            out.push((
                format!("{model} {region}"),
                layers.into_iter().map(|x| x.1).collect(),
                chosen,
            ));
        }
    }
    Ok(out)
}

/// Read the `eval.json` of each evaluation.
pub fn read_evals(dirs: &[&Path]) -> Result<Vec<Eval>, BoxError> {
    let mut out = Vec::new();
    for d in dirs {
        let v = scores::read_evaluation(d)?;
        out.push(Eval {
            model: v.model,
            top1: v.top1,
            depth: v.depth,
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

/// Scores and evaluations of every model the inputs name.
pub struct Results {
    /// Scores.
    pub entries: Vec<Entry>,
    /// ImageNet evaluations.
    pub evals: Vec<Eval>,
    /// The paper's published figures (input `published`), if given.
    pub published: Vec<published::PublishedModel>,
}

impl Results {
    /// The models, in the order the inputs first name them.
    pub fn models(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in self
            .entries
            .iter()
            .map(|e| &e.model)
            .chain(self.evals.iter().map(|e| &e.model))
        {
            if !out.contains(m) {
                out.push(m.clone());
            }
        }
        out
    }

    /// `model`'s score in `column`.
    pub fn get(&self, model: &str, column: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.model == model && e.column == column)
    }

    /// The paper's Brain-Score for `model`'s architecture: the published row whose name is
    /// `model`'s up to a parenthesis (`AlexNet (small, 64 px)` → `AlexNet`), case ignored.
    pub fn published_brain_score(&self, model: &str) -> Option<f64> {
        let base = model.split(" (").next().unwrap_or(model).trim();
        self.published
            .iter()
            .find(|p| p.model.eq_ignore_ascii_case(base))
            .and_then(|p| p.table1("Brain-Score"))
    }

    /// `model`'s ImageNet evaluation.
    pub fn eval(&self, model: &str) -> Option<&Eval> {
        self.evals.iter().find(|e| e.model == model)
    }

    /// `model`'s Brain-Score: the score of its composite score store when that composite
    /// averages all four Table 1 benchmarks. The report never computes one: without such a
    /// composite the row shows no Brain-Score, and the note says why.
    pub fn brain_score(&self, model: &str) -> (Option<f64>, Option<String>) {
        let Some(e) = self.get(model, "Brain-Score") else {
            let ran: Vec<&str> = TABLE1
                .iter()
                .copied()
                .filter(|c| self.get(model, c).is_some())
                .collect();
            let note = (!ran.is_empty()).then(|| {
                format!(
                    "{model}: no Brain-Score: the inputs hold no composite (benchmarks scored: {}).",
                    ran.join(", ")
                )
            });
            return (None, note);
        };
        let covered: Vec<String> = e
            .members
            .iter()
            .flatten()
            .map(|m| column_of(&m.benchmark))
            .collect();
        let lacking: Vec<&str> = TABLE1
            .iter()
            .copied()
            .filter(|c| !covered.iter().any(|m| m == c))
            .collect();
        if lacking.is_empty() {
            (Some(e.value), None)
        } else {
            (
                None,
                Some(format!(
                    "{model}: no Brain-Score: the composite `{}` lacks {} (Brain-Score is the mean of all four).",
                    e.benchmark,
                    lacking.join(", ")
                )),
            )
        }
    }

    /// The generalisation columns (benchmarks outside Table 1), in input order.
    pub fn extra_columns(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            if e.column != "Brain-Score"
                && !TABLE1.contains(&e.column.as_str())
                && !out.contains(&e.column)
            {
                out.push(e.column.clone());
            }
        }
        out
    }
}

/// The torchvision architecture (ventral's zoo) that builds the network a published row
/// names; `None` for the TF-slim and Keras-only models (ResNet v2 is the pre-activation
/// ResNet, which torchvision lacks).
pub fn zoo_counterpart(published: &str) -> Option<&'static str> {
    Some(match published {
        "CORnet-S" => "CORnet-S",
        "AlexNet" => "alexnet",
        "VGG-16" => "vgg16",
        "VGG-19" => "vgg19",
        "ResNet-18" => "resnet18",
        "ResNet-34" => "resnet34",
        "DenseNet-121" => "densenet121",
        "DenseNet-169" => "densenet169",
        "DenseNet-201" => "densenet201",
        "SqueezeNet v1.0" => "squeezenet1_0",
        "SqueezeNet v1.1" => "squeezenet1_1",
        "Inception V3" => "inception_v3",
        _ => return None,
    })
}

/// The report's Markdown (without the figures section).
pub fn markdown(r: &Results, profile: &str) -> String {
    let models = r.models();
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
    s.push_str("## Table 1\n\nOur models by Brain-Score; *published* is the paper's Brain-Score for the same architecture (real data, 2019, four decimals as its data file has them).\n\n| model | Brain-Score | published | V4 | IT | Behaviour | OST | ImageNet top-1 |\n|---|---|---|---|---|---|---|---|\n");
    let published: BTreeMap<&str, f64> = PUBLISHED.iter().copied().collect();
    // The published column at the data file's four decimals (Table 1 rounds to three).
    let fmt4 = |x: Option<f64>| x.map_or_else(|| "—".to_string(), |v| format!("{v:.4}"));
    s.push_str(&format!(
        "| CORnet-S (published, real data) | {} | {} | {} | {} | {} | {} | {} |\n",
        fmt(Some(published["Brain-Score"])),
        fmt4(
            r.published_brain_score("CORnet-S")
                .or(Some(published["Brain-Score"]))
        ),
        fmt(Some(published["V4"])),
        fmt(Some(published["IT"])),
        fmt(Some(published["Behaviour"])),
        fmt(Some(published["OST"])),
        fmt(Some(published["ImageNet top-1"]))
    ));
    let mut notes = Vec::new();
    // Ordered by Brain-Score (rows without one last), then as the inputs name them.
    let mut ranked: Vec<(&String, Option<f64>)> = models
        .iter()
        .map(|m| (m, r.brain_score(m).0.filter(|v| v.is_finite())))
        .collect();
    ranked.sort_by(|a, b| match (a.1, b.1) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    for (m, _) in ranked {
        let (bs, note) = r.brain_score(m);
        notes.extend(note);
        if let Some(e) = r.get(m, "Brain-Score") {
            for a in e.members.iter().flatten().filter(|a| a.absent) {
                notes.push(format!(
                    "{m}: {} counts 0 in its Brain-Score: the model has no time, and the paper's Table 1 gives such models 0 (Brain-Score 2.4.2 would report no score).",
                    column_of(&a.benchmark)
                ));
            }
        }
        let get = |c: &str| r.get(m, c).map(|e| e.value);
        s.push_str(&format!(
            "| {m} ({profile}) | {} | {} | {} | {} | {} | {} | {} |\n",
            fmt(bs),
            fmt4(r.published_brain_score(m)),
            fmt(get("V4")),
            fmt(get("IT")),
            fmt(get("Behaviour")),
            fmt(get("OST")),
            fmt(r.eval(m).map(|t| t.top1))
        ));
    }
    s.push('\n');
    for n in notes {
        s.push_str(&format!("- {n}\n"));
    }
    let extra = r.extra_columns();
    if !extra.is_empty() {
        s.push_str("\n## Generalisation and early/late IT (paper §3.4, Fig. 7)\n\nCeiled scores; the raw score and ceiling of each are in the next table.\n\n| model |");
        for c in &extra {
            s.push_str(&format!(" {c} |"));
        }
        s.push_str("\n|---|");
        s.push_str(&"---|".repeat(extra.len()));
        s.push('\n');
        // The paper's CORnet-S values of the same tests, where it reports them.
        if let Some(p) = r.published.iter().find(|p| p.model == "CORnet-S") {
            let vals: Vec<Option<f64>> = extra
                .iter()
                .map(|c| published::column_for(c).and_then(|pc| p.values.get(pc).copied()))
                .collect();
            if vals.iter().any(Option::is_some) {
                s.push_str("| CORnet-S (published, real data) |");
                for v in vals {
                    s.push_str(&format!(" {} |", fmt(v)));
                }
                s.push('\n');
            }
        }
        for m in &models {
            if extra.iter().all(|c| r.get(m, c).is_none()) {
                continue;
            }
            s.push_str(&format!("| {m} |"));
            for c in &extra {
                s.push_str(&format!(" {} |", fmt(r.get(m, c).map(|e| e.value))));
            }
            s.push('\n');
        }
    }
    if !r.published.is_empty() {
        let mut rows: Vec<&published::PublishedModel> = r.published.iter().collect();
        rows.sort_by(|a, b| {
            let key = |m: &published::PublishedModel| {
                m.table1("Brain-Score").unwrap_or(f64::NEG_INFINITY)
            };
            key(b)
                .total_cmp(&key(a))
                .then_with(|| a.model.cmp(&b.model))
        });
        s.push_str(&format!(
            "\n## Published models\n\nThe paper's Table 1 for every model it names, by Brain-Score ({}; Table 1 rounds these to three decimals). These are the paper's numbers on the real recordings, not ours; — where the paper reports none. *ventral* names the torchvision architecture that builds the same network (`ventral model import --arch …` takes its checkpoint); the ResNet v2, Inception v1/v2/v4, Inception-ResNet, NASNet, PNASNet and Xception rows came from TF-slim or Keras models with no torchvision counterpart.\n\n| model | Brain-Score | V4 | IT | Behaviour | OST | ImageNet top-1 | ventral |\n|---|---|---|---|---|---|---|---|\n",
            published::CITATION
        ));
        // Four decimals, as the paper's data file has them (`fmt4` above).
        for p in rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                p.model,
                fmt4(p.table1("Brain-Score")),
                fmt4(p.table1("V4")),
                fmt4(p.table1("IT")),
                fmt4(p.table1("Behaviour")),
                fmt4(p.table1("OST")),
                fmt4(p.table1("ImageNet top-1")),
                zoo_counterpart(&p.model).map_or_else(|| "—".to_string(), |a| format!("`{a}`"))
            ));
        }
    }
    s.push_str("\n## Where each number comes from\n\n| model | benchmark | ceiled | raw | ceiling | output |\n|---|---|---|---|---|---|\n");
    for e in &r.entries {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | `{}` |\n",
            e.model,
            e.benchmark,
            fmt(Some(e.value)),
            fmt(e.raw.map(|r| r.0)),
            fmt(e.raw.map(|r| r.1)),
            e.source
        ));
    }
    for t in &r.evals {
        s.push_str(&format!(
            "| {} | ImageNet top-1 | {} | | | `{}` |\n",
            t.model,
            fmt(Some(t.top1)),
            t.source
        ));
    }
    s.push_str("\nThe same table from the score stores:\n\n```sql\nSELECT model, benchmark, value AS ceiled, stage, stage_key\nFROM scores\nWHERE quantity = 'ceiled' AND split IS NULL\nORDER BY model, benchmark;\n```\n\n`ventral sql` runs it in the workspace; `ventral show STAGE` gives each stage's key and output.\n");
    s
}

/// An OST score store's points for Fig. 5: its model, `(monkey ms, model ms)` per image, and
/// its Spearman ρ.
pub type OstPoints = (String, Vec<(f64, f64)>, f64);

/// The figures the results allow: each drawn only when its data is there.
pub fn figures(
    r: &Results,
    ost: &[OstPoints],
    profiles: &[figures::LayerProfile],
) -> Result<Vec<figures::Figure>, BoxError> {
    let models = r.models();
    let mut out = Vec::new();
    if !profiles.is_empty() {
        out.push(figures::layer_profiles(profiles)?);
    }
    // Fig. 1 needs a whole Brain-Score: a composite, or all four benchmarks.
    let fig1: Vec<(String, f64, f64)> = models
        .iter()
        .filter(|m| r.brain_score(m).1.is_none())
        .filter_map(|m| Some((m.clone(), r.eval(m)?.top1, r.brain_score(m).0?)))
        .collect();
    if !fig1.is_empty() {
        let published: Vec<(String, f64, f64)> = r
            .published
            .iter()
            .filter_map(|p| {
                Some((
                    p.model.clone(),
                    p.table1("ImageNet top-1")?,
                    p.table1("Brain-Score")?,
                ))
            })
            .collect();
        out.push(figures::brainscore_vs_top1(&fig1, &published)?);
    }
    let t1: Vec<(String, [Option<f64>; 4])> = models
        .iter()
        .map(|m| (m.clone(), TABLE1.map(|c| r.get(m, c).map(|e| e.value))))
        .filter(|(_, v)| v.iter().any(Option::is_some))
        .collect();
    if !t1.is_empty() {
        out.push(figures::table1_bars(&t1)?);
    }
    let fig3: Vec<(String, f64, f64, f64)> = models
        .iter()
        .filter_map(|m| {
            Some((
                m.clone(),
                r.eval(m)?.depth?,
                r.get(m, "V4")?.value,
                r.get(m, "IT")?.value,
            ))
        })
        .collect();
    if fig3.len() >= 2 {
        out.push(figures::depth_vs_scores(&fig3)?);
    }
    let fig4: Vec<(String, [Option<f64>; 3])> = models
        .iter()
        .map(|m| {
            (
                m.clone(),
                [
                    r.get(m, "V4").map(|e| e.value),
                    r.get(m, "IT").map(|e| e.value),
                    r.eval(m).map(|e| e.top1),
                ],
            )
        })
        .filter(|(m, v)| {
            (v[0].is_some() || v[1].is_some()) && r.eval(m).and_then(|e| e.depth).is_some()
        })
        .collect();
    if fig4.len() >= 2 {
        out.push(figures::variants(&fig4)?);
    }
    for (model, points, rho) in ost {
        let mut f = figures::ost_scatter(points, *rho)?;
        if ost.len() > 1 {
            // One figure per OST score store: each its own files, named by its model.
            let slug: String = model
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            f.name = format!("{}_{slug}", f.name);
            f.title = format!("{} — {model}", f.title);
        }
        out.push(f);
    }
    let early_late = |m: &str, k: &str| {
        r.entries
            .iter()
            .find(|e| e.model == m && e.benchmark.to_lowercase().contains(k))
            .map(|e| e.value)
    };
    let fig7: Vec<(String, Option<f64>, Option<f64>)> = models
        .iter()
        .map(|m| (m.clone(), early_late(m, "early"), early_late(m, "late")))
        .filter(|(_, a, b)| a.is_some() || b.is_some())
        .collect();
    if !fig7.is_empty() {
        out.push(figures::early_late(&fig7)?);
    }
    // Fig. 8 follows CORnet-S's checkpoints along training: models of the CORnet family (an
    // evaluation with a depth), not the zoo's baselines.
    let fig8: Vec<(String, f64, f64)> = models
        .iter()
        .filter(|m| r.eval(m).and_then(|e| e.depth).is_some())
        .filter_map(|m| Some((m.clone(), r.eval(m)?.top1, r.get(m, "Behaviour")?.value)))
        .collect();
    if fig8.len() >= 2 {
        out.push(figures::behaviour_vs_top1(&fig8)?);
    }
    Ok(out)
}

/// A CSV field, quoted when it holds a comma, quote or newline.
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A self-contained HTML page of the Markdown (CommonMark with tables, rendered by
/// pulldown-cmark: links, code, emphasis and tables as a browser expects them).
pub fn html(md: &str) -> String {
    use pulldown_cmark::{Options, Parser};
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>ventral report</title><style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}code,pre{background:#f4f4f4}</style></head><body>\n",
    );
    pulldown_cmark::html::push_html(&mut out, Parser::new_ext(md, Options::ENABLE_TABLES));
    out.push_str("</body></html>\n");
    out
}

/// The params of `report`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// The profile that produced the numbers, stated in the report.
    #[serde(default = "embedded")]
    pub profile: String,
}

fn embedded() -> String {
    "embedded (synthetic world)".into()
}

impl ventral_stage::KindParams for ReportParams {}

/// `report`: Table 1 from score stores and ImageNet evaluations.
pub struct ReportKind;

impl StageKind for ReportKind {
    fn name(&self) -> &str {
        "report"
    }
    ventral_stage::code_crate!();
    ventral_stage::typed_params!(ReportParams);
    fn doc(&self) -> &str {
        "Table 1 (inputs `scores`: score stores; optional `imagenet`: evaluate outputs; optional `published`: the paper's per-model CSV; optional `commitments`: commit outputs, drawn as per-layer profiles) as report.md, report.html, table1.csv"
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let dirs: Vec<&Path> = ctx.input("scores")?.iter().map(|p| p.as_path()).collect();
        let entries = read_scores(&dirs)?;
        let evals = match ctx.inputs.get("imagenet") {
            Some(d) => read_evals(&d.iter().map(|p| p.as_path()).collect::<Vec<_>>())?,
            None => Vec::new(),
        };
        let p: ReportParams = ventral_stage::typed::parse(ctx.params)?;
        let profile = p.profile.as_str();
        let published = match ctx.optional_input("published")? {
            Some(p) => published::read(p)?,
            None => Vec::new(),
        };
        let results = Results {
            entries,
            evals,
            published,
        };
        let mut md = markdown(&results, profile);
        // Fig. 5 from OST score stores' per-image solution times.
        let ost: Vec<OstPoints> = results
            .entries
            .iter()
            .filter_map(|e| {
                let xy = e
                    .per_image
                    .as_ref()?
                    .iter()
                    .map(|p| (p.monkey_ms, p.model_ms))
                    .collect();
                Some((e.model.clone(), xy, e.raw.map_or(f64::NAN, |r| r.0)))
            })
            .collect();
        let profiles = match ctx.inputs.get("commitments") {
            Some(d) => layer_profiles(d)?,
            None => Vec::new(),
        };
        let figs = figures(&results, &ost, &profiles)?;
        md.push_str("\n## Figures\n\nEach figure is beside this report as SVG and PNG.\n\n");
        // The HTML page inlines each SVG where the Markdown links it.
        let mut page_md = md.clone();
        let mut page_figs = Vec::new();
        for f in &figs {
            write_named(&ctx.out_dir.join(format!("{}.svg", f.name)), &f.svg)?;
            write_named(&ctx.out_dir.join(format!("{}.png", f.name)), &f.png)?;
            md.push_str(&format!(
                "![{}]({}.svg)\n\n[PNG]({}.png)\n\n",
                f.title, f.name, f.name
            ));
            let marker = format!("ventral-figure-{}", f.name);
            page_md.push_str(&format!("{marker}\n\n[PNG]({}.png)\n\n", f.name));
            page_figs.push((format!("<p>{marker}</p>"), f.svg.clone()));
        }
        let drawn: Vec<&str> = figs.iter().map(|f| f.name.as_str()).collect();
        let missing: Vec<&str> = [
            ("fig3_depth_vs_scores", "depth vs scores (Fig. 3) needs two or more models with a depth and V4 and IT scores"),
            ("fig4_variants", "circuitry variants (Fig. 4) need two or more models with V4 or IT scores"),
            ("fig8_behaviour_vs_top1", "behaviour vs top-1 over training (Fig. 8) needs two or more checkpoints with behaviour and top-1"),
        ]
        .iter()
        .filter(|(n, _)| !drawn.contains(n))
        .map(|(_, why)| *why)
        .collect();
        if !missing.is_empty() {
            let note = format!(
                "Not drawn from these inputs: {}. `pipelines/variants.toml` scores the variants and the checkpoints along training.\n",
                missing.join("; ")
            );
            md.push_str(&note);
            page_md.push_str(&note);
        }
        write_named(&ctx.out_dir.join("report.md"), &md)?;
        let mut page = html(&page_md);
        for (p, svg) in &page_figs {
            page = page.replace(p, svg);
        }
        write_named(&ctx.out_dir.join("report.html"), page)?;
        let mut csv = String::from("model,column,ceiled,raw,ceiling,output\n");
        for e in &results.entries {
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
        for t in &results.evals {
            csv.push_str(&format!(
                "{},ImageNet top-1,{},,,{}\n",
                quote(&t.model),
                t.top1,
                t.source
            ));
        }
        write_named(&ctx.out_dir.join("table1.csv"), csv)?;
        (ctx.progress)(&format!(
            "{} scores, {} figures",
            results.entries.len(),
            figs.len()
        ));
        Ok(())
    }
}

/// Write a file of the report; an error names it.
fn write_named(path: &std::path::Path, bytes: impl AsRef<[u8]>) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_html_page_renders_links_code_and_tables() {
        let page = super::html(
            "See [PNG](fig1.png) and `ventral sql`.\n\n| a | b |\n|---|---|\n| 1 | `x` |\n",
        );
        assert!(page.contains(r#"<a href="fig1.png">PNG</a>"#), "{page}");
        assert!(page.contains("<code>ventral sql</code>"), "{page}");
        assert!(page.contains("<td><code>x</code></td>"), "{page}");
        assert!(!page.contains("](") && !page.contains('`'), "{page}");
    }
}
