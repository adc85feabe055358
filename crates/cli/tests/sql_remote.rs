//! `ventral sql --remote`: a workspace whose store is empty queries the outputs its lockfile
//! names where they lie in the remote (a plain-path remote and an S3 server on 127.0.0.1),
//! with the same answers as the workspace that computed them, reading only what a query
//! needs, writing nothing locally, and refusing a damaged object.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::Ws;
use ventral_store::scores::ScoreRow;
use ventral_store::{AssemblySpec, AssemblyWriter};

/// An activations store of `rows × cols` (wide rows are stored as shards of row bands).
fn write_store(dir: &Path, name: &str, rows: usize, cols: usize) {
    let mut spec = AssemblySpec::new(
        &format!("demo.{name}"),
        "activations",
        &["stimulus", "neuroid"],
        &[cols as u64],
    );
    spec.chunk_rows = Some(16);
    spec.attrs.insert("model".into(), "demo".into());
    spec.attrs.insert("layer".into(), name.into());
    spec.attrs.insert("timestep".into(), 0i64.into());
    let mut w = AssemblyWriter::<f32>::create(&dir.join(name), spec).unwrap();
    // Values that do not compress away: a query's bytes then follow what it reads.
    let data: Vec<f32> = (0..rows * cols)
        .map(|i| ((i as f64 * 0.618_033_988_7).fract() * 100.0) as f32)
        .collect();
    w.append(&data).unwrap();
    let stim = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("stimulus_id", DataType::Utf8, false),
            Field::new("category_name", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(StringArray::from(
                (0..rows).map(|i| format!("s{i:03}")).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                (0..rows)
                    .map(|i| ["cars", "faces", "boats"][i % 3])
                    .collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap();
    let neu = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "neuroid_id",
            DataType::Utf8,
            false,
        )])),
        vec![Arc::new(StringArray::from(
            (0..cols).map(|i| format!("n{i}")).collect::<Vec<_>>(),
        ))],
    )
    .unwrap();
    w.finish(vec![("stimulus".into(), stim), ("neuroid".into(), neu)])
        .unwrap();
}

/// The stores and score table the pipeline's stages copy into their outputs.
fn sources(dir: &Path) {
    write_store(&dir.join("acts"), "wide", 48, 20_000);
    write_store(&dir.join("acts"), "narrow", 48, 300);
    let rows: Vec<ScoreRow> = (0..3)
        .map(|i| ScoreRow {
            benchmark: "demo.IT-pls".into(),
            model: "demo".into(),
            layer: Some("wide".into()),
            quantity: "raw".into(),
            split: Some(i),
            neuroid_id: None,
            value: 0.25 + i as f64 * 0.125,
        })
        .collect();
    std::fs::create_dir_all(dir.join("score")).unwrap();
    ventral_store::scores::write_rows(&dir.join("score"), &rows).unwrap();
}

fn pipeline(src: &Path) -> String {
    format!(
        r#"
[stages.acts]
kind = "cmd"
cmd = "cp -r {s}/acts/. ${{out}}/"

[stages.score]
kind = "cmd"
cmd = "cp {s}/score/scores.parquet ${{out}}/"
"#,
        s = src.display()
    )
}

const QUERIES: [&str; 6] = [
    "SELECT assembly, count(*) AS n, sum(value) AS s, min(value) AS lo FROM activations GROUP BY 1 ORDER BY 1",
    "SELECT s.category_name, a.layer, avg(a.value) AS m FROM activations a JOIN stimuli s \
     ON s.assembly = a.assembly AND s.stimulus_id = a.stimulus_id GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT neuroid, value FROM activations WHERE layer = 'wide' AND stimulus_id = 's021' \
     AND neuroid IN (0, 9000, 19999) ORDER BY neuroid",
    "SELECT identifier, kind, shape, stage FROM assemblies ORDER BY 1",
    "SELECT stage, benchmark, split, value FROM scores ORDER BY split",
    "SELECT stage, kind, seconds IS NOT NULL AS timed FROM runs ORDER BY stage",
];

/// The result as CSV, and what the query read from the remote (requests, bytes).
fn query(ws: &Ws, remote: Option<&str>, q: &str, envs: &[(&str, &str)]) -> (String, u64, u64) {
    let mut args = vec!["sql", "--format", "csv"];
    if let Some(r) = remote {
        args.extend(["--remote", r]);
    }
    args.push(q);
    let o = ws.cmd(&args).envs(envs.iter().copied()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "ventral {args:?}: {err}");
    let read = err
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("read ")?;
            let (req, rest) = rest.split_once(" request(s), ")?;
            let (bytes, _) = rest.split_once(" byte(s)")?;
            Some((req.parse().ok()?, bytes.parse().ok()?))
        })
        .unwrap_or((0, 0));
    assert_eq!(read.0 > 0, remote.is_some(), "{err}");
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        read.0,
        read.1,
    )
}

/// A workspace that runs the pipeline (pushing to the default remote) and a second one with
/// its lockfile and an empty store.
fn two_workspaces(src: &Path, remote_toml: &str, envs: &[(&str, &str)]) -> (Ws, Ws) {
    let a = Ws::new();
    a.write("pipelines/p.toml", &pipeline(src));
    a.write("ventral.toml", remote_toml);
    let o = a.cmd(&["run"]).envs(envs.iter().copied()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let b = Ws::new();
    b.write("pipelines/p.toml", &pipeline(src));
    b.write("ventral.toml", remote_toml);
    b.write("lockfiles/p.lock", &a.read("lockfiles/p.lock"));
    (a, b)
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// The same answers with and without the remote in between, and a selective query reads a
/// small part of what a scan reads.
fn same_answers(a: &Ws, b: &Ws, envs: &[(&str, &str)]) -> Vec<(u64, u64)> {
    let mut read = Vec::new();
    for q in QUERIES {
        let (here, _, _) = query(a, None, q, envs);
        let (there, requests, bytes) = query(b, Some("lab"), q, envs);
        // The stage outputs are named differently (a folder of the store, the remote's tree
        // manifest); everything else is the same.
        assert_eq!(there, here, "{q}");
        read.push((requests, bytes));
    }
    // Without the remote the second workspace has no stores at all.
    let (empty, _, _) = query(b, None, "SELECT count(*) AS n FROM activations", envs);
    assert_eq!(empty, "n\n0\n");
    // The scan decodes every chunk; one stimulus's three values, an index and a band of
    // each of three shards (the coordinate tables are read by both).
    let (scan, one) = (read[0].1, read[2].1);
    assert!(
        one * 4 < scan,
        "one stimulus read {one} bytes, the scan {scan}"
    );
    read
}

#[test]
fn an_empty_workspace_queries_the_remote_where_the_stores_lie() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    sources(&src);
    let remote = dir.path().join("remote");
    let toml = format!(
        "[remote.lab]\nurl = \"{}\"\ndefault = true\n",
        remote.display()
    );
    let (a, b) = two_workspaces(&src, &toml, &[]);
    let read = same_answers(&a, &b, &[]);
    let objects: u64 = files(&remote.join("objects"))
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum();
    // The scan fetched (about) every byte the remote holds — the metadata files twice.
    assert!(
        read[0].1 > objects * 9 / 10 && read[0].1 < objects * 11 / 10,
        "{read:?} of {objects}"
    );
    // Nothing was pulled into the second workspace's store.
    assert!(
        files(&b.path().join(".ventral/objects")).is_empty()
            && files(&b.path().join(".ventral/out")).is_empty(),
        "{:?}",
        files(&b.path().join(".ventral"))
    );
    // A damaged object (the largest: a shard of the wide store) is refused by name.
    let victim = files(&remote.join("objects"))
        .into_iter()
        .max_by_key(|p| p.metadata().unwrap().len())
        .unwrap();
    let good = std::fs::read(&victim).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x10;
    std::fs::write(&victim, &bad).unwrap();
    let o = b.run(&["sql", "--remote", "lab", QUERIES[0]]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&victim.display().to_string()) && err.contains("hash"),
        "{err}"
    );
    // A query that does not touch it still answers; the remote is left as it was.
    let (names, _, _) = query(&b, Some("lab"), QUERIES[3], &[]);
    assert!(names.contains("demo.wide"), "{names}");
    assert_eq!(std::fs::read(&victim).unwrap(), bad);
    std::fs::write(&victim, &good).unwrap();
    // Objects the output's tree names and the remote lacks (every shard of the wide store)
    // are errors naming them, also for a query that reads a few bands of each — never read
    // as chunks that were never written.
    let aside = dir.path().join("aside");
    std::fs::create_dir_all(&aside).unwrap();
    let shards: Vec<_> = files(&remote.join("objects"))
        .into_iter()
        .filter(|p| p.metadata().unwrap().len() > 200_000)
        .collect();
    assert!(!shards.is_empty());
    for p in &shards {
        std::fs::rename(p, aside.join(p.file_name().unwrap())).unwrap();
    }
    let o = b.run(&["sql", "--remote", "lab", QUERIES[2]]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("missing") && err.contains("/objects/"),
        "{err}"
    );
    for p in &shards {
        std::fs::rename(aside.join(p.file_name().unwrap()), p).unwrap();
    }
    // An unknown remote is an error naming it.
    let o = b.run(&["sql", "--remote", "elsewhere", QUERIES[3]]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("elsewhere"));
}

#[test]
fn on_s3_an_empty_workspace_queries_the_remote_where_the_stores_lie() {
    let Some(s3) = ventral_testkit::s3::S3::start("ventral-sql") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    sources(&src);
    let toml = format!(
        "[remote.lab]\nurl = \"s3://{}/lab\"\ndefault = true\noptions = {{ endpoint = \"{}\", allow_http = \"true\" }}\n",
        s3.bucket, s3.endpoint
    );
    let envs = s3.env();
    let (a, b) = two_workspaces(&src, &toml, &envs);
    assert_eq!(s3.keys("lab/runs/").len(), 2);
    same_answers(&a, &b, &envs);
    assert!(files(&b.path().join(".ventral/objects")).is_empty());
}
