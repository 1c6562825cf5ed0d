//! `framework-provisioner`: plan, apply, destroy and scale a cluster's AWS Auto Scaling Groups
//! from a cluster file.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use provisioner::Role;
use provisioner::aws::Connection;
use provisioner::commands::{self, Options};

/// Stands up the AWS Auto Scaling Groups of a framework cluster (ZooKeeper, Mesos masters with
/// the framework, Mesos agents) from a declarative cluster file. Credentials come from the
/// standard AWS chain (environment, profile, instance role); the region from the file or that chain.
#[derive(Debug, Parser)]
#[command(name = "framework-provisioner", version)]
struct Cli {
    /// Send every AWS call to this endpoint (moto, LocalStack); the SDK also reads AWS_ENDPOINT_URL.
    #[arg(long = "endpoint-url", global = true)]
    endpoint_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print what apply would create, update and delete.
    Plan {
        /// The cluster file (TOML).
        file: PathBuf,
    },
    /// Make AWS match the file, then wait until every group's instances are InService.
    Apply {
        /// The cluster file (TOML).
        file: PathBuf,
        /// Seconds to wait for instances before failing.
        #[arg(long = "wait-timeout", default_value_t = 900)]
        wait_timeout: u64,
    },
    /// Delete every resource tagged for the file's cluster (never existing VPCs or subnets).
    Destroy {
        /// The cluster file (TOML).
        file: PathBuf,
        /// Seconds to wait for groups to terminate their instances.
        #[arg(long = "wait-timeout", default_value_t = 900)]
        wait_timeout: u64,
    },
    /// Set a role's count in the file (zookeeper, masters or agents) and apply it.
    Scale {
        /// The cluster file (TOML); its count is rewritten in place.
        file: PathBuf,
        /// zookeeper, masters or agents.
        role: String,
        /// The new count.
        count: u32,
        /// Seconds to wait for instances before failing.
        #[arg(long = "wait-timeout", default_value_t = 900)]
        wait_timeout: u64,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let options = |wait: u64| Options {
        connection: Connection { endpoint_url: cli.endpoint_url.clone(), ..Connection::default() },
        wait_timeout: Duration::from_secs(wait),
        ..Options::default()
    };
    let mut progress = |line: String| eprintln!("{line}");
    match &cli.command {
        Command::Plan { file } => {
            let plan = commands::plan_file(file, &options(0)).await?;
            print!("{plan}");
        }
        Command::Apply { file, wait_timeout } => {
            let plan = commands::apply_file(file, &options(*wait_timeout), &mut progress).await?;
            print!("{plan}");
        }
        Command::Destroy { file, wait_timeout } => {
            let plan = commands::destroy_file(file, &options(*wait_timeout), &mut progress).await?;
            print!("{plan}");
        }
        Command::Scale { file, role, count, wait_timeout } => {
            let role = Role::parse(role).with_context(|| format!("unknown role `{role}`: use zookeeper, masters or agents"))?;
            let plan = commands::scale_file(file, role, *count, &options(*wait_timeout), &mut progress).await?;
            print!("{plan}");
        }
    }
    Ok(())
}
