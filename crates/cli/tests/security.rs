//! The security campaign: what a hostile input — a SQL statement, a stimulus archive, a
//! stage that writes links, a pipeline path, a file name with shell syntax in it, a remote
//! cache — can make ventral read or write. Every case must be refused with a message that
//! names it (or, for file names put into a `cmd`, quoted), and nothing may be written
//! outside the workspace and its store.
//!
//! Every case runs under `make test` and `make faults`; the tallies go to
//! `$VENTRAL_FAULTS_LOG` as the fault campaign's do (`tools/reliability.py` writes
//! RELIABILITY.md's security table from them).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::Ws;
use ventral_testkit::campaign::Tally;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `o` failed, and its message holds every one of `needles`.
fn refused(o: &Output, needles: &[&str]) -> Result<(), String> {
    let t = text(o);
    if o.status.success() {
        return Err(format!("accepted (exit 0): {t}"));
    }
    if o.status.code() != Some(1) && o.status.code() != Some(2) {
        return Err(format!("exit {:?}, not a clean refusal: {t}", o.status));
    }
    match needles.iter().find(|n| !t.contains(*n)) {
        Some(n) => Err(format!("the message lacks `{n}`: {t}")),
        None => Ok(()),
    }
}

/// Every file under `dir` (not following links).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `dir` holds nothing but what it held (`before`).
fn unchanged(dir: &Path, before: &[PathBuf]) -> Result<(), String> {
    let now = files_under(dir);
    let new: Vec<_> = now.iter().filter(|p| !before.contains(p)).collect();
    if new.is_empty() {
        Ok(())
    } else {
        Err(format!("files appeared: {new:?}"))
    }
}

/// A workspace with a one-stage `cmd` pipeline.
fn cmd_ws(cmd: &str, extra: &str) -> Ws {
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        &format!("[stages.a]\nkind = \"cmd\"\ncmd = {cmd:?}\n{extra}\n"),
    );
    ws
}

/// The stages the lockfile records.
fn recorded(ws: &Ws) -> Vec<String> {
    let Ok(t) = std::fs::read_to_string(ws.path().join("lockfiles/p.lock")) else {
        return Vec::new();
    };
    let lf: toml::Table = toml::from_str(&t).unwrap_or_default();
    lf.get("stages")
        .and_then(|s| s.as_table())
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn sql_never_reads_or_writes_outside_the_stores() {
    let ws = Ws::new();
    ws.write(
        "pipelines/p.toml",
        include_str!("common/small_pipeline.toml"),
    );
    ws.ok(&["run"]);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.csv"), "a,b\nsecret-value,2\n").unwrap();
    let o = outside.path().display().to_string();
    let ws_dir = ws.path().display().to_string();
    let before = files_under(outside.path());
    let ws_before = files_under(ws.path());
    let mut t = Tally::new(
        "security",
        "`ventral sql`: DDL, DML, COPY, SET, files and URLs as tables",
        "exit non-zero (writes: \"refused\"); no file written anywhere; no outside byte in the answer",
    );
    let writes = [
        "CREATE TABLE t AS SELECT 1".to_string(),
        format!("CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '{o}/secret.csv'"),
        "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '/etc/passwd'".into(),
        "CREATE EXTERNAL TABLE e STORED AS PARQUET LOCATION 's3://bucket/x.parquet'".into(),
        "CREATE VIEW v AS SELECT 1".into(),
        "INSERT INTO runs SELECT * FROM runs".into(),
        "DELETE FROM runs".into(),
        "UPDATE runs SET stage = 'x'".into(),
        "DROP TABLE runs".into(),
        format!("COPY (SELECT 1) TO '{o}/copy.csv'"),
        format!("COPY runs TO '{ws_dir}/copy.parquet' STORED AS PARQUET"),
        "SET datafusion.execution.batch_size = 1".into(),
        "SET aws.access_key_id = 'x'".into(),
        "SET datafusion.catalog.information_schema = true".into(),
    ];
    for q in &writes {
        t.case(|| refused(&ws.run(&["sql", q]), &["refused"]).map_err(|e| format!("{q}: {e}")));
    }
    let reads = [
        "SELECT * FROM '/etc/passwd'".to_string(),
        "SELECT * FROM 'file:///etc/passwd'".into(),
        format!("SELECT * FROM '{o}/secret.csv'"),
        format!("SELECT * FROM 'file://{o}/secret.csv'"),
        "SELECT * FROM 'http://127.0.0.1:9/x.parquet'".into(),
        "SELECT * FROM 's3://bucket/x.parquet'".into(),
        format!("SELECT * FROM read_csv('{o}/secret.csv')"),
        format!("SELECT * FROM read_parquet('{o}/secret.csv')"),
        "SELECT 1; COPY (SELECT 1) TO '/tmp/ventral-security-copy.csv'".into(),
        format!("EXPLAIN COPY (SELECT 1) TO '{o}/explained.csv'"),
    ];
    for q in &reads {
        t.case(|| {
            let out = ws.run(&["sql", q]);
            let answer = text(&out);
            if answer.contains("secret-value") || answer.contains("root:x:0") {
                return Err(format!(
                    "{q}: the answer holds an outside file's bytes: {answer}"
                ));
            }
            refused(&out, &[]).map_err(|e| format!("{q}: {e}"))
        });
    }
    t.case(|| unchanged(outside.path(), &before));
    t.case(|| {
        unchanged(ws.path(), &ws_before)?;
        if Path::new("/tmp/ventral-security-copy.csv").exists() {
            return Err("/tmp/ventral-security-copy.csv was written".into());
        }
        Ok(())
    });
    t.finish();
}

/// A PNG of `n`×`n` pixels.
fn png(n: u32) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(n, n, image::Rgb([10, 20, 30]))
        .write_to(&mut buf, image::ImageFormat::Png)
        .unwrap();
    buf.into_inner()
}

/// One entry of a test ZIP: its name, its bytes, whether it is a symbolic link.
struct Entry<'a>(&'a str, Vec<u8>, bool);

fn write_set(dir: &Path, csv: &str, entries: &[Entry]) -> PathBuf {
    use std::io::Write;
    let csv_path = dir.join("set.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let mut z = zip::ZipWriter::new(std::fs::File::create(dir.join("set.zip")).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for Entry(name, bytes, link) in entries {
        if *link {
            z.add_symlink(*name, String::from_utf8_lossy(bytes), opts)
                .unwrap();
        } else {
            z.start_file(*name, opts).unwrap();
            z.write_all(bytes).unwrap();
        }
    }
    z.finish().unwrap();
    csv_path
}

#[test]
fn hostile_stimulus_archives_are_refused_and_never_extracted() {
    let ws = Ws::new();
    let img = png(8);
    let good = "stimulus_id,filename\ns1,images/s1.png\ns2,images/s2.png\n";
    let ok_entries = || {
        vec![
            Entry("images/s1.png", img.clone(), false),
            Entry("images/s2.png", img.clone(), false),
        ]
    };
    // The control: the well-formed set is read.
    {
        let d = tempfile::tempdir().unwrap();
        let csv = write_set(d.path(), good, &ok_entries());
        let out = d.path().join("out");
        ws.ok(&[
            "ingest",
            "brainio",
            csv.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
    }
    let with = |extra: Entry<'static>| {
        let mut e = ok_entries();
        e.push(extra);
        e
    };
    let zeros = vec![0u8; (ventral_ingest::stimuli::MAX_IMAGE_BYTES + 1) as usize];
    let cases: Vec<(&str, String, Vec<Entry>, Vec<&str>)> = vec![
        (
            "a filename that climbs out (`../`)",
            good.replace("images/s1.png", "../escape.png"),
            vec![
                Entry("../escape.png", img.clone(), false),
                Entry("images/s2.png", img.clone(), false),
            ],
            vec!["../escape.png"],
        ),
        (
            "an absolute filename",
            good.replace("images/s1.png", "/etc/passwd"),
            ok_entries(),
            vec!["/etc/passwd"],
        ),
        (
            "a ZIP entry that climbs out",
            good.into(),
            with(Entry("../../outside.txt", b"never".to_vec(), false)),
            vec!["../../outside.txt", "refused"],
        ),
        (
            "an absolute ZIP entry",
            good.into(),
            with(Entry(
                "/tmp/ventral-security-abs.txt",
                b"never".to_vec(),
                false,
            )),
            vec!["refused"],
        ),
        (
            "a ZIP entry that is a link to /etc/passwd",
            good.into(),
            vec![
                Entry("images/s1.png", b"/etc/passwd".to_vec(), true),
                Entry("images/s2.png", img.clone(), false),
            ],
            vec!["images/s1.png", "symbolic link"],
        ),
        (
            "a ZIP entry that is a link climbing out",
            good.into(),
            vec![
                Entry("images/s1.png", b"../../../../etc/passwd".to_vec(), true),
                Entry("images/s2.png", img.clone(), false),
            ],
            vec!["images/s1.png", "symbolic link"],
        ),
        (
            "a filename with a newline",
            good.replace("images/s1.png", "\"images/s\n1.png\""),
            vec![
                Entry("images/s\n1.png", img.clone(), false),
                Entry("images/s2.png", img.clone(), false),
            ],
            vec!["set.csv"],
        ),
        (
            "a filename with a NUL",
            good.replace("images/s1.png", "images/s\u{0}1.png"),
            ok_entries(),
            vec!["set.csv"],
        ),
        (
            "an entry that inflates past the image limit (an archive bomb)",
            good.into(),
            vec![
                Entry("images/s1.png", zeros, false),
                Entry("images/s2.png", img.clone(), false),
            ],
            vec!["images/s1.png", "refused"],
        ),
    ];
    let mut t = Tally::new(
        "security",
        "StimulusSet CSV + ZIP: paths out, links, control characters, bombs",
        "exit 1 naming the entry; no output folder; nothing written outside",
    );
    for (what, csv, entries, needles) in cases {
        t.case(|| {
            let d = tempfile::tempdir().unwrap();
            let sub = d.path().join("a/b");
            std::fs::create_dir_all(&sub).unwrap();
            let csv = write_set(&sub, &csv, &entries);
            let before = files_under(d.path());
            let out = sub.join("out");
            let o = ws.run(&[
                "ingest",
                "brainio",
                csv.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ]);
            refused(&o, &needles).map_err(|e| format!("{what}: {e}"))?;
            if out.exists() {
                return Err(format!("{what}: the output folder was written"));
            }
            if Path::new("/tmp/ventral-security-abs.txt").exists() {
                return Err(format!("{what}: an absolute entry was extracted"));
            }
            unchanged(d.path(), &before).map_err(|e| format!("{what}: {e}"))
        });
    }
    t.finish();
}

#[test]
fn links_and_odd_files_in_a_stage_output_are_refused() {
    let cases: [(&str, &str, &[&str]); 7] = [
        (
            "a link to /etc/passwd",
            "echo x > ${out}/a; ln -s /etc/passwd ${out}/passwd",
            &["passwd", "symbolic links cannot be stored"],
        ),
        (
            "a link climbing out of the output",
            "mkdir ${out}/d; ln -s ../../../.. ${out}/d/up",
            &["up", "symbolic links cannot be stored"],
        ),
        (
            "a link inside the output",
            "echo x > ${out}/a; ln -s a ${out}/b",
            &["symbolic links cannot be stored"],
        ),
        (
            "a named pipe",
            "mkfifo ${out}/fifo",
            &["fifo", "not a regular file"],
        ),
        (
            "a file name with a newline",
            "touch \"${out}/$(printf 'new\\nline')\"",
            &["control character"],
        ),
        (
            "a file name with a tab",
            "touch \"${out}/$(printf 'a\\tb')\"",
            &["control character"],
        ),
        (
            "a file name that is not UTF-8",
            "touch \"${out}/$(printf 'caf\\351')\"",
            &["not UTF-8"],
        ),
    ];
    let mut t = Tally::new(
        "security",
        "stage outputs: links (out, up, inside), pipes, control characters, non-UTF-8 names",
        "run exits 1 naming the file and why; no lockfile entry; verify clean",
    );
    for (what, cmd, needles) in cases {
        t.case(|| {
            let ws = cmd_ws(cmd, "");
            refused(&ws.run(&["run"]), needles).map_err(|e| format!("{what}: {e}"))?;
            if !recorded(&ws).is_empty() {
                return Err(format!("{what}: the lockfile records {:?}", recorded(&ws)));
            }
            let v = ws.run(&["verify"]);
            if !v.status.success() {
                return Err(format!("{what}: verify afterwards: {}", text(&v)));
            }
            Ok(())
        });
    }
    t.finish();
}

#[test]
fn pipeline_paths_that_leave_the_workspace_are_refused_before_anything_runs() {
    let touch = "touch ${out}/x; touch ran.marker";
    let stage = |extra: &str| format!("[stages.a]\nkind = \"cmd\"\ncmd = {touch:?}\n{extra}\n");
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "publish climbing out",
            stage("publish = \"../outside\""),
            &["publish", "../outside"],
        ),
        (
            "publish absolute",
            stage("publish = \"/tmp/ventral-security-pub\""),
            &["publish", "/tmp/ventral-security-pub"],
        ),
        (
            "publish climbing out midway",
            stage("publish = \"results/../../outside\""),
            &["publish"],
        ),
        (
            "publish onto the workspace",
            stage("publish = \".\""),
            &["publish"],
        ),
        (
            "publish into the store",
            stage("publish = \".ventral/x\""),
            &["publish", ".ventral"],
        ),
        (
            "outs climbing out",
            stage("outs = [\"../x\"]"),
            &["outs", "../x"],
        ),
        (
            "outs absolute",
            stage("outs = [\"/etc/passwd\"]"),
            &["outs", "/etc/passwd"],
        ),
        (
            "an input climbing out of the workspace's data",
            stage(
                "inputs = { x = \"stage:b/../../../etc/passwd\" }\n[stages.b]\nkind = \"cmd\"\ncmd = \"touch ${out}/y\"",
            ),
            &["..", "etc/passwd"],
        ),
        (
            "a stage named with a slash",
            "[stages.\"a/b\"]\nkind = \"cmd\"\ncmd = \"touch ${out}/x; touch ran.marker\"\n"
                .to_string(),
            &["a/b"],
        ),
        (
            "a stage named `..`",
            "[stages.\"..\"]\nkind = \"cmd\"\ncmd = \"touch ${out}/x; touch ran.marker\"\n"
                .to_string(),
            &[".."],
        ),
        (
            "a stage named with a newline",
            "[stages.\"a\\nb\"]\nkind = \"cmd\"\ncmd = \"touch ${out}/x; touch ran.marker\"\n"
                .to_string(),
            &["stage"],
        ),
    ];
    let mut t = Tally::new(
        "security",
        "pipeline paths: publish, outs, inputs and stage names leaving the workspace",
        "run exits non-zero naming the field; no stage ran; nothing written outside",
    );
    for (what, toml_text, needles) in cases {
        t.case(|| {
            let parent = tempfile::tempdir().unwrap();
            let ws = Ws {
                dir: tempfile::tempdir_in(parent.path()).unwrap(),
                store: None,
            };
            ws.write("pipelines/p.toml", &toml_text);
            let before = files_under(parent.path());
            refused(&ws.run(&["run"]), needles).map_err(|e| format!("{what}: {e}"))?;
            if ws.path().join("ran.marker").exists() {
                return Err(format!("{what}: the stage ran"));
            }
            if Path::new("/tmp/ventral-security-pub").exists() {
                return Err(format!("{what}: /tmp/ventral-security-pub was written"));
            }
            unchanged(parent.path(), &before).map_err(|e| format!("{what}: {e}"))
        });
    }
    t.finish();
}

#[test]
fn file_names_with_shell_syntax_reach_a_cmd_quoted() {
    let names = [
        "it's.txt",
        "$(touch PWNED).txt",
        "`touch PWNED`.txt",
        "a; touch PWNED; b.txt",
        "a b  c.txt",
        "*.txt",
        "-rf.txt",
        "x\"y$HOME\\z.txt",
        "a\nb.txt",
        "a|touch PWNED&.txt",
    ];
    let mut t = Tally::new(
        "security",
        "`${inputs.…}`/`${out}` holding shell syntax (input names, workspace and store paths)",
        "the command sees the file by its name; nothing it names runs",
    );
    for (i, name) in names.iter().enumerate() {
        // The hostile name is the input's; in every other case the workspace (and so the
        // store and `${out}`) sits in a folder named like it too.
        let hostile_root = i % 2 == 1;
        t.case(|| {
            let parent = tempfile::tempdir().unwrap();
            let dir = if hostile_root {
                let d = parent.path().join(name.replace('/', "_"));
                std::fs::create_dir(&d).unwrap();
                tempfile::tempdir_in(d).unwrap()
            } else {
                tempfile::tempdir_in(parent.path()).unwrap()
            };
            let ws = Ws { dir, store: None };
            ws.write(&format!("data/{name}"), "the content\n");
            let input = toml::Value::String(format!("data/{name}"));
            ws.write(
                "pipelines/p.toml",
                &format!(
                    "[stages.a]\nkind = \"cmd\"\ncmd = \"cat ${{inputs.x}} > ${{out}}/copy\"\ninputs = {{ x = {input} }}\npublish = \"results/a\"\n"
                ),
            );
            let o = ws.run(&["run"]);
            if !o.status.success() {
                return Err(format!("{name:?}: the run failed: {}", text(&o)));
            }
            let copy = std::fs::read_to_string(ws.path().join("results/a/copy"))
                .map_err(|e| format!("{name:?}: results/a/copy: {e}"))?;
            if copy != "the content\n" {
                return Err(format!("{name:?}: the command read {copy:?}"));
            }
            let pwned: Vec<_> = files_under(parent.path())
                .into_iter()
                .filter(|p| p.file_name().is_some_and(|n| n == "PWNED"))
                .collect();
            if !pwned.is_empty() {
                return Err(format!("{name:?}: a command in the name ran: {pwned:?}"));
            }
            Ok(())
        });
    }
    t.finish();
}

/// The remote's run record (`runs/<key>.json`) of the only stage.
fn the_record(remote: &Path) -> PathBuf {
    let runs: Vec<_> = std::fs::read_dir(remote.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

#[test]
fn a_hostile_remote_cannot_write_outside_the_store_or_pass_bad_bytes() {
    let top = tempfile::tempdir().unwrap();
    let remote = top.path().join("remote");
    let pipeline = "[stages.a]\nkind = \"cmd\"\ncmd = \"echo made > ${out}/a.txt; echo ran >> ran.log\"\npublish = \"results/a\"\n";
    let ws_with_remote = || {
        let ws = Ws {
            dir: tempfile::tempdir_in(top.path()).unwrap(),
            store: None,
        };
        std::fs::create_dir_all(ws.path().join("pipelines")).unwrap();
        ws.write("pipelines/p.toml", pipeline);
        ws.write(
            "ventral.toml",
            &format!(
                "[remote.lab]\nurl = \"{}\"\ndefault = true\n",
                remote.display()
            ),
        );
        ws
    };
    let a = ws_with_remote();
    a.ok(&["run"]);
    a.ok(&["push", "--remote", "lab"]);
    let record_path = the_record(&remote);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
    let pristine = std::fs::read(&record_path).unwrap();
    let put_object = |bytes: &[u8]| -> String {
        let hex = blake3::hash(bytes).to_hex().to_string();
        std::fs::write(remote.join("objects").join(&hex), bytes).unwrap();
        hex
    };
    let with_output = |hex: &str| {
        let mut r = record.clone();
        r["output"] = serde_json::Value::String(hex.to_string());
        std::fs::write(&record_path, serde_json::to_vec(&r).unwrap()).unwrap();
    };
    let file = put_object(b"outside\n");
    type Tamper<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "a tree whose entry climbs out (`../../`)",
            Box::new(|| {
                let tree = format!("ventral-tree v1\n{file} 8 - ../../outside.txt\n");
                with_output(&put_object(tree.as_bytes()));
            }),
        ),
        (
            "a tree with an absolute entry",
            Box::new(|| {
                let tree =
                    format!("ventral-tree v1\n{file} 8 - /tmp/ventral-security-remote.txt\n");
                with_output(&put_object(tree.as_bytes()));
            }),
        ),
        (
            "a tree whose output names a plain file, not a tree",
            Box::new(|| with_output(&file)),
        ),
        (
            "an object whose bytes differ from its name",
            Box::new(|| {
                std::fs::write(&record_path, &pristine).unwrap();
                let out = record["output"].as_str().unwrap();
                let tree = std::fs::read_to_string(remote.join("objects").join(out)).unwrap();
                let first = tree
                    .lines()
                    .nth(1)
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .to_string();
                std::fs::write(remote.join("objects").join(first), b"tampered\n").unwrap();
            }),
        ),
        (
            "a record that names another key",
            Box::new(|| {
                let mut r = record.clone();
                r["key"] = serde_json::Value::String("0".repeat(64));
                std::fs::write(&record_path, serde_json::to_vec(&r).unwrap()).unwrap();
            }),
        ),
        (
            "a record that is not JSON",
            Box::new(|| std::fs::write(&record_path, b"{ not json").unwrap()),
        ),
    ];
    let mut t = Tally::new(
        "security",
        "a hostile remote cache: entries out of the store, wrong bytes, wrong records",
        "the pulled result is refused (the stage runs instead); nothing outside the store; the output is the stage's own",
    );
    for (what, tamper) in cases {
        t.case(|| {
            tamper();
            let b = ws_with_remote();
            let before = files_under(top.path());
            let o = b.run(&["run"]);
            if !o.status.success() {
                return Err(format!("{what}: the run failed: {}", text(&o)));
            }
            let made = std::fs::read_to_string(b.path().join("results/a/a.txt"))
                .map_err(|e| format!("{what}: results/a/a.txt: {e}"))?;
            if made != "made\n" || !b.path().join("ran.log").exists() {
                return Err(format!(
                    "{what}: the stage's output came from the remote: {made:?}"
                ));
            }
            let new: Vec<_> = files_under(top.path())
                .into_iter()
                .filter(|p| {
                    !before.contains(p) && !p.starts_with(b.path()) && !p.starts_with(&remote)
                })
                .collect();
            if !new.is_empty() || Path::new("/tmp/ventral-security-remote.txt").exists() {
                return Err(format!("{what}: written outside the workspace: {new:?}"));
            }
            let v = b.run(&["verify"]);
            if !v.status.success() {
                return Err(format!("{what}: verify afterwards: {}", text(&v)));
            }
            Ok(())
        });
    }
    t.finish();
}
