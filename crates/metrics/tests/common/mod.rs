//! Calling Brain-Score's reference (crosscheck/reference.py) from tests: shared with the
//! other crates' cross-checks in `ventral-testkit`.
#![allow(unused_imports)]

pub use ventral_testkit::crosscheck::*;
