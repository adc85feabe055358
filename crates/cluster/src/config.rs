//! The workspace config, `ventral.toml` at the workspace root: which executor runs the
//! stages, and its settings. Absent file: the local executor with its defaults.
//!
//! ```toml
//! [executor]
//! kind = "slurm"            # or "local"
//! partition = "cpu"         # default partition (a stage's `resources.partition` wins)
//! gpu_partition = "gpu"     # where stages asking for GPUs go when they name none
//! account = "lab"
//! qos = "normal"
//! sbatch_args = ["--constraint=avx512"]
//! max_jobs = 100            # array tasks in flight at once (`--array=…%K`)
//! poll_seconds = 5          # how often the store and `squeue` are looked at
//! retries = 1               # resubmissions after a node failure or preemption
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{ClusterError, Result};

/// The file's name, at the workspace root.
pub const FILE_NAME: &str = "ventral.toml";

/// Which executor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// Every stage in the driver's process (its `-j` threads).
    #[default]
    Local,
    /// `sbatch` job arrays of `ventral exec-stage KEY`.
    Slurm,
    /// Every stage in a `ventral exec-stage KEY` process of its own on this machine
    /// (isolation, and each stage's peak memory in its run record).
    Process,
}

impl std::str::FromStr for ExecutorKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "local" => Ok(ExecutorKind::Local),
            "slurm" => Ok(ExecutorKind::Slurm),
            "process" => Ok(ExecutorKind::Process),
            other => Err(format!(
                "`{other}` is not an executor (local, process or slurm)"
            )),
        }
    }
}

/// The `[executor]` table: which executor, and the Slurm executor's settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorConfig {
    /// Which executor `ventral run` uses when `--executor` does not say.
    pub kind: ExecutorKind,
    /// The default partition; a stage's `resources.partition` wins.
    pub partition: Option<String>,
    /// The partition of stages that ask for GPUs and name no partition.
    pub gpu_partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--qos`.
    pub qos: Option<String>,
    /// More `sbatch` flags, each one argument.
    pub sbatch_args: Vec<String>,
    /// Array tasks in flight at once.
    pub max_jobs: usize,
    /// Seconds between looks at the store and at `squeue`.
    pub poll_seconds: f64,
    /// Resubmissions of a task that Slurm reports as lost to a node failure or preemption
    /// (never after the stage itself failed).
    pub retries: u32,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            kind: ExecutorKind::Local,
            partition: None,
            gpu_partition: None,
            account: None,
            qos: None,
            sbatch_args: Vec::new(),
            max_jobs: 100,
            poll_seconds: 5.0,
            retries: 1,
        }
    }
}

/// A `[remote.NAME]` table: a remote cache of results.
///
/// ```toml
/// [remote.lab]
/// url = "s3://lab-bucket/ventral"   # s3://, gs://, az://, https:// (read-only), file:// or a path
/// default = true                    # used by `ventral run` without `--remote`
/// options = { endpoint = "http://127.0.0.1:9000", region = "us-east-1", allow_http = "true" }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// Where it is.
    pub url: String,
    /// Whether `ventral run` uses it when no `--remote` is given.
    #[serde(default)]
    pub default: bool,
    /// Options of its `object_store` builder (credentials are better left to the usual
    /// `AWS_*`, `GOOGLE_*`, `AZURE_*` variables and files).
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    /// `[executor]`.
    #[serde(default)]
    pub executor: ExecutorConfig,
    /// `[remote.NAME]` tables.
    #[serde(default)]
    pub remote: std::collections::BTreeMap<String, RemoteConfig>,
    /// Where it was read from (None: no file, defaults).
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

impl WorkspaceConfig {
    /// The remote `name`, or the default one when `name` is None (None when there is none).
    pub fn remote(
        &self,
        name: Option<&str>,
    ) -> std::result::Result<Option<(String, RemoteConfig)>, String> {
        match name {
            Some(n) => match self.remote.get(n) {
                Some(r) => Ok(Some((n.to_string(), r.clone()))),
                None => Err(format!(
                    "no remote `{n}` in {} (remotes: {})",
                    self.file
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| FILE_NAME.to_string()),
                    if self.remote.is_empty() {
                        "none".to_string()
                    } else {
                        self.remote.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                )),
            },
            None => Ok(self
                .remote
                .iter()
                .find(|(_, r)| r.default)
                .map(|(n, r)| (n.clone(), r.clone()))),
        }
    }

    /// Read `root/ventral.toml`; its absence gives the defaults.
    pub fn load(root: &Path) -> Result<WorkspaceConfig> {
        let file = root.join(FILE_NAME);
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(WorkspaceConfig::default());
            }
            Err(source) => return Err(ClusterError::Io { path: file, source }),
        };
        let mut cfg = Self::parse(&text).map_err(|message| ClusterError::Config {
            file: file.clone(),
            message,
        })?;
        cfg.file = Some(file);
        Ok(cfg)
    }

    /// Parse the file's text; the error names the field at fault.
    pub fn parse(text: &str) -> std::result::Result<WorkspaceConfig, String> {
        let cfg: WorkspaceConfig = toml::from_str(text).map_err(|e| {
            // toml's message names the key and the line; keep it on one line.
            e.to_string().trim().replace('\n', " ")
        })?;
        cfg.executor.check()?;
        let defaults: Vec<&String> = cfg
            .remote
            .iter()
            .filter(|(_, r)| r.default)
            .map(|(n, _)| n)
            .collect();
        if defaults.len() > 1 {
            return Err(format!(
                "`remote.*.default`: {} remotes are the default ({}); at most one may be",
                defaults.len(),
                defaults
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (name, r) in &cfg.remote {
            if r.url.trim().is_empty() {
                return Err(format!("`remote.{name}.url`: empty"));
            }
        }
        Ok(cfg)
    }
}

impl ExecutorConfig {
    fn check(&self) -> std::result::Result<(), String> {
        if self.max_jobs == 0 {
            return Err("`executor.max_jobs`: 0 (at least 1)".into());
        }
        if !(self.poll_seconds.is_finite() && self.poll_seconds > 0.0) {
            return Err(format!(
                "`executor.poll_seconds`: {} (a positive number of seconds)",
                self.poll_seconds
            ));
        }
        for (field, v) in [
            ("partition", &self.partition),
            ("gpu_partition", &self.gpu_partition),
            ("account", &self.account),
            ("qos", &self.qos),
        ] {
            if let Some(v) = v
                && (v.is_empty() || v.contains(|c: char| c.is_whitespace()))
            {
                return Err(format!("`executor.{field}`: `{v}` is not one name"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_a_full_table() {
        let c = WorkspaceConfig::parse("").unwrap();
        assert_eq!(c.executor.kind, ExecutorKind::Local);
        assert_eq!(c.executor.max_jobs, 100);
        let c = WorkspaceConfig::parse(
            r#"
[executor]
kind = "slurm"
partition = "cpu"
gpu_partition = "gpu"
account = "lab"
qos = "normal"
sbatch_args = ["--constraint=avx512"]
max_jobs = 8
poll_seconds = 0.5
retries = 2
"#,
        )
        .unwrap();
        assert_eq!(c.executor.kind, ExecutorKind::Slurm);
        let s = &c.executor;
        assert_eq!(s.partition.as_deref(), Some("cpu"));
        assert_eq!(s.gpu_partition.as_deref(), Some("gpu"));
        assert_eq!(s.sbatch_args, vec!["--constraint=avx512".to_string()]);
        assert_eq!((s.max_jobs, s.poll_seconds, s.retries), (8, 0.5, 2));
    }

    #[test]
    fn errors_name_the_field() {
        let e = |t: &str| WorkspaceConfig::parse(t).unwrap_err();
        assert!(
            e("[executor]\nkind = \"pbs\"").contains("pbs"),
            "{}",
            e("[executor]\nkind = \"pbs\"")
        );
        assert!(e("[executor]\nmax_job = 3").contains("max_job"));
        assert!(e("[executor]\nmax_jobs = 0").contains("executor.max_jobs"));
        assert!(e("[executor]\npoll_seconds = -1").contains("executor.poll_seconds"));
        assert!(e("[executor]\npartition = \"a b\"").contains("executor.partition"));
        assert!(e("[executors]\n").contains("executors"));
    }

    #[test]
    fn load_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(WorkspaceConfig::load(d.path()).unwrap().file, None);
        std::fs::write(d.path().join(FILE_NAME), "[executor]\nretries = \"x\"").unwrap();
        let e = WorkspaceConfig::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("ventral.toml") && e.contains("retries"), "{e}");
    }
}

#[cfg(test)]
mod remote_tests {
    use super::*;

    #[test]
    fn remotes_by_name_and_the_default() {
        let c = WorkspaceConfig::parse(
            "[remote.lab]\nurl = \"s3://b/p\"\ndefault = true\noptions = { endpoint = \"http://127.0.0.1:9000\" }\n[remote.disk]\nurl = \"/mnt/shared\"\n",
        )
        .unwrap();
        assert_eq!(c.remote(None).unwrap().unwrap().0, "lab");
        assert_eq!(
            c.remote(Some("disk")).unwrap().unwrap().1.url,
            "/mnt/shared"
        );
        assert!(c.remote(Some("nope")).unwrap_err().contains("disk, lab"));
        let e = WorkspaceConfig::parse(
            "[remote.a]\nurl = \"x\"\ndefault = true\n[remote.b]\nurl = \"y\"\ndefault = true\n",
        )
        .unwrap_err();
        assert!(e.contains("at most one"), "{e}");
        assert!(
            WorkspaceConfig::parse("[remote.a]\nuri = \"x\"\n")
                .unwrap_err()
                .contains("uri")
        );
    }
}
