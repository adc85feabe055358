//! The `cmd` kind: an external command with declared inputs and outputs, as in DVC.
//!
//! ```toml
//! [stages.plot]
//! kind = "cmd"
//! cmd = "python scripts/plot.py ${inputs.scores} ${out}/fig.png"
//! inputs = { scores = "stage:score", script = "scripts/plot.py" }
//! outs = ["fig.png"]                 # must exist in ${out} afterwards
//! env = { MPLBACKEND = "Agg" }
//! params = { dpi = 150 }             # handed to the command as JSON in $VENTRAL_PARAMS
//! ```
//!
//! The command runs under `sh -c` in the workspace root. `${out}` is a fresh, empty folder
//! that becomes the stage's output; `${inputs.NAME}` expands to the input's paths, quoted.
//! Other `${…}` are left for the shell. The command's stdout and stderr go to the stage log.
//! If `ventral` dies, the command is killed with it.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::kind::{BoxError, ParamSpec, ParamType, Params, StageContext, StageKind};

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "cmd",
        ty: ParamType::Str,
        required: true,
        doc: "the shell command; ${out} is the output folder, ${inputs.NAME} an input's paths",
    },
    ParamSpec {
        name: "outs",
        ty: ParamType::StrList,
        required: false,
        doc: "paths inside ${out} the command must create",
    },
    ParamSpec {
        name: "env",
        ty: ParamType::Table,
        required: false,
        doc: "environment variables for the command",
    },
    ParamSpec {
        name: "params",
        ty: ParamType::Table,
        required: false,
        doc: "free-form params, passed as JSON in $VENTRAL_PARAMS",
    },
];

/// The `cmd` kind.
pub struct CmdKind;

/// Quote `s` for `sh`.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Replace `${out}` and `${inputs.NAME}` in `cmd`; leave every other `${…}` to the shell.
pub fn substitute(
    cmd: &str,
    out: &Path,
    inputs: &BTreeMap<String, Vec<PathBuf>>,
) -> Result<String, String> {
    let mut result = String::with_capacity(cmd.len());
    let mut rest = cmd;
    while let Some(i) = rest.find("${") {
        result.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            result.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let name = &after[..end];
        if name == "out" {
            result.push_str(&shell_quote(&out.to_string_lossy()));
        } else if let Some(input) = name.strip_prefix("inputs.") {
            let paths = inputs.get(input).ok_or_else(|| {
                format!(
                    "`${{inputs.{input}}}`: no input `{input}` (inputs: {})",
                    inputs.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            let quoted: Vec<String> = paths
                .iter()
                .map(|p| shell_quote(&p.to_string_lossy()))
                .collect();
            result.push_str(&quoted.join(" "));
        } else {
            result.push_str(&rest[i..i + 2 + end + 1]);
        }
        rest = &after[end + 1..];
    }
    result.push_str(rest);
    Ok(result)
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl StageKind for CmdKind {
    fn name(&self) -> &str {
        "cmd"
    }

    crate::code_crate!();

    fn params(&self) -> &[ParamSpec] {
        PARAMS
    }

    fn doc(&self) -> &str {
        "an external command with declared inputs and outputs"
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let template = ctx
            .params
            .get("cmd")
            .and_then(Value::as_str)
            .ok_or("param `cmd` is required")?;
        let cmd = substitute(template, ctx.out_dir, ctx.inputs)?;
        let log = std::fs::File::create(ctx.log)
            .map_err(|e| format!("cannot create log {}: {e}", ctx.log.display()))?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&cmd)
            .current_dir(ctx.workspace)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env("VENTRAL_OUT", ctx.out_dir)
            .env("VENTRAL_STAGE", ctx.stage);
        let user_params = ctx
            .params
            .get("params")
            .cloned()
            .unwrap_or(Value::Object(Params::new()));
        command.env("VENTRAL_PARAMS", crate::canonical::to_string(&user_params));
        let inputs_json: serde_json::Map<String, Value> = ctx
            .inputs
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Value::Array(
                        v.iter()
                            .map(|p| Value::String(p.to_string_lossy().into()))
                            .collect(),
                    ),
                )
            })
            .collect();
        command.env("VENTRAL_INPUTS", Value::Object(inputs_json).to_string());
        if let Some(Value::Object(env)) = ctx.params.get("env") {
            for (k, v) in env {
                let val = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                command.env(k, val);
            }
        }
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        (ctx.progress)(&format!("$ {}", truncate(&cmd, 60)));
        let status = command
            .status()
            .map_err(|e| format!("cannot start `sh`: {e}"))?;
        if !status.success() {
            return Err(format!(
                "command exited with {status}\n  $ {cmd}\n  last lines of {}:\n{}",
                ctx.log.display(),
                tail(ctx.log, 15)
            )
            .into());
        }
        if let Some(Value::Array(outs)) = ctx.params.get("outs") {
            let missing: Vec<&str> = outs
                .iter()
                .filter_map(Value::as_str)
                .filter(|o| !ctx.out_dir.join(o).exists())
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "the command did not create its declared outs in ${{out}}: {}",
                    missing.join(", ")
                )
                .into());
            }
        }
        Ok(())
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_quotes_and_leaves_shell_vars() {
        let inputs = BTreeMap::from([(
            "x".to_string(),
            vec![PathBuf::from("/a b/c"), PathBuf::from("/d")],
        )]);
        let s = substitute(
            "cat ${inputs.x} > ${out}/f; echo ${HOME} $${",
            Path::new("/o"),
            &inputs,
        )
        .unwrap();
        assert_eq!(s, "cat '/a b/c' /d > /o/f; echo ${HOME} $${");
        assert!(substitute("${inputs.y}", Path::new("/o"), &inputs).is_err());
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
