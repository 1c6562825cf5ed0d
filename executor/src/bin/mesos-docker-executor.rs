//! `mesos-docker-executor`: the same executor under the name a Mesos agent's Docker
//! containerizer starts from its `--launcher_dir` (our stand-in for Mesos's own, used by the
//! real-Mesos test bed); it honours the `--container`, `--sandbox_directory` and
//! `--mapped_directory` flags the agent passes, and like Mesos's own it speaks to the agent in
//! libprocess messages, which is what lets the agent recover it after a restart.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    framework_executor::run_with(framework_executor::Driver::Libprocess).await
}
