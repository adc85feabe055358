//! sklearn's `ShuffleSplit` and `StratifiedShuffleSplit`, index-exact (sklearn 1.5).

use crate::error::{Result, invalid};
use crate::rng::RandomState;

/// A size given as a fraction of the samples or as a count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Size {
    /// A fraction in (0, 1).
    Fraction(f64),
    /// A number of samples.
    Count(usize),
}

/// One split: train and test indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// Training indices, in sklearn's order.
    pub train: Vec<usize>,
    /// Test indices, in sklearn's order.
    pub test: Vec<usize>,
}

/// sklearn's `_validate_shuffle_split`: (n_train, n_test).
pub fn validate_shuffle_split(
    n: usize,
    test: Option<Size>,
    train: Option<Size>,
    default_test: f64,
) -> Result<(usize, usize)> {
    let test = if test.is_none() && train.is_none() {
        Some(Size::Fraction(default_test))
    } else {
        test
    };
    let check = |s: Option<Size>, what: &str| -> Result<()> {
        match s {
            Some(Size::Fraction(f)) if !(f > 0.0 && f < 1.0) => {
                invalid(format!("{what}_size={f} should be in (0, 1)"))
            }
            Some(Size::Count(c)) if c == 0 || c >= n => {
                invalid(format!("{what}_size={c} should be in 1..{n}"))
            }
            _ => Ok(()),
        }
    };
    check(test, "test")?;
    check(train, "train")?;
    let n_test = match test {
        Some(Size::Fraction(f)) => Some((f * n as f64).ceil()),
        Some(Size::Count(c)) => Some(c as f64),
        None => None,
    };
    let n_train = match train {
        Some(Size::Fraction(f)) => Some((f * n as f64).floor()),
        Some(Size::Count(c)) => Some(c as f64),
        None => None,
    };
    let (n_train, n_test) = match (n_train, n_test) {
        (None, Some(t)) => (n as f64 - t, t),
        (Some(tr), None) => (tr, n as f64 - tr),
        (Some(tr), Some(t)) => (tr, t),
        (None, None) => unreachable!("a default test size is set above"),
    };
    if n_train + n_test > n as f64 {
        return invalid(format!(
            "train ({n_train}) + test ({n_test}) exceeds the {n} samples"
        ));
    }
    let (n_train, n_test) = (n_train as usize, n_test as usize);
    if n_train == 0 {
        return invalid(format!(
            "with {n} samples and these sizes the train set would be empty"
        ));
    }
    Ok((n_train, n_test))
}

/// `ShuffleSplit(n_splits, test_size, train_size, random_state=seed).split(range(n))`.
pub fn shuffle_split(
    n: usize,
    n_splits: usize,
    test: Option<Size>,
    train: Option<Size>,
    seed: u32,
) -> Result<Vec<Split>> {
    let (n_train, n_test) = validate_shuffle_split(n, test, train, 0.1)?;
    let mut rng = RandomState::new(seed);
    Ok((0..n_splits)
        .map(|_| {
            let p = rng.permutation(n);
            Split {
                test: p[..n_test].to_vec(),
                train: p[n_test..n_test + n_train].to_vec(),
            }
        })
        .collect())
}

/// sklearn's `_approximate_mode`: draw `n_draws` from classes of `counts`, as close to the
/// class proportions as possible, breaking ties at random with `rng`.
pub fn approximate_mode(counts: &[usize], n_draws: usize, rng: &mut RandomState) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    let continuous: Vec<f64> = counts
        .iter()
        .map(|&c| c as f64 / total as f64 * n_draws as f64)
        .collect();
    let mut floored: Vec<f64> = continuous.iter().map(|c| c.floor()).collect();
    let mut need = (n_draws as f64 - floored.iter().sum::<f64>()) as i64;
    if need > 0 {
        let remainder: Vec<f64> = continuous
            .iter()
            .zip(&floored)
            .map(|(c, f)| c - f)
            .collect();
        let mut values = remainder.clone();
        values.sort_by(|a, b| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal));
        values.dedup();
        for v in values {
            let inds: Vec<usize> = remainder
                .iter()
                .enumerate()
                .filter(|(_, r)| **r == v)
                .map(|(i, _)| i)
                .collect();
            let add_now = (inds.len() as i64).min(need) as usize;
            for i in rng.choice_without_replacement(&inds, add_now) {
                floored[i] += 1.0;
            }
            need -= add_now as i64;
            if need == 0 {
                break;
            }
        }
    }
    floored.into_iter().map(|f| f as usize).collect()
}

/// `StratifiedShuffleSplit(n_splits, test_size, train_size, random_state=seed).split(X, y)`
/// where `y[i]` is the class of sample `i` (any ordered labels).
pub fn stratified_shuffle_split<L: Ord + Clone>(
    y: &[L],
    n_splits: usize,
    test: Option<Size>,
    train: Option<Size>,
    seed: u32,
) -> Result<Vec<Split>> {
    let n = y.len();
    let (n_train, n_test) = validate_shuffle_split(n, test, train, 0.1)?;
    // np.unique(y, return_inverse=True): classes sorted.
    let mut classes: Vec<L> = y.to_vec();
    classes.sort();
    classes.dedup();
    let inverse: Vec<usize> = y
        .iter()
        .map(|l| classes.binary_search(l).unwrap_or(0))
        .collect();
    let n_classes = classes.len();
    let mut counts = vec![0usize; n_classes];
    for &c in &inverse {
        counts[c] += 1;
    }
    if let Some((i, _)) = counts.iter().enumerate().find(|(_, c)| **c < 2) {
        return invalid(format!(
            "the least populated class (index {i} of {n_classes} in sorted order) has only 1 member; stratified splits need at least 2 per class"
        ));
    }
    if n_train < n_classes {
        return invalid(format!(
            "the train size {n_train} is smaller than the number of classes {n_classes}"
        ));
    }
    if n_test < n_classes {
        return invalid(format!(
            "the test size {n_test} is smaller than the number of classes {n_classes}"
        ));
    }
    // np.split(np.argsort(inverse, kind="mergesort"), cumsum(counts)[:-1]): stable.
    let mut class_indices: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &c) in inverse.iter().enumerate() {
        class_indices[c].push(i);
    }
    let mut rng = RandomState::new(seed);
    let mut out = Vec::with_capacity(n_splits);
    for _ in 0..n_splits {
        let n_i = approximate_mode(&counts, n_train, &mut rng);
        let remaining: Vec<usize> = counts.iter().zip(&n_i).map(|(c, k)| c - k).collect();
        let t_i = approximate_mode(&remaining, n_test, &mut rng);
        let mut train = Vec::with_capacity(n_train);
        let mut test = Vec::with_capacity(n_test);
        for c in 0..n_classes {
            let perm = rng.permutation(counts[c]);
            let members: Vec<usize> = perm.iter().map(|&p| class_indices[c][p]).collect();
            train.extend_from_slice(&members[..n_i[c]]);
            test.extend_from_slice(&members[n_i[c]..n_i[c] + t_i[c]]);
        }
        let train = rng.permuted(&train);
        let test = rng.permuted(&test);
        out.push(Split { train, test });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_sklearn() {
        assert_eq!(
            validate_shuffle_split(2560, None, Some(Size::Fraction(0.9)), 0.1).unwrap(),
            (2304, 256)
        );
        assert_eq!(
            validate_shuffle_split(10, Some(Size::Fraction(0.25)), None, 0.1).unwrap(),
            (7, 3)
        );
        assert_eq!(
            validate_shuffle_split(50, None, Some(Size::Fraction(0.5)), 0.1).unwrap(),
            (25, 25)
        );
        assert!(validate_shuffle_split(10, Some(Size::Count(10)), None, 0.1).is_err());
    }

    #[test]
    fn stratified_refuses_singleton_class() {
        let e = stratified_shuffle_split(&["a", "a", "b"], 2, None, Some(Size::Fraction(0.5)), 1)
            .unwrap_err();
        assert!(e.to_string().contains("only 1 member"));
    }
}
