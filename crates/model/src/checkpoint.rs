//! `torch.save` checkpoints into libtorch tensors, and weights in and out of a model.
//!
//! The file is read by `ventral-checkpoint` (a pickle machine and the storages, without
//! libtorch, fuzzed); [`read_checkpoint`] turns its tensors into libtorch's. [`load_into`]
//! copies a state dict into a model's variables after checking names and shapes, listing every
//! missing, unexpected and mis-shaped key on failure.

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Kind, Tensor, nn};
use ventral_checkpoint::{CheckpointError, Dtype};

use crate::error::{ModelError, Result};

/// A state dict read from a file: names (without `module.`) to tensors, in file order.
pub type StateDict = Vec<(String, Tensor)>;

fn kind(dtype: Dtype) -> Kind {
    match dtype {
        Dtype::Float => Kind::Float,
        Dtype::Double => Kind::Double,
        Dtype::Half => Kind::Half,
        Dtype::BFloat16 => Kind::BFloat16,
        Dtype::Int64 => Kind::Int64,
        Dtype::Int32 => Kind::Int,
        Dtype::Int16 => Kind::Int16,
        Dtype::Int8 => Kind::Int8,
        Dtype::Uint8 => Kind::Uint8,
        Dtype::Bool => Kind::Bool,
    }
}

/// Read the state dict of a `torch.save` checkpoint, in either of the formats `torch.load`
/// reads: the ZIP one (PyTorch ≥ 1.6) or the legacy one (PyTorch 0.4–1.5, and
/// `_use_new_zipfile_serialization=False` since: the official CORnet checkpoints are in it).
/// The file is read and checked by `ventral-checkpoint` (no libtorch); its tensors' bytes
/// become libtorch tensors here.
pub fn read_checkpoint(path: &Path) -> Result<StateDict> {
    let tensors = ventral_checkpoint::read(path).map_err(|e| match e {
        CheckpointError::Io { path, source } => crate::error::io(path, source),
        CheckpointError::Invalid {
            path,
            field,
            message,
        } => ModelError::Checkpoint {
            path,
            field,
            message,
        },
    })?;
    tensors
        .into_iter()
        .map(|t| {
            let count: i64 = t.shape.iter().product();
            let tensor = Tensor::from_data_size(&t.data, &[count], kind(t.dtype))
                .f_reshape(t.shape.as_slice())
                .map_err(|e| ModelError::Checkpoint {
                    path: path.to_path_buf(),
                    field: t.name.clone(),
                    message: e.to_string(),
                })?;
            Ok((t.name, tensor))
        })
        .collect()
}

/// The names torchvision's own loader accepts, as the model names them: DenseNet checkpoints
/// published before torchvision 0.3 call `denselayer1.norm1` `denselayer1.norm.1` (and so for
/// `relu` and `conv`); torchvision renames them when it loads, and so does this.
pub fn torchvision_names(state: StateDict) -> StateDict {
    state
        .into_iter()
        .map(|(name, t)| {
            if !name.contains(".denselayer") {
                return (name, t);
            }
            let mut n = name.clone();
            for part in ["norm", "relu", "conv"] {
                for k in ["1", "2"] {
                    n = n.replace(&format!(".{part}.{k}."), &format!(".{part}{k}."));
                }
            }
            (n, t)
        })
        .collect()
}

/// Copy `state` into `vs`, checking that names and shapes match exactly (BatchNorm's
/// `num_batches_tracked` counters are ignored). On a mismatch nothing is copied and the error
/// lists every missing, unexpected and mis-shaped key.
pub fn load_into(vs: &nn::VarStore, state: &StateDict, path: &Path, model: &str) -> Result<()> {
    let vars = vs.variables();
    let file: BTreeMap<&str, &Tensor> = state.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    for (name, t) in &vars {
        match file.get(name.as_str()) {
            None => missing.push(name.clone()),
            Some(f) if f.size() != t.size() => {
                mismatched.push(format!("{name}: {:?} vs {:?}", f.size(), t.size()))
            }
            _ => {}
        }
    }
    let unexpected: Vec<String> = file
        .keys()
        .filter(|k| !vars.contains_key(**k) && !k.ends_with("num_batches_tracked"))
        .map(|k| k.to_string())
        .collect();
    missing.sort();
    mismatched.sort();
    if !missing.is_empty() || !unexpected.is_empty() || !mismatched.is_empty() {
        return Err(ModelError::Mismatch {
            path: path.to_path_buf(),
            model: model.to_string(),
            missing,
            unexpected,
            mismatched,
        });
    }
    tch::no_grad(|| {
        for (name, mut t) in vars {
            if let Some(f) = file.get(name.as_str()) {
                t.copy_(&f.to_kind(t.kind()).to_device(t.device()));
            }
        }
    });
    Ok(())
}
