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
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::kind::{BoxError, Params, StageContext, StageKind};

/// The params of `cmd`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CmdParams {
    /// The shell command; ${out} is the output folder, ${inputs.NAME} an input's paths.
    pub cmd: String,
    /// Paths inside ${out} the command must create.
    #[serde(default)]
    pub outs: Vec<String>,
    /// Environment variables for the command (strings; other values as JSON).
    #[serde(default)]
    pub env: BTreeMap<String, Value>,
    /// Free-form params, passed as JSON in $VENTRAL_PARAMS.
    #[serde(default)]
    pub params: Params,
}

impl crate::KindParams for CmdParams {
    fn check(&self) -> Result<(), String> {
        if self.cmd.trim().is_empty() {
            return Err("param `cmd`: empty (a shell command)".into());
        }
        if let Some(o) = self
            .outs
            .iter()
            .find(|o| o.is_empty() || Path::new(o).is_absolute() || o.split('/').any(|c| c == ".."))
        {
            return Err(format!(
                "param `outs`: `{o}` is not a relative path inside ${{out}}"
            ));
        }
        Ok(())
    }
}

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
            result.push_str(&shell_quote(utf8(out)?));
        } else if let Some(input) = name.strip_prefix("inputs.") {
            let paths = inputs.get(input).ok_or_else(|| {
                format!(
                    "`${{inputs.{input}}}`: no input `{input}` (inputs: {})",
                    inputs.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            let quoted = paths
                .iter()
                .map(|p| utf8(p).map(shell_quote))
                .collect::<Result<Vec<String>, String>>()?;
            result.push_str(&quoted.join(" "));
        } else {
            result.push_str(&rest[i..i + 2 + end + 1]);
        }
        rest = &after[end + 1..];
    }
    result.push_str(rest);
    Ok(result)
}

/// `p` as text for the command line: a path that is not UTF-8 would reach the shell
/// changed (and name another file), so it is refused.
fn utf8(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("path {p:?} is not UTF-8: cannot be put into a `cmd`"))
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

    crate::typed_params!(CmdParams);

    fn doc(&self) -> &str {
        "an external command with declared inputs and outputs"
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<(), BoxError> {
        let p: CmdParams = crate::typed::parse(ctx.params)?;
        let cmd = substitute(&p.cmd, ctx.out_dir, ctx.inputs)?;
        // Emptied, then opened for appending: the engine appends its own lines (`ventral: $ …`)
        // through another handle, which a plain write handle would overwrite from offset 0.
        let log = std::fs::File::create(ctx.log)
            .and_then(|_| std::fs::OpenOptions::new().append(true).open(ctx.log))
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
        command.env(
            "VENTRAL_PARAMS",
            crate::canonical::to_string(&Value::Object(p.params.clone())),
        );
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
        for (k, v) in &p.env {
            let val = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            command.env(k, val);
        }
        // A driver killed before the command starts would leave it running as an orphan.
        crate::process::die_with_parent(&mut command);
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
        let missing: Vec<&str> = p
            .outs
            .iter()
            .map(String::as_str)
            .filter(|o| !ctx.out_dir.join(o).exists())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the command did not create its declared outs in ${{out}}: {}",
                missing.join(", ")
            )
            .into());
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

    #[test]
    fn a_path_that_is_not_utf8_is_refused_not_changed() {
        use std::os::unix::ffi::OsStrExt;
        let odd = PathBuf::from(std::ffi::OsStr::from_bytes(b"/data/caf\xe9"));
        let inputs = BTreeMap::from([("x".to_string(), vec![odd.clone()])]);
        let e = substitute("cat ${inputs.x}", Path::new("/o"), &inputs).unwrap_err();
        assert!(e.contains("not UTF-8"), "{e}");
        assert!(substitute("ls ${out}", &odd, &BTreeMap::new()).is_err());
    }
}
