//! Offer matching: which offers can host which tasks, by resources, ports and constraints.

pub mod constraint;

pub use constraint::{Constraint, Operator};
