//! A small pickle machine over the opcodes `torch.save` emits (protocol 2, and the few
//! protocol-4 ones a newer pickler adds), with torch's persistent ids for storages.

use std::collections::BTreeMap;

use crate::{CheckpointError, Dtype, Site};

/// A pickled value (only what `torch.save` produces). Values other than dicts, strings,
/// integers and tensors are kept only so that the machine can run past them.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits, as its little-endian two's-complement bytes.
    Long(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    /// A storage, or (legacy files from PyTorch < 1.0) a view `offset` elements into one.
    Storage {
        dtype: Dtype,
        key: String,
        offset: i64,
    },
    Tensor(TensorRef),
    Object(Box<Value>, Box<Value>),
    Mark,
}

impl Value {
    /// The number of values in this one (itself included), counted up to `cap`.
    fn weight(&self, cap: usize) -> usize {
        let mut n = 1;
        let add = |v: &Value, n: &mut usize| {
            if *n < cap {
                *n += v.weight(cap - *n);
            }
        };
        match self {
            Value::List(v) | Value::Tuple(v) => v.iter().for_each(|x| add(x, &mut n)),
            Value::Dict(d) => d.iter().for_each(|(k, v)| {
                add(k, &mut n);
                add(v, &mut n);
            }),
            Value::Object(a, b) => {
                add(a, &mut n);
                add(b, &mut n);
            }
            Value::Tensor(t) => n += t.size.len() + t.stride.len(),
            Value::Str(s) => n += s.len() / 64,
            Value::Bytes(b) | Value::Long(b) => n += b.len() / 64,
            _ => {}
        }
        n
    }
}

/// A tensor as the pickle describes it: a view of a storage.
#[derive(Debug, Clone)]
pub(crate) struct TensorRef {
    pub dtype: Dtype,
    pub key: String,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

/// How many values a pickle may copy out of its memo, per byte of pickle (plus a floor).
/// Python shares a memoised value; this machine copies it, so a pickle that appends a list to
/// itself again and again would double its size with every three bytes. No `torch.save`
/// pickle comes near the budget.
const COPY_BUDGET_PER_BYTE: usize = 64;
const COPY_BUDGET_FLOOR: usize = 1 << 20;
/// The deepest nesting of containers read (a state dict nests two or three deep).
const MAX_DEPTH: u32 = 256;

pub(crate) struct Machine<'a> {
    data: &'a [u8],
    pub pos: usize,
    /// The stack, each value with its nesting depth (kept so that no value grows deeper
    /// than [`MAX_DEPTH`]: dropping or copying a deeper one could exhaust the thread's stack).
    stack: Vec<(Value, u32)>,
    memo: BTreeMap<u32, (Value, u32)>,
    site: &'a Site,
    /// Where the pickle is, for errors: the ZIP entry, or `pickle` in a legacy file.
    entry: &'static str,
    /// Every storage a persistent id named, with its element type (a legacy file's
    /// storages are appended in key order and sized by it).
    pub storages: BTreeMap<String, Dtype>,
    /// Values still allowed to be copied out of the memo.
    budget: usize,
}

impl<'a> Machine<'a> {
    pub fn new(data: &'a [u8], site: &'a Site, entry: &'static str) -> Self {
        Machine {
            data,
            pos: 0,
            stack: Vec::new(),
            memo: BTreeMap::new(),
            site,
            entry,
            storages: BTreeMap::new(),
            budget: data
                .len()
                .saturating_mul(COPY_BUDGET_PER_BYTE)
                .max(COPY_BUDGET_FLOOR),
        }
    }

    fn err(&self, message: impl Into<String>) -> CheckpointError {
        self.site
            .invalid(format!("{} offset {}", self.entry, self.pos), message)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CheckpointError> {
        if n > self.data.len() - self.pos {
            return Err(self.err("truncated pickle"));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, CheckpointError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, CheckpointError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, CheckpointError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn str(&mut self, n: usize) -> Result<Value, CheckpointError> {
        Ok(Value::Str(
            String::from_utf8_lossy(self.take(n)?).to_string(),
        ))
    }

    fn line(&mut self) -> Result<String, CheckpointError> {
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

    fn push(&mut self, v: Value, depth: u32) -> Result<(), CheckpointError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!(
                "values nested more than {MAX_DEPTH} deep: not a torch.save file"
            )));
        }
        self.stack.push((v, depth));
        Ok(())
    }

    /// Push a value that holds no other.
    fn leaf(&mut self, v: Value) {
        self.stack.push((v, 0));
    }

    fn pop(&mut self) -> Result<(Value, u32), CheckpointError> {
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    /// The values above the topmost MARK (which is removed), and the deepest of their depths.
    fn pop_mark(&mut self) -> Result<(Vec<Value>, u32), CheckpointError> {
        let Some(i) = self
            .stack
            .iter()
            .rposition(|(v, _)| matches!(v, Value::Mark))
        else {
            return Err(self.err("no MARK on the stack"));
        };
        let items = self.stack.split_off(i + 1);
        self.stack.pop();
        let depth = items.iter().map(|(_, d)| *d).max().unwrap_or(0);
        Ok((items.into_iter().map(|(v, _)| v).collect(), depth))
    }

    /// Put values of depth `depth` into the container on top of the stack.
    fn extend_top(
        &mut self,
        depth: u32,
        op: &str,
        put: impl FnOnce(&mut Value) -> bool,
    ) -> Result<(), CheckpointError> {
        let Some((top, d)) = self.stack.pop() else {
            return Err(self.err("stack underflow"));
        };
        let mut top = top;
        if !put(&mut top) {
            return Err(self.err(format!("{op} on a value of the wrong type")));
        }
        self.push(top, d.max(depth + 1))
    }

    /// Charge a copy of `weight` values to the copy budget.
    fn charge(&mut self, weight: usize) -> Result<(), CheckpointError> {
        if weight > self.budget {
            return Err(self.err(
                "the pickle copies more values out of its memo than its size allows \
                 (a self-referencing structure: not a torch.save file)",
            ));
        }
        self.budget -= weight;
        Ok(())
    }

    fn memo_put(&mut self, k: u32, op: &str) -> Result<(), CheckpointError> {
        let cap = self.budget.saturating_add(1);
        let Some(weight) = self.stack.last().map(|(v, _)| v.weight(cap)) else {
            return Err(self.err(format!("{op} on an empty stack")));
        };
        self.charge(weight)?;
        let v = self.stack.last().cloned().unwrap_or((Value::None, 0));
        self.memo.insert(k, v);
        Ok(())
    }

    fn memo_get(&mut self, k: u32) -> Result<(), CheckpointError> {
        let cap = self.budget.saturating_add(1);
        let Some(weight) = self.memo.get(&k).map(|(v, _)| v.weight(cap)) else {
            return Err(self.err(format!("memo {k} unset")));
        };
        self.charge(weight)?;
        let v = self.memo.get(&k).cloned().unwrap_or((Value::None, 0));
        self.stack.push(v);
        Ok(())
    }

    fn reduce(&self, func: Value, args: Value) -> Result<Value, CheckpointError> {
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
                let ints = |v: &Value| -> Result<Vec<i64>, CheckpointError> {
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
                    Some(Value::Storage {
                        dtype,
                        key,
                        offset: view,
                    }),
                    Some(Value::Int(offset)),
                    Some(size),
                    Some(stride),
                ) = (args.first(), args.get(1), args.get(2), args.get(3))
                else {
                    return Err(self.err("unexpected arguments to _rebuild_tensor_v2"));
                };
                let Some(offset) = view.checked_add(*offset) else {
                    return Err(self.err("tensor offset overflows"));
                };
                Ok(Value::Tensor(TensorRef {
                    dtype: *dtype,
                    key: key.clone(),
                    offset,
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

    /// Run one pickle from `self.pos` to its STOP; `self.pos` is then just past it.
    pub fn run(&mut self) -> Result<Value, CheckpointError> {
        self.stack.clear();
        self.memo.clear();
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'}' => self.leaf(Value::Dict(Vec::new())),
                b']' => self.leaf(Value::List(Vec::new())),
                b')' => self.leaf(Value::Tuple(Vec::new())),
                b'(' => self.leaf(Value::Mark),
                b'N' => self.leaf(Value::None),
                0x88 => self.leaf(Value::Bool(true)),
                0x89 => self.leaf(Value::Bool(false)),
                b'K' => {
                    let v = self.u8()? as i64;
                    self.leaf(Value::Int(v));
                }
                b'M' => {
                    let v = self.u16()? as i64;
                    self.leaf(Value::Int(v));
                }
                b'J' => {
                    let v = self.u32()? as i32 as i64;
                    self.leaf(Value::Int(v));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    if n > 8 {
                        self.leaf(Value::Long(b.to_vec()));
                        continue;
                    }
                    let mut v: i64 = 0;
                    for (i, &x) in b.iter().enumerate() {
                        v |= (x as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.leaf(Value::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.leaf(Value::Float(f64::from_be_bytes(a)));
                }
                b'X' | b'T' => {
                    let n = self.u32()? as usize;
                    let s = self.str(n)?;
                    self.leaf(s);
                }
                0x8c | b'U' => {
                    let n = self.u8()? as usize;
                    let s = self.str(n)?;
                    self.leaf(s);
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.leaf(Value::Bytes(b));
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.leaf(Value::Bytes(b));
                }
                b'q' => {
                    let k = self.u8()? as u32;
                    self.memo_put(k, "BINPUT")?;
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k, "LONG_BINPUT")?;
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    self.memo_put(k, "MEMOIZE")?;
                }
                b'h' => {
                    let k = self.u8()? as u32;
                    self.memo_get(k)?;
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?;
                }
                b't' => {
                    let (items, d) = self.pop_mark()?;
                    self.push(Value::Tuple(items), d + 1)?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(self.err("stack underflow in TUPLEn"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    let d = items.iter().map(|(_, d)| *d).max().unwrap_or(0);
                    let items = items.into_iter().map(|(v, _)| v).collect();
                    self.push(Value::Tuple(items), d + 1)?;
                }
                b'l' => {
                    let (items, d) = self.pop_mark()?;
                    self.push(Value::List(items), d + 1)?;
                }
                b'd' => {
                    let (items, d) = self.pop_mark()?;
                    let mut items = items.into_iter();
                    let mut pairs = Vec::new();
                    while let (Some(k), Some(v)) = (items.next(), items.next()) {
                        pairs.push((k, v));
                    }
                    self.push(Value::Dict(pairs), d + 1)?;
                }
                b'a' => {
                    let (v, d) = self.pop()?;
                    self.extend_top(d, "APPEND", |top| match top {
                        Value::List(l) => {
                            l.push(v);
                            true
                        }
                        _ => false,
                    })?;
                }
                b'e' => {
                    let (items, d) = self.pop_mark()?;
                    self.extend_top(d, "APPENDS", |top| match top {
                        Value::List(l) => {
                            l.extend(items);
                            true
                        }
                        _ => false,
                    })?;
                }
                b's' => {
                    let (v, dv) = self.pop()?;
                    let (k, dk) = self.pop()?;
                    self.extend_top(dv.max(dk), "SETITEM", |top| match top {
                        Value::Dict(d) => {
                            d.push((k, v));
                            true
                        }
                        _ => false,
                    })?;
                }
                b'u' => {
                    let (items, depth) = self.pop_mark()?;
                    self.extend_top(depth, "SETITEMS", |top| match top {
                        Value::Dict(d) => {
                            let mut items = items.into_iter();
                            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                                d.push((k, v));
                            }
                            true
                        }
                        _ => false,
                    })?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.leaf(Value::Global(module, name));
                }
                0x93 => {
                    let (name, _) = self.pop()?;
                    let (module, _) = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.leaf(Value::Global(m, n)),
                        _ => return Err(self.err("STACK_GLOBAL without strings")),
                    }
                }
                b'R' | 0x81 => {
                    // REDUCE (callable, args) and NEWOBJ (class, args).
                    let (args, da) = self.pop()?;
                    let (func, df) = self.pop()?;
                    let v = self.reduce(func, args)?;
                    self.push(v, da.max(df) + 1)?;
                }
                b'b' => {
                    // BUILD: object state (e.g. a state dict's `_metadata`); not needed.
                    self.pop()?;
                }
                b'Q' => {
                    let (pid, _) = self.pop()?;
                    let v = self.persistent(pid)?;
                    self.leaf(v);
                }
                b'.' => return Ok(self.pop()?.0),
                other => {
                    self.pos -= 1;
                    return Err(self.err(format!("unsupported pickle opcode 0x{other:02x}")));
                }
            }
        }
    }

    /// torch's persistent id of a storage: `('storage', torch.FloatStorage, key, location,
    /// numel)`; legacy files add `view_metadata`, `(view_key, offset, size)` for a view.
    fn persistent(&mut self, pid: Value) -> Result<Value, CheckpointError> {
        let Value::Tuple(t) = pid else {
            return Err(self.err("persistent id is not a tuple"));
        };
        match (t.first(), t.get(1), t.get(2)) {
            (Some(Value::Str(tag)), Some(Value::Global(_, ty)), Some(Value::Str(key)))
                if tag == "storage" =>
            {
                let Some(dtype) = Dtype::of_storage(ty) else {
                    return Err(self.err(format!("unsupported storage type {ty}")));
                };
                if let Some(&seen) = self.storages.get(key)
                    && seen != dtype
                {
                    return Err(self.err(format!(
                        "storage {key} named as {} and as {}",
                        seen.storage(),
                        dtype.storage()
                    )));
                }
                self.storages.insert(key.clone(), dtype);
                let offset = match t.get(5) {
                    Some(Value::Tuple(v)) => match v.get(1) {
                        Some(Value::Int(o)) => *o,
                        _ => return Err(self.err("storage view without an offset")),
                    },
                    _ => 0,
                };
                Ok(Value::Storage {
                    dtype,
                    key: key.clone(),
                    offset,
                })
            }
            _ => Err(self.err("persistent id is not a storage")),
        }
    }
}
