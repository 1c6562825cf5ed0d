//! Compiles our Mesos v1 `.proto` files with protox (pure Rust, no `protoc` binary) into prost
//! types, and bundles the descriptor set so that the JSON mapping can walk message schemas.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/mesos/v1/mesos.proto", "proto/mesos/v1/scheduler/scheduler.proto", "proto/mesos/v1/executor/executor.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut bytes = Vec::new();
    prost::Message::encode(&fds, &mut bytes)?;
    std::fs::write(out.join("mesos_descriptor.bin"), bytes)?;
    prost_build::Config::new().enable_type_names().compile_fds(fds)?;
    Ok(())
}
