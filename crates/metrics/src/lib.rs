//! `ventral-metrics`: Brain-Score's metrics, numerically matched to the reference.
//!
//! * [`rng`]: numpy's legacy `RandomState` (MT19937), bit-exact: `permutation`, `shuffle`,
//!   `random_sample`, `choice` without replacement.
//! * [`splits`]: sklearn's `ShuffleSplit` and `StratifiedShuffleSplit` (with
//!   `_approximate_mode`), index-exact.
//!
//! **Architecture invariant:** pure computation on in-memory arrays; no I/O, no libtorch,
//! no DataFusion. Every reduction that must be reproducible runs in a fixed order, so results
//! do not depend on the thread count.

pub mod error;
pub mod i2n;
pub mod logistic;
pub mod neural;
pub mod norm;
pub mod ost;
pub mod pca;
pub mod pls;
pub mod rng;
pub mod splits;
pub mod stats;
pub mod tf_readout;

pub use error::{MetricError, Result};
