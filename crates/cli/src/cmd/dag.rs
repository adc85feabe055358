//! `ventral dag`: the stage graph, as text, Graphviz dot or JSON.

use std::process::ExitCode;

use anyhow::Result;
use ventral_dag::{Engine, Pipeline, Resources};

use super::{Global, Output, emit, with_engine};

/// `ventral dag`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// As Graphviz dot.
    #[arg(long)]
    pub dot: bool,
}

/// One stage of the graph.
#[derive(serde::Serialize)]
struct Node {
    stage: String,
    kind: String,
    deps: Vec<String>,
    #[serde(skip_serializing_if = "Resources::is_empty")]
    resources: Resources,
}

/// The graph in execution order.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Graph {
    nodes: Vec<Node>,
    #[serde(skip)]
    name: String,
    #[serde(skip)]
    dot: bool,
}

impl Output for Graph {
    fn text(&self) -> String {
        let mut lines = Vec::new();
        if self.dot {
            lines.push(format!("digraph \"{}\" {{\n  rankdir=LR;", self.name));
            for n in &self.nodes {
                lines.push(format!(
                    "  \"{}\" [label=\"{}\\n{}\"];",
                    n.stage, n.stage, n.kind
                ));
                for d in &n.deps {
                    lines.push(format!("  \"{d}\" -> \"{}\";", n.stage));
                }
            }
            lines.push("}".into());
        } else {
            for n in &self.nodes {
                if n.deps.is_empty() {
                    lines.push(format!("{} ({})", n.stage, n.kind));
                } else {
                    lines.push(format!("{} ({}) <- {}", n.stage, n.kind, n.deps.join(", ")));
                }
            }
        }
        lines.join("\n")
    }
}

/// Run `ventral dag`.
pub fn exec(g: &Global, a: &Args) -> Result<ExitCode> {
    with_engine(g, |_, _, pipeline, engine| graph(g, a, pipeline, engine))
}

fn graph(g: &Global, a: &Args, pipeline: &Pipeline, engine: &Engine) -> Result<ExitCode> {
    let graph = engine.graph();
    let nodes = graph
        .order
        .iter()
        .map(|&i| {
            let s = &pipeline.stages[i];
            Node {
                stage: s.name.clone(),
                kind: s.kind.clone(),
                deps: graph.deps[i]
                    .iter()
                    .map(|&d| pipeline.stages[d].name.clone())
                    .collect(),
                resources: s.resources.clone(),
            }
        })
        .collect();
    emit(
        g,
        &Graph {
            nodes,
            name: pipeline.name.clone(),
            dot: a.dot,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
