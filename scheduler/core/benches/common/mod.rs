//! What the bench binaries share: the "how to run" guard, a rate measurement and table rows.

use std::time::{Duration, Instant};

/// Whether to measure: only when run with `--bench` (`cargo bench`). Under `cargo test` the
/// binary gets no such argument, prints how to run it and the caller returns.
pub fn wanted(name: &str) -> bool {
    if std::env::args().any(|a| a == "--bench") {
        return true;
    }
    println!("{name} benchmark: run it with `cargo bench -p framework-core --bench {name}`");
    false
}

/// How long each measurement runs: `BENCH_SECONDS` (for profiling runs), else 1 s.
fn budget() -> Duration {
    let seconds = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(1.0);
    Duration::from_secs_f64(seconds.max(0.0))
}

/// Units per second of `round`, called repeatedly (at least once) until the budget is spent;
/// `round` returns how many units (decisions, offers, apps) it handled.
pub fn rate(mut round: impl FnMut() -> usize) -> f64 {
    let budget = budget();
    let start = Instant::now();
    let mut units = 0usize;
    loop {
        units += round();
        if start.elapsed() >= budget {
            break;
        }
    }
    units as f64 / start.elapsed().as_secs_f64()
}

/// The table header all benches print.
pub fn header(title: &str) {
    println!("\n{title}\n");
    println!("| measurement (one core) | figure | baseline | ratio |");
    println!("|---|---|---|---|");
}

/// One table row: the figure, and a baseline from the same run with their ratio (if any).
pub fn row(label: &str, figure: f64, unit: &str, baseline: Option<(&str, f64, &str)>) {
    match baseline {
        Some((name, base, base_unit)) => {
            println!("| {label} | {figure:.0} {unit} | {name}: {base:.0} {base_unit} | {:.2} |", figure / base)
        }
        None => println!("| {label} | {figure:.0} {unit} | — | — |"),
    }
}
