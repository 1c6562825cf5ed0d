//! The `framework` binary.
fn main() {}
