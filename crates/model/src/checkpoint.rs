//! `torch.save` checkpoints read without Python, and weights in and out of a model.
//!
//! A `torch.save` file (PyTorch ≥ 1.6) is a ZIP: `<name>/data.pkl` is a pickle (protocol 2)
//! of the saved object in which every tensor is a call to `torch._utils._rebuild_tensor_v2`
//! on a *persistent id* `('storage', torch.FloatStorage, key, location, numel)`; the storage's
//! bytes are the entry `<name>/data/<key>` (little-endian). Official CORnet checkpoints hold
//! `{'epoch', 'state_dict', 'optimizer'}` with keys prefixed `module.` (DataParallel).
//!
//! [`read_checkpoint`] runs a small pickle machine over the opcodes `torch.save` emits and
//! returns the state dict (a bare state dict, or the `state_dict` / `model` entry of a
//! checkpoint dict), `module.` prefixes removed. [`load_into`] copies it into a model's
//! variables after checking names and shapes, listing every missing, unexpected and
//! mis-shaped key on failure.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use tch::{Kind, Tensor, nn};

use crate::error::{ModelError, Result, io};

/// A pickled value (only what `torch.save` produces). Values other than dicts, strings,
/// integers and tensors are kept only so that the machine can run past them.
#[derive(Debug, Clone)]
#[allow(dead_code)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    Storage { kind: Kind, key: String },
    Tensor(TensorRef),
    Object(Box<Value>, Box<Value>),
    Mark,
}

#[derive(Debug, Clone)]
struct TensorRef {
    kind: Kind,
    key: String,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

fn storage_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: BTreeMap<u32, Value>,
    path: &'a Path,
}

impl<'a> Machine<'a> {
    fn err(&self, message: impl Into<String>) -> ModelError {
        ModelError::Checkpoint {
            path: self.path.to_path_buf(),
            field: format!("data.pkl offset {}", self.pos),
            message: message.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.pos + n > self.data.len() {
            return Err(self.err("truncated pickle"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<String> {
        let start = self.pos;
        while self.pos < self.data.len() && self.data[self.pos] != b'\n' {
            self.pos += 1;
        }
        if self.pos >= self.data.len() {
            return Err(self.err("unterminated line"));
        }
        let s = String::from_utf8_lossy(&self.data[start..self.pos]).to_string();
        self.pos += 1;
        Ok(s)
    }

    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let Some(i) = self.stack.iter().rposition(|v| matches!(v, Value::Mark)) else {
            return Err(self.err("no MARK on the stack"));
        };
        let items = self.stack.split_off(i + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top_mut(&mut self) -> Result<&mut Value> {
        let pos = self.pos;
        let path = self.path.to_path_buf();
        self.stack.last_mut().ok_or(ModelError::Checkpoint {
            path,
            field: format!("data.pkl offset {pos}"),
            message: "stack underflow".into(),
        })
    }

    fn reduce(&self, func: Value, args: Value) -> Result<Value> {
        let Value::Global(module, name) = &func else {
            return Ok(Value::Object(Box::new(func), Box::new(args)));
        };
        let args = match args {
            Value::Tuple(a) => a,
            other => vec![other],
        };
        match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") => Ok(Value::Dict(Vec::new())),
            ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
                let ints = |v: &Value| -> Result<Vec<i64>> {
                    match v {
                        Value::Tuple(x) | Value::List(x) => x
                            .iter()
                            .map(|i| match i {
                                Value::Int(i) => Ok(*i),
                                _ => Err(self.err("tensor size/stride is not integers")),
                            })
                            .collect(),
                        _ => Err(self.err("tensor size/stride is not a tuple")),
                    }
                };
                let (
                    Some(Value::Storage { kind, key }),
                    Some(Value::Int(offset)),
                    Some(size),
                    Some(stride),
                ) = (args.first(), args.get(1), args.get(2), args.get(3))
                else {
                    return Err(self.err("unexpected arguments to _rebuild_tensor_v2"));
                };
                Ok(Value::Tensor(TensorRef {
                    kind: *kind,
                    key: key.clone(),
                    offset: *offset,
                    size: ints(size)?,
                    stride: ints(stride)?,
                }))
            }
            ("torch._utils", "_rebuild_parameter")
            | ("torch._utils", "_rebuild_parameter_with_state") => args
                .into_iter()
                .next()
                .ok_or_else(|| self.err("empty _rebuild_parameter")),
            _ => Ok(Value::Object(Box::new(func), Box::new(Value::Tuple(args)))),
        }
    }

    fn run(mut self) -> Result<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b'(' => self.stack.push(Value::Mark),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'K' => {
                    let v = self.u8()? as i64;
                    self.stack.push(Value::Int(v));
                }
                b'M' => {
                    let v = self.u16()? as i64;
                    self.stack.push(Value::Int(v));
                }
                b'J' => {
                    let v = self.u32()? as i32 as i64;
                    self.stack.push(Value::Int(v));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    if n > 8 {
                        return Err(self.err("integer wider than 64 bits"));
                    }
                    let mut v: i64 = 0;
                    for (i, &x) in b.iter().enumerate() {
                        v |= (x as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.stack.push(Value::Float(f64::from_be_bytes(a)));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).to_string();
                    self.stack.push(Value::Str(s));
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).to_string();
                    self.stack.push(Value::Str(s));
                }
                b'T' => {
                    let n = self.u32()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).to_string();
                    self.stack.push(Value::Str(s));
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).to_string();
                    self.stack.push(Value::Str(s));
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'q' => {
                    let k = self.u8()? as u32;
                    let v = self
                        .stack
                        .last()
                        .cloned()
                        .ok_or_else(|| self.err("BINPUT on empty stack"))?;
                    self.memo.insert(k, v);
                }
                b'r' => {
                    let k = self.u32()?;
                    let v = self
                        .stack
                        .last()
                        .cloned()
                        .ok_or_else(|| self.err("LONG_BINPUT on empty stack"))?;
                    self.memo.insert(k, v);
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    let v = self
                        .stack
                        .last()
                        .cloned()
                        .ok_or_else(|| self.err("MEMOIZE on empty stack"))?;
                    self.memo.insert(k, v);
                }
                b'h' => {
                    let k = self.u8()? as u32;
                    let v = self
                        .memo
                        .get(&k)
                        .cloned()
                        .ok_or_else(|| self.err(format!("memo {k} unset")))?;
                    self.stack.push(v);
                }
                b'j' => {
                    let k = self.u32()?;
                    let v = self
                        .memo
                        .get(&k)
                        .cloned()
                        .ok_or_else(|| self.err(format!("memo {k} unset")))?;
                    self.stack.push(v);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(self.err("stack underflow in TUPLEn"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = items
                        .chunks(2)
                        .filter(|c| c.len() == 2)
                        .map(|c| (c[0].clone(), c[1].clone()))
                        .collect();
                    self.stack.push(Value::Dict(pairs));
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top_mut()? {
                        Value::List(l) => l.push(v),
                        _ => return Err(self.err("APPEND to a non-list")),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top_mut()? {
                        Value::List(l) => l.extend(items),
                        _ => return Err(self.err("APPENDS to a non-list")),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top_mut()? {
                        Value::Dict(d) => d.push((k, v)),
                        _ => return Err(self.err("SETITEM on a non-dict")),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let top = self.top_mut()?;
                    let Value::Dict(d) = top else {
                        return Err(self.err("SETITEMS on a non-dict"));
                    };
                    for c in items.chunks(2) {
                        if let [k, v] = c {
                            d.push((k.clone(), v.clone()));
                        }
                    }
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(module, name));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(m, n)),
                        _ => return Err(self.err("STACK_GLOBAL without strings")),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let v = self.reduce(func, args)?;
                    self.stack.push(v);
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = self.reduce(cls, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // BUILD: object state (e.g. a state dict's `_metadata`); not needed.
                    self.pop()?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let Value::Tuple(t) = pid else {
                        return Err(self.err("persistent id is not a tuple"));
                    };
                    match (t.first(), t.get(1), t.get(2)) {
                        (
                            Some(Value::Str(tag)),
                            Some(Value::Global(_, ty)),
                            Some(Value::Str(key)),
                        ) if tag == "storage" => {
                            let Some(kind) = storage_kind(ty) else {
                                return Err(self.err(format!("unsupported storage type {ty}")));
                            };
                            self.stack.push(Value::Storage {
                                kind,
                                key: key.clone(),
                            });
                        }
                        _ => return Err(self.err("persistent id is not a storage")),
                    }
                }
                b'.' => return self.pop(),
                other => {
                    self.pos -= 1;
                    return Err(self.err(format!("unsupported pickle opcode 0x{other:02x}")));
                }
            }
        }
    }
}

fn kind_size(kind: Kind) -> usize {
    match kind {
        Kind::Double | Kind::Int64 => 8,
        Kind::Float | Kind::Int => 4,
        Kind::Half | Kind::BFloat16 | Kind::Int16 => 2,
        _ => 1,
    }
}

/// A state dict read from a file: names (without `module.`) to tensors, in file order.
pub type StateDict = Vec<(String, Tensor)>;

/// Read the state dict of a `torch.save` checkpoint.
pub fn read_checkpoint(path: &Path) -> Result<StateDict> {
    let f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut zip = zip::ZipArchive::new(f).map_err(|e| ModelError::Checkpoint {
        path: path.to_path_buf(),
        field: "archive".into(),
        message: format!(
            "not a torch.save ZIP ({e}); checkpoints from PyTorch < 1.6 (legacy tar/pickle) are \
             not supported: re-save them with a current torch"
        ),
    })?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|s| s.to_string()))
        .collect();
    let Some(pkl) = names
        .iter()
        .find(|n| n.ends_with("/data.pkl") || *n == "data.pkl")
    else {
        return Err(ModelError::Checkpoint {
            path: path.to_path_buf(),
            field: "data.pkl".into(),
            message: "no data.pkl in the archive".into(),
        });
    };
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let mut bytes = Vec::new();
    zip.by_name(pkl)
        .and_then(|mut e| e.read_to_end(&mut bytes).map_err(Into::into))
        .map_err(|e| ModelError::Checkpoint {
            path: path.to_path_buf(),
            field: pkl.clone(),
            message: e.to_string(),
        })?;
    let root = Machine {
        data: &bytes,
        pos: 0,
        stack: Vec::new(),
        memo: BTreeMap::new(),
        path,
    }
    .run()?;
    // A checkpoint dict holds the state dict under `state_dict` (or `model`).
    let dict = match &root {
        Value::Dict(d) => d.clone(),
        _ => {
            return Err(ModelError::Checkpoint {
                path: path.to_path_buf(),
                field: "data.pkl".into(),
                message: "the saved object is not a dict".into(),
            });
        }
    };
    let inner = dict.iter().find_map(|(k, v)| match (k, v) {
        (Value::Str(k), Value::Dict(d)) if k == "state_dict" || k == "model" => Some(d.clone()),
        _ => None,
    });
    let state = inner.unwrap_or(dict);
    let mut out = Vec::new();
    for (k, v) in state {
        let (Value::Str(name), Value::Tensor(t)) = (k, v) else {
            continue;
        };
        let entry = format!("{prefix}data/{}", t.key);
        let mut raw = Vec::new();
        zip.by_name(&entry)
            .and_then(|mut e| e.read_to_end(&mut raw).map_err(Into::into))
            .map_err(|e| ModelError::Checkpoint {
                path: path.to_path_buf(),
                field: format!("{name} ({entry})"),
                message: e.to_string(),
            })?;
        let esize = kind_size(t.kind);
        let numel = raw.len() / esize;
        let needed = if t.size.is_empty() {
            t.offset + 1
        } else {
            t.offset
                + t.size
                    .iter()
                    .zip(&t.stride)
                    .map(|(s, st)| (s - 1).max(0) * st)
                    .sum::<i64>()
                + 1
        };
        if (numel as i64) < needed && t.size.iter().all(|&s| s > 0) {
            return Err(ModelError::Checkpoint {
                path: path.to_path_buf(),
                field: format!("{name} ({entry})"),
                message: format!("storage holds {numel} elements, the tensor needs {needed}"),
            });
        }
        let storage = Tensor::from_data_size(&raw, &[numel as i64], t.kind);
        let tensor = storage
            .as_strided(t.size.as_slice(), t.stride.as_slice(), Some(t.offset))
            .contiguous();
        let name = name.strip_prefix("module.").unwrap_or(&name).to_string();
        out.push((name, tensor));
    }
    if out.is_empty() {
        return Err(ModelError::Checkpoint {
            path: path.to_path_buf(),
            field: "state_dict".into(),
            message: "no tensors found".into(),
        });
    }
    Ok(out)
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
