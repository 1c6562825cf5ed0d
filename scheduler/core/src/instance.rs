//! Instance conditions.
