//! App definitions as Mesos tasks (moved to `framework-core`; re-exported for the shells).

pub use framework_core::spec::*;
