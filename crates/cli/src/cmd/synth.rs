//! `ventral synth`: the synthetic world into a folder.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use ventral_synth::kind::{Size, SynthParams};

use super::{Global, Output, emit};

/// `ventral synth`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The output folder (must be new or empty).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The world's size: embedded or full.
    #[arg(long, default_value = "embedded", value_parser = size)]
    pub size: Size,
    /// The seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fields of the world overriding the size's, as an inline TOML table (what the `synth`
    /// kind's `world` param takes), e.g. `--world '{ imagenet = [1000, 1, 5] }'`.
    #[arg(long, value_name = "TOML")]
    pub world: Option<String>,
}

#[derive(serde::Serialize)]
#[serde(transparent)]
struct Generated(ventral_synth::WorldSummary);

impl Output for Generated {
    fn text(&self) -> String {
        let s = &self.0;
        let mut l: Vec<String> = s
            .images
            .iter()
            .map(|(set, n)| format!("{set}: {n} images"))
            .collect();
        l.extend(
            s.assemblies
                .iter()
                .map(|(id, shape)| format!("{id}: {shape:?}")),
        );
        l.push(format!("{} bytes in {:.1} s", s.bytes, s.seconds));
        l.join("\n")
    }
}

/// `--size`, read as the `synth` kind's `size` param is (one definition of the names).
fn size(s: &str) -> Result<Size, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("`{s}` (embedded or full)"))
}

/// `--world`: an inline TOML table, as JSON values.
fn world_table(text: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    #[derive(serde::Deserialize)]
    struct Doc {
        world: serde_json::Map<String, serde_json::Value>,
    }
    let doc: Doc = toml::from_str(&format!("world = {text}"))
        .map_err(|e| anyhow::anyhow!("--world `{text}`: not an inline TOML table: {e}"))?;
    Ok(doc.world)
}

/// Run `ventral synth`.
pub fn exec(g: &Global, a: &Args) -> Result<ExitCode> {
    let mut world = serde_json::Map::new();
    world.insert("seed".into(), a.seed.into());
    if let Some(t) = &a.world {
        world.extend(world_table(t)?);
    }
    let cfg = SynthParams {
        size: a.size,
        world,
    }
    .config()
    .map_err(anyhow::Error::msg)?;
    let quiet = g.json;
    let s = ventral_synth::generate(&cfg, &a.output, &|m: &str| {
        if !quiet {
            eprintln!("{m}");
        }
    })?;
    emit(g, &Generated(s))?;
    Ok(ExitCode::SUCCESS)
}
