//! The built-in stage kinds this binary offers, with the code identities build.rs embedded.

use std::sync::Arc;

use anyhow::{Context, Result};
use ventral_dag::Registry;
use ventral_dag::kinds::cmd::CmdKind;
use ventral_ingest::kinds::{BrainioKind, CifarKind, CocoKind, ImagenetKind};
use ventral_model::kinds::{EvaluateKind, ExtractKind, ImportKind, InitKind, TrainKind};

include!(concat!(env!("OUT_DIR"), "/code_ids.rs"));

/// The code identity of `kind`, as embedded at build time.
pub fn code_id(kind: &str) -> Result<&'static str> {
    CODE_IDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map(|(_, id, _)| *id)
        .with_context(|| {
            format!("kind `{kind}` is registered but not listed in crates/cli/kinds.toml")
        })
}

/// The source files of `kind`.
pub fn sources(kind: &str) -> &'static [&'static str] {
    CODE_IDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map(|(_, _, s)| *s)
        .unwrap_or(&[])
}

/// Every kind this binary knows.
pub fn registry() -> Result<Registry> {
    let mut r = Registry::new();
    r.register(Arc::new(CmdKind::new(code_id("cmd")?)));
    r.register(Arc::new(BrainioKind::new(code_id("brainio")?)));
    r.register(Arc::new(ImagenetKind::new(code_id("imagenet")?)));
    r.register(Arc::new(CocoKind::new(code_id("coco")?)));
    r.register(Arc::new(CifarKind::new(code_id("cifar")?)));
    r.register(Arc::new(InitKind::new(code_id("init")?)));
    r.register(Arc::new(ventral_synth::kind::SynthKind::new(code_id(
        "synth",
    )?)));
    r.register(Arc::new(ImportKind::new(code_id("import")?)));
    r.register(Arc::new(TrainKind::new(code_id("train")?)));
    r.register(Arc::new(EvaluateKind::new(code_id("evaluate")?)));
    r.register(Arc::new(ExtractKind::new(code_id("extract")?)));
    r.register(Arc::new(ventral_benchmarks::kinds::NeuralKind::new(
        code_id("neural")?,
    )));
    r.register(Arc::new(ventral_benchmarks::kinds::BehaviourKind::new(
        code_id("behaviour")?,
    )));
    r.register(Arc::new(ventral_benchmarks::kinds::OstKind::new(code_id(
        "ost",
    )?)));
    r.register(Arc::new(ventral_benchmarks::kinds::TransferKind::new(
        code_id("transfer")?,
    )));
    r.register(Arc::new(ventral_benchmarks::kinds::CompositeKind::new(
        code_id("composite")?,
    )));
    r.register(Arc::new(ventral_report::ReportKind::new(code_id(
        "report",
    )?)));
    Ok(r)
}
