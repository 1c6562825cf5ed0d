//! The pure core of `framework`: plain functions over plain data, no I/O, no async runtime,
//! no clock (callers pass the time in). The async shells in the `framework` crate translate
//! between the outside world (HTTP, Mesos, storage) and these types.
//!
//! - [`calls`]: typed constructors of the Mesos calls the scheduler makes;
//! - [`ids`]: app path ids, task and instance ids, deployment ids, timestamps;
//! - [`app`]: the Marathon app definition, its defaults, normalization and validation;
//! - [`matching`]: offer matching by resources, ports and constraints;
//! - [`deploy`]: deployment planning, rolling-restart arithmetic and launch backoff;
//! - [`keys`]: the state store's key layout;
//! - [`instance`]: instance conditions and their transitions from Mesos task states;
//! - [`readiness`]: where a readiness check polls;
//! - [`scheduler`]: the scheduler's state and its decisions, taken one input at a time through
//!   [`scheduler::Scheduler::step`];
//! - [`spec`]: app definitions as Mesos `TaskInfo`s, planner input and version stamps;
//! - [`state`]: the records the scheduler keeps (instances, deployments, task counts) and the
//!   read-only snapshot the API serves from;
//! - [`tree`]: the group tree: what group updates, deletions and rollbacks change.

pub mod app;
pub mod calls;
pub mod deploy;
pub mod ids;
pub mod instance;
pub mod keys;
pub mod matching;
pub mod readiness;
pub mod reconcile;
pub mod scheduler;
pub mod service_ports;
pub mod spec;
pub mod state;
pub mod tree;
