//! Stands up the AWS resources that host a cluster: a VPC and subnets (or existing ones),
//! security groups with each role's rules, one launch template (with its boot script) and one
//! Auto Scaling Group per role: ZooKeeper, Mesos masters (with the framework), Mesos agents.
//!
//! Pure core: [`cluster`] (the file and its validation), [`desired`] (the desired state),
//! [`userdata`] (boot scripts), [`plan`] (desired vs observed → actions), [`scale`] (editing
//! the file's counts). Thin shell: [`aws`] reads the observed state and executes actions;
//! [`commands`] strings them together for the CLI.

pub mod aws;
pub mod cidr;
pub mod cluster;
pub mod commands;
pub mod desired;
pub mod model;
pub mod plan;
pub mod role;
pub mod scale;
pub mod userdata;

pub use cluster::{Cluster, ConfigError};
pub use plan::{Action, Plan, PlanError};
pub use role::Role;

/// Everything that can go wrong, each saying what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster file could not be read.
    #[error("cannot read cluster file {file}: {source}; check the path")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The cluster file could not be written (scale).
    #[error("cannot write cluster file {file}: {source}; check its permissions")]
    Write {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The cluster file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The cluster file could not be edited.
    #[error(transparent)]
    Scale(#[from] scale::ScaleError),
    /// The file asks for a change AWS cannot make in place.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// No region anywhere.
    #[error("no AWS region: set region in the cluster file, or AWS_REGION, or a region in the AWS profile")]
    NoRegion,
    /// An AWS call failed.
    #[error("{operation} for {resource} failed: {message}\n  fix: {fix}")]
    Aws {
        /// The resource acted on.
        resource: String,
        /// The API operation.
        operation: &'static str,
        /// The SDK's message.
        message: String,
        /// What to do.
        fix: String,
    },
    /// AWS holds something the model cannot make sense of.
    #[error("{resource}: {problem}; {fix}")]
    Observe {
        /// The resource.
        resource: String,
        /// What is odd.
        problem: String,
        /// What to do.
        fix: String,
    },
    /// Instances did not reach the wanted state in time.
    #[error("timed out after {secs} s: {status}; {fix}")]
    WaitTimeout {
        /// The timeout.
        secs: u64,
        /// Where things stood.
        status: String,
        /// What to do.
        fix: String,
    },
}
