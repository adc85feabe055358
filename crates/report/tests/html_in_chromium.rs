//! The HTML report as a browser shows it: a report built from score stores written through
//! the one score format is opened in headless Chromium (Debian's `chromium`), and a script
//! run in the page checks that every inline SVG figure has a size and that every linked PNG
//! loads as an image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ventral_stage::{StageContext, StageKind};
use ventral_store::scores::{self, Evaluation, ImageOst, Member, ScoreSummary};

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| PathBuf::from(c))
        })
}

fn score_store(dir: &Path, name: &str, v: serde_json::Value) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let s = ScoreSummary::of(&v).unwrap();
    scores::write(&d, &s, &[]).unwrap();
    d
}

/// Two models' scores and evaluations, enough for every figure the report can draw from
/// one profile (Fig. 1, Table 1 bars, Fig. 3, Fig. 4, Fig. 5, Fig. 7, Fig. 8).
fn inputs(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut stores = Vec::new();
    let mut evals = Vec::new();
    for (m, k) in [("model A", 0.0), ("model B", 0.1)] {
        let s = |b: &str, c: f64| serde_json::json!({"benchmark": b, "model": m, "ceiled": c + k, "raw": c, "ceiling": 0.9});
        let tag = m.replace(' ', "_");
        let mut add = |name: &str, v: serde_json::Value| {
            stores.push(score_store(dir, &format!("{tag}-{name}"), v));
        };
        add("v4", s("MajajHong2015.V4-pls", 0.4));
        add("it", s("MajajHong2015.IT-pls", 0.3));
        add("b", s("Rajalingham2018-i2n", 0.2));
        let mut ost = s("Kar2019-ost", 0.1);
        ost["per_image"] = serde_json::to_value(
            (0..20)
                .map(|i| ImageOst {
                    stimulus_id: format!("s{i}"),
                    model_ms: 100.0 + 5.0 * i as f64,
                    monkey_ms: 90.0 + 7.0 * i as f64,
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
        add("ost", ost);
        add("early", s("Kar2019.IT-early", 0.2));
        add("late", s("Kar2019.IT-late", 0.25));
        let mut bs = serde_json::json!({"benchmark": "Brain-Score", "model": m, "ceiled": 0.3 + k});
        bs["members"] = serde_json::to_value(
            [
                "MajajHong2015.V4-pls",
                "MajajHong2015.IT-pls",
                "Rajalingham2018-i2n",
                "Kar2019-ost",
            ]
            .map(|b| Member {
                benchmark: b.into(),
                ceiled: 0.3,
                absent: false,
            }),
        )
        .unwrap();
        add("bs", bs);
        let e = dir.join(format!("{tag}-eval"));
        std::fs::create_dir_all(&e).unwrap();
        scores::write_evaluation(
            &e,
            &Evaluation {
                model: m.into(),
                images: 100,
                top1: 0.5 + k,
                top5: 0.8,
                depth: Some(10.0 + 10.0 * k),
                parameters: None,
            },
        )
        .unwrap();
        evals.push(e);
    }
    (stores, evals)
}

const CHECK: &str = r#"<script>
window.addEventListener('load', async () => {
  const out = [];
  for (const svg of document.querySelectorAll('svg')) {
    const r = svg.getBoundingClientRect();
    out.push('svg ' + (r.width > 0 && r.height > 0 ? 'ok' : 'empty'));
  }
  for (const a of document.querySelectorAll('a[href$=".png"]')) {
    const href = a.getAttribute('href');
    const ok = await new Promise(res => {
      const i = new Image();
      i.onload = () => res(i.naturalWidth > 0 && i.naturalHeight > 0);
      i.onerror = () => res(false);
      i.src = href;
    });
    out.push('png ' + href + ' ' + (ok ? 'ok' : 'broken'));
  }
  const pre = document.createElement('pre');
  // The markers are split so that the script's own text never holds them.
  pre.textContent = 'CHECK-' + 'BEGIN\n' + out.join('\n') + '\nCHECK-' + 'END';
  document.body.appendChild(pre);
});
</script></body>"#;

/// The lines the page's check script wrote, with `report.html` of `dir` opened.
fn check_in_browser(browser: &Path, dir: &Path) -> Vec<String> {
    let page = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(page.matches("</body>").count(), 1);
    let check = dir.join("check.html");
    std::fs::write(&check, page.replace("</body>", CHECK)).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", check.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let begin = dom
        .find("CHECK-BEGIN")
        .expect("the check script did not run");
    let end = dom
        .find("CHECK-END")
        .expect("the check script did not finish");
    dom[begin + "CHECK-BEGIN".len()..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn pngs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_figure_of_the_html_report_loads_in_chromium() {
    let Some(browser) = chromium() else {
        ventral_testkit::skipped("no chromium (make installs Debian's)");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let (stores, evals) = inputs(t.path());
    let out = t.path().join("report");
    std::fs::create_dir_all(&out).unwrap();
    let inputs = BTreeMap::from([
        ("scores".to_string(), stores),
        ("imagenet".to_string(), evals),
    ]);
    let params = serde_json::Map::new();
    let log = t.path().join("log");
    let resume = t.path().join("resume");
    let ctx = StageContext {
        stage: "report",
        params: &params,
        inputs: &inputs,
        out_dir: &out,
        workspace: t.path(),
        log: &log,
        runtime: None,
        resume_dir: &resume,
        memory: None,
        progress: &|_| {},
    };
    ventral_report::ReportKind.run(&ctx).unwrap();
    let figures = pngs(&out).len();
    // Fig. 1, Table 1, Fig. 3, 4, 7, 8 and one Fig. 5 per model, each in files of its own.
    assert_eq!(figures, 8, "{figures} figures");
    let lines = check_in_browser(&browser, &out);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("svg ")).count(),
        figures,
        "{lines:#?}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("png ")).count(),
        figures,
        "{lines:#?}"
    );
    assert!(lines.iter().all(|l| l.ends_with(" ok")), "{lines:#?}");
    // The check can fail: a missing PNG is reported broken.
    std::fs::remove_file(&pngs(&out)[0]).unwrap();
    let lines = check_in_browser(&browser, &out);
    assert_eq!(
        lines.iter().filter(|l| l.ends_with(" broken")).count(),
        1,
        "{lines:#?}"
    );
}
