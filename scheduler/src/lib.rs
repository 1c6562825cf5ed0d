//! `framework`: a Marathon-compatible Mesos framework scheduler.
