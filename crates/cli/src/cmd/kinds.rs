//! `ventral kinds`: the stage kinds, their params (generated from each kind's params type)
//! and code identities.

use std::process::ExitCode;

use anyhow::Result;
use ventral_dag::ParamSpec;

use super::{Global, Output, emit};

#[derive(serde::Serialize)]
struct Param {
    name: String,
    #[serde(rename = "type")]
    ty: &'static str,
    required: bool,
    doc: String,
    allowed: Vec<String>,
    default: Option<serde_json::Value>,
}

impl From<ParamSpec> for Param {
    fn from(p: ParamSpec) -> Self {
        Param {
            name: p.name,
            ty: p.ty.describe(),
            required: p.required,
            doc: p.doc,
            allowed: p.allowed,
            default: p.default,
        }
    }
}

#[derive(serde::Serialize)]
struct Kind {
    kind: String,
    code: String,
    #[serde(rename = "crate")]
    code_crate: &'static str,
    closure: &'static [&'static str],
    external_crates: usize,
    doc: String,
    params: Vec<Param>,
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct Kinds(Vec<Kind>);

impl Output for Kinds {
    fn text(&self) -> String {
        let mut l = Vec::new();
        for k in &self.0 {
            l.push(format!(
                "{}  (code {})  {}",
                k.kind,
                &k.code[..16.min(k.code.len())],
                k.doc
            ));
            for p in &k.params {
                let mut doc = p.doc.clone();
                if !p.allowed.is_empty() {
                    doc.push_str(&format!(" One of: {}.", p.allowed.join(", ")));
                }
                if let Some(d) = &p.default {
                    doc.push_str(&format!(" Default: {d}."));
                }
                l.push(format!(
                    "    {:<15} {:<20} {}{}",
                    p.name,
                    p.ty,
                    if p.required { "Required. " } else { "" },
                    doc
                ));
            }
            l.push(format!(
                "    code: {} and {} external crates",
                k.closure.join(", "),
                k.external_crates
            ));
        }
        l.join("\n")
    }
}

/// Run `ventral kinds`.
pub fn exec(g: &Global) -> Result<ExitCode> {
    let registry = ventral_kinds::registry()?;
    let kinds = registry
        .iter()
        .map(|(k, code)| {
            let (closure, external_crates) = ventral_kinds::closure(k.code_crate());
            Kind {
                kind: k.name().to_string(),
                code: code.to_string(),
                code_crate: k.code_crate(),
                closure,
                external_crates,
                doc: k.doc().to_string(),
                params: k.params().into_iter().map(Param::from).collect(),
            }
        })
        .collect();
    emit(g, &Kinds(kinds))?;
    Ok(ExitCode::SUCCESS)
}
