//! The records the scheduler keeps (moved to `framework-core`; re-exported for the shells).

pub use framework_core::state::*;
