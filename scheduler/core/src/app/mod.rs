//! The Marathon app definition (API 1.6–1.10): the data, Marathon's defaults, reading request
//! bodies with Marathon's error classes, normalization of deprecated forms, validation, partial
//! updates, change classification, groups and the task environment.
//!
//! - [`definition`]: [`AppDefinition`] and its parts, with the JSON Marathon 1.10 writes;
//! - `read` (private): JSON → [`AppDefinition`] with play-json's error keys and paths;
//! - [`normalize`](mod@normalize): deprecated fields → canonical form, network-dependent defaults;
//! - [`validate`](mod@validate): every applicable rule of Marathon's `AppValidation`;
//! - [`parse`]: the request pipeline ([`parse_app`], [`apply_patch`], rollback bodies);
//! - [`error`]: [`AppError`] (400 syntax, 422 shape, 422 rules) and [`Violation`];
//! - [`change`]: [`AppDefinition::config_key`], restart versus scale-only;
//! - [`group`]: [`GroupDefinition`] and group request bodies;
//! - [`env`]: [`task_env`], the variables a task is started with.
//!
//! Everything here is pure: no I/O, no clock (versions are set by the caller), no randomness,
//! and no input makes it panic (property-tested on arbitrary bytes and JSON).

pub mod change;
pub mod definition;
pub mod env;
pub mod error;
pub mod group;
mod jvm;
pub mod normalize;
pub mod parse;
mod read;
pub mod validate;

pub use definition::{
    AppDefinition, Artifact, CommandCheck, Container, ContainerType, DockerContainer, DockerNetwork, DockerParameter, EnvValue,
    HealthCheck, HealthCheckProtocol, HttpScheme, IpProtocol, KillSelection, Network, NetworkMode, PortDefinition, PortMapping, Protocol,
    PullConfig, ReadMode, ReadinessCheck, SecretDef, UnreachableStrategy, UpgradeStrategy, VersionInfo, Volume,
};
pub use env::task_env;
pub use error::{AppError, Violation};
pub use group::{GroupDefinition, GroupRequest, parse_group, parse_group_request};
pub use normalize::normalize;
pub use parse::{VERSION_ONLY, apply_patch, check_version_rule, is_version_only, parse_app};
pub use validate::validate;
