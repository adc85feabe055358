//! What a stage asks of the machine that runs it: a stage-level table beside `publish`,
//! read and checked with the pipeline, never part of a key (where a stage runs does not
//! change what it computes; the device it runs on is part of its runtime instead).
//!
//! ```toml
//! [stages.train]
//! kind = "train"
//! resources = { cpus = 8, mem = "32G", gpus = 1, time = "12:00:00", partition = "gpu" }
//! ```
//!
//! The values use Slurm's syntax (`--mem`, `--time`), so a cluster executor hands them on
//! as they are; the local executor ignores them.

use serde::{Deserialize, Serialize};

/// A stage's resource request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Memory, as Slurm's `--mem` takes it: a whole number with an optional unit K, M, G or
    /// T (M when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// Wall-clock limit, as Slurm's `--time` takes it: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`
    /// or `D-H:M:S`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The cluster partition (queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

impl Resources {
    /// Whether nothing is asked for.
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }

    /// Parse and check a `resources` table given as JSON; the error names the field.
    pub fn from_json(v: serde_json::Value) -> Result<Resources, String> {
        let r: Resources = serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            if path == "." {
                format!("`resources`: {inner}")
            } else {
                format!("`resources.{path}`: {inner}")
            }
        })?;
        r.check()?;
        Ok(r)
    }

    fn check(&self) -> Result<(), String> {
        if self.cpus == Some(0) {
            return Err("`resources.cpus`: 0 (at least 1)".into());
        }
        if let Some(m) = &self.mem {
            mem_bytes(m).ok_or_else(|| {
                format!("`resources.mem`: `{m}` is not a memory size (a whole number with K, M, G or T, e.g. \"16G\")")
            })?;
        }
        if let Some(t) = &self.time {
            time_seconds(t).ok_or_else(|| {
                format!("`resources.time`: `{t}` is not a time limit (M, M:S, H:M:S, D-H, D-H:M or D-H:M:S, e.g. \"2:00:00\")")
            })?;
        }
        if let Some(p) = &self.partition
            && (p.is_empty() || p.contains(|c: char| c.is_whitespace() || c == ','))
        {
            return Err(format!(
                "`resources.partition`: `{p}` is not one partition name"
            ));
        }
        Ok(())
    }

    /// The memory asked for, in bytes.
    pub fn mem_bytes(&self) -> Option<u64> {
        self.mem.as_deref().and_then(mem_bytes)
    }

    /// The time limit, in seconds.
    pub fn time_seconds(&self) -> Option<u64> {
        self.time.as_deref().and_then(time_seconds)
    }
}

/// Bytes of a Slurm memory size (`16G`, `512M`, `1024`: megabytes when no unit).
pub fn mem_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "M"),
    };
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "K" | "KB" => 10,
        "M" | "MB" => 20,
        "G" | "GB" => 30,
        "T" | "TB" => 40,
        _ => return None,
    };
    n.checked_mul(1 << shift).filter(|b| *b > 0)
}

/// Seconds of a Slurm time limit.
pub fn time_seconds(s: &str) -> Option<u64> {
    let nums = |part: &str| -> Option<Vec<u64>> {
        part.split(':')
            .map(|x| {
                (!x.is_empty() && x.chars().all(|c| c.is_ascii_digit()))
                    .then(|| x.parse().ok())
                    .flatten()
            })
            .collect()
    };
    let secs = match s.split_once('-') {
        Some((days, rest)) => {
            let d: u64 = nums(days)?.first().copied()?;
            let hms = nums(rest)?;
            let (h, m, sec) = match hms.as_slice() {
                [h] => (*h, 0, 0),
                [h, m] => (*h, *m, 0),
                [h, m, s] => (*h, *m, *s),
                _ => return None,
            };
            ((d * 24 + h) * 60 + m) * 60 + sec
        }
        None => match nums(s)?.as_slice() {
            [m] => m * 60,
            [m, sec] => m * 60 + sec,
            [h, m, sec] => (h * 60 + m) * 60 + sec,
            _ => return None,
        },
    };
    (secs > 0).then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_sizes_and_times() {
        assert_eq!(mem_bytes("16G"), Some(16 << 30));
        assert_eq!(mem_bytes("512"), Some(512 << 20));
        assert_eq!(mem_bytes("2t"), Some(2 << 40));
        for bad in ["16Q", "", "G", "-1G", "1.5G", "0"] {
            assert_eq!(mem_bytes(bad), None, "{bad}");
        }
        assert_eq!(time_seconds("30"), Some(1800));
        assert_eq!(time_seconds("30:15"), Some(1815));
        assert_eq!(time_seconds("2:00:00"), Some(7200));
        assert_eq!(time_seconds("1-12"), Some(36 * 3600));
        assert_eq!(time_seconds("1-0:30"), Some(24 * 3600 + 1800));
        assert_eq!(time_seconds("1-0:0:1"), Some(86401));
        for bad in ["", "2h", "1:2:3:4", "-1", "1-", "a-1", "0"] {
            assert_eq!(time_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_tables_name_the_field() {
        let e = |v: serde_json::Value| Resources::from_json(v).unwrap_err();
        assert!(e(serde_json::json!({"gpu": 1})).contains("`gpu`"));
        assert!(e(serde_json::json!({"mem": "16Q"})).starts_with("`resources.mem`"));
        assert!(e(serde_json::json!({"cpus": -2})).starts_with("`resources.cpus`"));
        assert!(e(serde_json::json!({"time": "2h"})).starts_with("`resources.time`"));
        assert!(e(serde_json::json!({"cpus": 0})).starts_with("`resources.cpus`"));
        let r = Resources::from_json(serde_json::json!({"cpus": 4, "mem": "16G", "gpus": 1, "time": "2:00:00", "partition": "gpu"})).unwrap();
        assert_eq!(r.mem_bytes(), Some(16 << 30));
        assert_eq!(r.time_seconds(), Some(7200));
        assert!(!r.is_empty());
    }
}
