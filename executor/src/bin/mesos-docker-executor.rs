//! `mesos-docker-executor`: the same executor under the name a Mesos agent's Docker
//! containerizer starts from its `--launcher_dir` (our stand-in for Mesos's own, used by the
//! real-Mesos test bed); it honours the `--container`, `--sandbox_directory` and
//! `--mapped_directory` flags the agent passes.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    framework_executor::run().await
}
