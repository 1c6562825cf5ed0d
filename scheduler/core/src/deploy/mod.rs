//! Deployment planning, rolling-restart arithmetic and launch backoff, as pure functions.
//!
//! - [`plan`](mod@plan): from an original to a target set of apps, the ordered [`Step`]s of
//!   [`Action`]s (Marathon's `DeploymentPlan.apply`), and the conflicts between deployments;
//! - [`scale`] and [`restart`]: for the action running on one app, what to do next given a
//!   [`view`] of its instances — a [`Decision`] to kill some, launch some, or report done;
//! - [`backoff`]: the per-app launch delay after failures.
//!
//! The decisions hold no state: the shell calls them again after every change (status update,
//! health result, kill, launch) with a fresh view, and they are idempotent on the view that
//! results from applying them. Nothing here reads a clock, does I/O or panics.

pub mod backoff;
pub mod plan;
pub mod restart;
pub mod scale;
pub mod view;

#[cfg(test)]
mod simulation;

pub use backoff::{Backoff, BackoffPolicy, advances_backoff, increases_backoff};
pub use plan::{Action, PlanError, PlannedApp, Step, affected_apps, conflicts, plan};
pub use restart::{RestartBounds, old_instances, restart_bounds, restart_decision};
pub use scale::{scale_decision, stop_decision};
pub use view::{Decision, InstanceView, KillSelection};
