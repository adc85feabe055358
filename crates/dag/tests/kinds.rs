//! Code identity and runtime identity, with in-process kinds (no binary needed).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ventral_dag::{
    Action, BoxError, Engine, LocalExecutor, NoProgress, ParamSpec, ParamType, Params, Pipeline,
    Registry, RunOptions, StageContext, StageKind, Workspace,
};

/// A kind that writes `prefix + param + inputs` and counts its executions.
struct Echo {
    name: &'static str,
    runtime: Option<String>,
    runs: Arc<AtomicUsize>,
}

fn spec() -> Vec<ParamSpec> {
    vec![ParamSpec {
        name: "text".into(),
        ty: ParamType::Str,
        required: true,
        doc: "what to write".into(),
        allowed: Vec::new(),
        default: None,
    }]
}

impl StageKind for Echo {
    fn name(&self) -> &str {
        self.name
    }
    fn code_crate(&self) -> &'static str {
        "test"
    }
    fn params(&self) -> Vec<ParamSpec> {
        spec()
    }
    fn runtime(&self, _p: &Params) -> Result<Option<String>, BoxError> {
        Ok(self.runtime.clone())
    }
    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let mut text = ctx.params["text"].as_str().unwrap_or_default().to_string();
        for paths in ctx.inputs.values() {
            for p in paths {
                let f = if p.is_dir() { p.join("o") } else { p.clone() };
                text.push_str(&std::fs::read_to_string(f)?);
            }
        }
        std::fs::write(ctx.out_dir.join("o"), text)?;
        Ok(())
    }
}

struct World {
    dir: tempfile::TempDir,
    runs_a: Arc<AtomicUsize>,
    runs_b: Arc<AtomicUsize>,
}

const PIPE: &str = r#"
[stages.a1]
kind = "metric_a"
text = "a1"
[stages.b1]
kind = "metric_b"
text = "b1"
inputs = { up = "stage:a1" }
[stages.a2]
kind = "metric_a"
text = "a2"
inputs = { up = "stage:b1" }
"#;

impl World {
    fn new() -> Self {
        World {
            dir: tempfile::tempdir().unwrap(),
            runs_a: Arc::default(),
            runs_b: Arc::default(),
        }
    }

    fn registry(&self, code_a: &str, code_b: &str, runtime_b: Option<&str>) -> Registry {
        let mut r = Registry::new();
        r.register(
            Arc::new(Echo {
                name: "metric_a",
                runtime: None,
                runs: self.runs_a.clone(),
            }),
            code_a,
        );
        r.register(
            Arc::new(Echo {
                name: "metric_b",
                runtime: runtime_b.map(str::to_string),
                runs: self.runs_b.clone(),
            }),
            code_b,
        );
        r
    }

    fn run(&self, reg: &Registry) -> Vec<(String, Action)> {
        let ws = Workspace::open(self.dir.path(), None).unwrap();
        let p = Pipeline::parse(Path::new("pipelines/p.toml"), PIPE, None).unwrap();
        let engine = Engine::new(&ws, reg, &p).unwrap();
        let exec = LocalExecutor {
            store: &ws.store,
            registry: reg,
        };
        let report = engine
            .run(&RunOptions::default(), &exec, &NoProgress)
            .unwrap();
        assert!(report.ok());
        report
            .stages
            .iter()
            .map(|s| (s.stage.clone(), s.action))
            .collect()
    }

    fn ran(&self, reg: &Registry) -> Vec<String> {
        self.run(reg)
            .into_iter()
            .filter(|(_, a)| *a == Action::Ran)
            .map(|(s, _)| s)
            .collect()
    }
}

#[test]
fn editing_one_kinds_code_reruns_its_stages_and_nothing_upstream() {
    let w = World::new();
    assert_eq!(w.ran(&w.registry("A1", "B1", None)), ["a1", "b1", "a2"]);
    assert!(w.ran(&w.registry("A1", "B1", None)).is_empty());
    // metric_b's code changed: b1 re-runs; its output bytes are the same, so a2 (downstream)
    // is cut off, and a1 (upstream) is untouched.
    assert_eq!(w.ran(&w.registry("A1", "B2", None)), ["b1"]);
    assert_eq!(w.runs_a.load(Ordering::SeqCst), 2);
    assert_eq!(w.runs_b.load(Ordering::SeqCst), 2);
    // metric_a's code changed: both of its stages re-run, b1 does not (a1's bytes are equal).
    assert_eq!(w.ran(&w.registry("A2", "B2", None)), ["a1", "a2"]);
}

#[test]
fn a_new_runtime_is_never_taken_for_the_old_one() {
    let w = World::new();
    w.ran(&w.registry("A", "B", Some("libtorch 2.11.0 cpu")));
    assert_eq!(
        w.ran(&w.registry("A", "B", Some("libtorch 2.11.0 cuda H100"))),
        ["b1"]
    );
    // Back on the first runtime: its own earlier result is reused, not recomputed.
    let back = w.run(&w.registry("A", "B", Some("libtorch 2.11.0 cpu")));
    assert!(
        back.contains(&("b1".to_string(), Action::Restored)),
        "{back:?}"
    );
}

#[test]
fn params_are_type_checked_with_line_numbers() {
    let w = World::new();
    let reg = w.registry("A", "B", None);
    let ws = Workspace::open(w.dir.path(), None).unwrap();
    let p = Pipeline::parse(
        Path::new("p.toml"),
        "[stages.x]\nkind = \"metric_a\"\n\ntext = 5\n",
        None,
    )
    .unwrap();
    let e = Engine::new(&ws, &reg, &p).err().unwrap().to_string();
    assert_eq!(
        e,
        "p.toml:4: stage `x`: param `text` must be a string, got 5"
    );
    let p = Pipeline::parse(
        Path::new("p.toml"),
        "[stages.x]\nkind = \"metric_a\"\ntxt = \"a\"\n",
        None,
    )
    .unwrap();
    let e = Engine::new(&ws, &reg, &p).err().unwrap().to_string();
    assert!(e.contains("unknown param `txt`"), "{e}");
    let p = Pipeline::parse(
        Path::new("p.toml"),
        "[stages.x]\nkind = \"metric_a\"\n",
        None,
    )
    .unwrap();
    let e = Engine::new(&ws, &reg, &p).err().unwrap().to_string();
    assert!(e.contains("missing required param `text`"), "{e}");
    let p = Pipeline::parse(Path::new("p.toml"), "[stages.x]\nkind = \"nope\"\n", None).unwrap();
    let e = Engine::new(&ws, &reg, &p).err().unwrap().to_string();
    assert!(
        e.contains("unknown kind `nope` (known kinds: metric_a, metric_b)"),
        "{e}"
    );
}

#[test]
fn thread_count_does_not_change_results() {
    let outputs = |jobs: usize| {
        let w = World::new();
        let reg = w.registry("A", "B", None);
        let ws = Workspace::open(w.dir.path(), None).unwrap();
        let p = Pipeline::parse(Path::new("pipelines/p.toml"), PIPE, None).unwrap();
        let engine = Engine::new(&ws, &reg, &p).unwrap();
        let exec = LocalExecutor {
            store: &ws.store,
            registry: &reg,
        };
        let opts = RunOptions {
            jobs,
            ..RunOptions::default()
        };
        engine.run(&opts, &exec, &NoProgress).unwrap();
        std::fs::read_to_string(w.dir.path().join("lockfiles/p.lock")).unwrap()
    };
    assert_eq!(outputs(1), outputs(4));
}
