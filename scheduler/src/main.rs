//! The `framework` binary: a Marathon-compatible Mesos framework.

use clap::Parser as _;

/// mimalloc instead of the C library's allocator: with tokio's worker and blocking threads each
/// using their own glibc arena, memory freed after a burst of launches stayed with the process
/// (RSS measured about twice the live heap in the scale benchmark). Built with `no_thp`: with
/// mimalloc asking for transparent huge pages, the kernel zeroed and kept whole 2 MiB pages
/// (over 100 MiB of them at full scale), which cost both memory and CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    framework::tls::install_provider();
    let flags = framework::config::Flags::parse();
    match flags.command.clone() {
        Some(framework::config::Mode::Lb(lb)) => framework::lb::run(lb).await,
        None => framework::run(flags).await,
    }
}
