//! `framework-cli`: the command line for a `framework` server (see `framework::cli`).

use clap::Parser as _;

#[tokio::main]
async fn main() {
    let cli = framework::cli::Cli::parse();
    if let Err(e) = framework::cli::run(cli).await {
        eprintln!("error: {}", e.message);
        std::process::exit(e.code);
    }
}
