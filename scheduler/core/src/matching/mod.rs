//! Offer matching: which offers can host which tasks, by resources, ports and constraints.
//!
//! - [`constraint`]: Marathon constraints, parsed and evaluated against [`Placement`]s;
//! - [`placement`]: where an instance runs (hostname, formatted attributes, fault domain);
//! - [`resources`]: which offered resources a task may use (roles) and scalar fixed point;
//! - [`ports`]: host-port picking from the offered ranges;
//! - [`index`]: placed instances counted per field value, so constraints need not scan them;
//! - [`matcher`]: [`match_offer`] (or [`match_offer_indexed`]), fitting several tasks of one
//!   app into one offer.
//!
//! Everything here is pure and total: no I/O, no clock, no randomness, and no input (NaN
//! scalars, reversed ranges, unknown enum values, hand-built constraints) makes it panic.
//! Callers decide which instances count as placed and what to do with the outcome.

pub mod constraint;
pub mod index;
pub mod matcher;
pub mod offer_flow;
pub mod placement;
pub mod ports;
pub mod resources;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod properties;

pub use constraint::{Constraint, Operator};
pub use index::PlacementIndex;
pub use matcher::{MatchOutcome, Matched, RejectReason, TaskRequest, match_offer, match_offer_indexed};
pub use placement::{Placement, placement_of};
pub use ports::PortRequest;
