//! Consul: the registrar that keeps every running task registered (the Registrator role), and
//! the client both it and the load-balancer mode (`lb.rs`) use.

pub mod client;
pub mod registrar;

pub use client::{Consul, ConsulConfig};
