//! What the two executables of this package share: the `ventral` command line (which never
//! loads libtorch) and the `ventral-torch` model worker it hands model work to.

pub mod model_args;
