//! The paper's published per-model figures (`data/published/cornet-paper-models.csv`),
//! shown beside ours with their citation.

use std::collections::BTreeMap;
use std::path::Path;

use ventral_stage::BoxError;

/// The citation every table or figure of published numbers carries.
pub const CITATION: &str = "Kubilius, Schrimpf et al., NeurIPS 2019 (arXiv:1909.06161), as released with the paper's figure code";

/// The Table 1 columns, as the published file names them, in our column order.
const TABLE1_COLUMNS: [(&str, &str); 6] = [
    ("Brain-Score", "Brain-Score"),
    ("V4", "V4"),
    ("IT", "IT"),
    ("Behavior", "Behaviour"),
    ("OST", "OST"),
    ("ImageNet", "ImageNet top-1"),
];

/// One published model.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedModel {
    /// Its name in the paper.
    pub model: String,
    /// Every numeric column by the file's name for it (`IT (early)`, `CIFAR-100`, …); a
    /// cell left empty (not reported) is absent.
    pub values: BTreeMap<String, f64>,
}

impl PublishedModel {
    /// The value of our column `column` (`Behaviour`, `ImageNet top-1`, …).
    pub fn table1(&self, column: &str) -> Option<f64> {
        let file = TABLE1_COLUMNS
            .iter()
            .find(|(_, ours)| *ours == column)
            .map_or(column, |(f, _)| f);
        self.values.get(file).copied()
    }
}

/// Read the published figures; a missing Table 1 column or a cell that is neither empty nor
/// a number is an error naming the file, the line and the column.
pub fn read(path: &Path) -> Result<Vec<PublishedModel>, BoxError> {
    let mut r = csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let header: Vec<String> = r
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    for need in std::iter::once("Model").chain(TABLE1_COLUMNS.iter().map(|c| c.0)) {
        if !header.iter().any(|h| h == need) {
            return Err(format!("{}: no column `{need}`", path.display()).into());
        }
    }
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("{}:{line}: {e}", path.display()))?;
        let mut model = String::new();
        let mut values = BTreeMap::new();
        for (h, cell) in header.iter().zip(rec.iter()) {
            let cell = cell.trim();
            if h == "Model" {
                model = cell.to_string();
            } else if !cell.is_empty() {
                let v: f64 = cell.parse().map_err(|_| {
                    format!(
                        "{}:{line}: column `{h}`: `{cell}` is not a number",
                        path.display()
                    )
                })?;
                values.insert(h.clone(), v);
            }
        }
        if model.is_empty() {
            return Err(format!("{}:{line}: column `Model` is empty", path.display()).into());
        }
        out.push(PublishedModel { model, values });
    }
    Ok(out)
}

/// The published column of one of our generalisation or early/late benchmarks, if the paper
/// reports one.
pub fn column_for(benchmark: &str) -> Option<&'static str> {
    let b = benchmark.to_lowercase();
    [
        ("new-neurons", "IT (new data)"),
        ("new-images", "IT (new images)"),
        ("new-objects", "Behavior (new data)"),
        ("cifar", "CIFAR-100"),
        ("v4-early", "V4 (early)"),
        ("v4-late", "V4 (late)"),
        ("it-early", "IT (early)"),
        ("it-late", "IT (late)"),
    ]
    .iter()
    .find(|(k, _)| b.contains(k))
    .map(|(_, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_read_strictly() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("p.csv");
        std::fs::write(
            &p,
            "Model,Brain-Score,V4,IT,Behavior,OST,ImageNet,IT (early)\nA,0.4,0.6,0.5,0.3,0.2,0.7,\n",
        )
        .unwrap();
        let m = read(&p).unwrap();
        assert_eq!(m[0].table1("Behaviour"), Some(0.3));
        assert_eq!(m[0].table1("ImageNet top-1"), Some(0.7));
        assert_eq!(m[0].values.get("IT (early)"), None);
        std::fs::write(
            &p,
            "Model,Brain-Score,V4,IT,Behavior,OST,ImageNet\nA,x,1,1,1,1,1\n",
        )
        .unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains(":2: column `Brain-Score`"), "{e}");
        std::fs::write(&p, "Model,V4\nA,1\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("no column `Brain-Score`"), "{e}");
        assert_eq!(column_for("Kar2019.IT-late"), Some("IT (late)"));
        assert_eq!(column_for("MajajHong2015.IT-pls"), None);
    }

    #[test]
    fn the_shipped_file_has_the_papers_table_1() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/published/cornet-paper-models.csv");
        let m = read(&p).unwrap();
        assert_eq!(m.len(), 24);
        let s = m.iter().find(|m| m.model == "CORnet-S").unwrap();
        assert_eq!(s.table1("Brain-Score"), Some(0.4705));
        // Brain-Score is the mean of the four benchmarks, as the paper says.
        // (IamNN has an OST and top-1 only.)
        for m in m.iter().filter(|m| m.table1("Brain-Score").is_some()) {
            let four: f64 = ["V4", "IT", "Behaviour", "OST"]
                .iter()
                .map(|c| m.table1(c).unwrap())
                .sum::<f64>()
                / 4.0;
            assert!(
                (four - m.table1("Brain-Score").unwrap()).abs() < 1e-3,
                "{}",
                m.model
            );
        }
    }
}
