//! The Mesos v1 wire protocol, as our scheduler, executor and local cluster speak it.
//!
//! - [`v1`]: prost types generated from our own `.proto` files (`proto/mesos/v1/...`), whose
//!   message names, field names and field numbers are the official Mesos v1 ones;
//! - [`json`]: the JSON mapping Mesos uses (snake_case names, enum names, base64 bytes, declared
//!   defaults on output); every JSON conversion goes through it;
//! - [`codec`]: JSON or protobuf, chosen by media type, with Mesos's required-field checks;
//! - [`recordio`] and [`stream`]: the framing of event streams, sans-IO and over a byte stream.

pub mod codec;
pub mod descriptor;
pub mod duration;
pub mod json;
pub mod recordio;
pub mod stream;

/// Generated Mesos v1 types (package `mesos.v1` and its sub-packages).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.rs"));

    /// Package `mesos.v1.scheduler`: the scheduler API's `Call` and `Event`.
    pub mod scheduler {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.scheduler.rs"));
    }

    /// Package `mesos.v1.executor`: the executor API's `Call` and `Event`.
    pub mod executor {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.executor.rs"));
    }
}

pub use codec::{DecodeError, Encoding};
pub use json::JsonError;
