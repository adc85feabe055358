//! The stage graph: edges from inputs, cycle detection, topological order, selection.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{DagError, Result};
use crate::pipeline::{InputRef, Pipeline};

/// The dependency graph of a pipeline's stages (indices into `Pipeline::stages`).
#[derive(Clone, Debug)]
pub struct Graph {
    /// For each stage, the stages it reads from (sorted, unique).
    pub deps: Vec<Vec<usize>>,
    /// For each stage, the stages that read from it.
    pub dependents: Vec<Vec<usize>>,
    /// Stages in an order where every stage comes after its dependencies; ties keep file order.
    pub order: Vec<usize>,
    index: BTreeMap<String, usize>,
}

impl Graph {
    /// Build the graph, refusing cycles (the message names the cycle, the file and a line).
    pub fn build(p: &Pipeline) -> Result<Graph> {
        let index: BTreeMap<String, usize> = p
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        let n = p.stages.len();
        let mut deps = vec![Vec::new(); n];
        let mut dependents = vec![Vec::new(); n];
        for (i, s) in p.stages.iter().enumerate() {
            let mut set = BTreeSet::new();
            for refs in s.inputs.values() {
                for r in refs {
                    if let InputRef::Stage { stage, .. } = r {
                        let j = *index.get(stage).ok_or_else(|| DagError::Pipeline {
                            file: p.file.clone(),
                            line: s.inputs_line,
                            stage: Some(s.name.clone()),
                            message: format!("unknown stage `{stage}`"),
                        })?;
                        set.insert(j);
                    }
                }
            }
            deps[i] = set.into_iter().collect();
            for &j in &deps[i] {
                dependents[j].push(i);
            }
        }
        // Kahn's algorithm, always taking the ready stage that comes first in the file.
        let mut indeg: Vec<usize> = deps.iter().map(Vec::len).collect();
        let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &d in &dependents[i] {
                indeg[d] -= 1;
                if indeg[d] == 0 {
                    ready.insert(d);
                }
            }
        }
        if order.len() < n {
            let cycle = find_cycle(&deps, &indeg);
            let first = cycle[0];
            let names: Vec<&str> = cycle
                .iter()
                .chain(std::iter::once(&first))
                .map(|&i| p.stages[i].name.as_str())
                .collect();
            return Err(DagError::Pipeline {
                file: p.file.clone(),
                line: p.stages[first].inputs_line,
                stage: Some(p.stages[first].name.clone()),
                message: format!("the stages form a cycle: {}", names.join(" -> ")),
            });
        }
        Ok(Graph {
            deps,
            dependents,
            order,
            index,
        })
    }

    /// The index of stage `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// `targets` and everything they depend on, transitively.
    pub fn upstream_closure(&self, targets: &[usize]) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<usize> = targets.to_vec();
        while let Some(i) = stack.pop() {
            if seen.insert(i) {
                stack.extend(&self.deps[i]);
            }
        }
        seen
    }
}

/// A cycle among the stages left with nonzero in-degree, as stage indices.
fn find_cycle(deps: &[Vec<usize>], indeg: &[usize]) -> Vec<usize> {
    let start = (0..deps.len()).find(|&i| indeg[i] > 0).unwrap_or(0);
    // Walk dependencies that are themselves in the remaining subgraph until a repeat.
    let mut path = vec![start];
    let mut pos: BTreeMap<usize, usize> = BTreeMap::from([(start, 0)]);
    let mut cur = start;
    loop {
        let Some(&next) = deps[cur].iter().find(|&&d| indeg[d] > 0) else {
            return path;
        };
        if let Some(&p) = pos.get(&next) {
            let mut cyc = path[p..].to_vec();
            cyc.reverse();
            return cyc;
        }
        pos.insert(next, path.len());
        path.push(next);
        cur = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn order_and_cycle() {
        let p = Pipeline::parse(
            Path::new("p.toml"),
            r#"
[stages.c]
kind = "cmd"
inputs = { a = "stage:a", b = "stage:b" }
[stages.b]
kind = "cmd"
inputs = { a = "stage:a" }
[stages.a]
kind = "cmd"
"#,
            None,
        )
        .unwrap();
        let g = Graph::build(&p).unwrap();
        let names: Vec<&str> = g.order.iter().map(|&i| p.stages[i].name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let c = g.index_of("c").unwrap();
        assert_eq!(g.upstream_closure(&[c]).len(), 3);

        let p = Pipeline::parse(
            Path::new("p.toml"),
            "[stages.x]\nkind = \"cmd\"\ninputs = { y = \"stage:y\" }\n[stages.y]\nkind = \"cmd\"\ninputs = { x = \"stage:x\" }\n",
            None,
        )
        .unwrap();
        let e = Graph::build(&p).unwrap_err().to_string();
        assert!(
            e.contains("cycle: x -> y -> x") || e.contains("cycle: y -> x -> y"),
            "{e}"
        );
        assert!(e.starts_with("p.toml:"), "{e}");
    }
}
