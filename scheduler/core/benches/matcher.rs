//! Offer matching throughput: placement decisions per second on one core (one decision is one
//! task of one app tried against one offer), over 1,000 and 10,000 agents' offers, with and
//! without constraints, with the placed instances given as a slice (`match_offer`) or counted
//! in a `PlacementIndex` (`match_offer_indexed`); then 10,000 queued tasks of 100 apps matched
//! against a stream of offers. Baseline in the same run: decoding the same offers from protobuf
//! bytes (what merely receiving them costs).
//!
//! Run: `cargo bench -p framework-core --bench matcher` (`BENCH_SECONDS=0.1` for profiling).
//! Under `cargo test` it only says how.

mod common;
mod offers;

use offers::offer;

use std::hint::black_box;
use std::time::Instant;

use framework_core::matching::{
    Constraint, Placement, PlacementIndex, PortRequest, TaskRequest, match_offer, match_offer_indexed, placement_of,
};
use mesos_proto::v1;
use prost::Message as _;

/// Instances of the app already placed in the single-app scenarios (two per rack).
const PLACED: usize = 100;
/// The queued-tasks scenario: apps × instances each.
const APPS: usize = 100;
const INSTANCES: usize = 100;

fn plain() -> TaskRequest {
    TaskRequest { cpus: 0.1, mem: 64.0, host_ports: vec![PortRequest::Any], ..Default::default() }
}

/// `hostname:UNIQUE`, `rack:GROUP_BY`, `zone:LIKE:z[01]`, `rack:MAX_PER:5`.
fn constrained() -> TaskRequest {
    let rules: [&[&str]; 4] = [&["hostname", "UNIQUE"], &["rack", "GROUP_BY"], &["zone", "LIKE", "z[01]"], &["rack", "MAX_PER", "5"]];
    let constraints = rules
        .iter()
        .map(|parts| {
            let parts: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
            Constraint::parse(&parts).expect("valid constraint")
        })
        .collect();
    TaskRequest { constraints, ..plain() }
}

/// Decisions per second matching `req` once against each offer in turn; also the share that fit.
fn single_app(offers: &[v1::Offer], req: &TaskRequest, matcher: impl Fn(&v1::Offer, &TaskRequest) -> usize) -> (f64, f64) {
    let (mut tried, mut fitted) = (0usize, 0usize);
    let rate = common::rate(|| {
        for o in offers {
            fitted += black_box(matcher(o, req));
        }
        tried += offers.len();
        offers.len()
    });
    (rate, fitted as f64 / tried as f64)
}

/// The queued-tasks scenario: `APPS` apps (every other one constrained) of `INSTANCES` tasks
/// each, none placed yet, against the offers in a loop. Each offer launches at most one task: the
/// queued apps are tried in turn (from where the last offer stopped) until one fits. Returns
/// decisions per second, decisions, launches, offers used.
fn queued(offers: &[v1::Offer], indexed: bool) -> (f64, usize, usize, usize) {
    let requests: Vec<TaskRequest> = (0..APPS).map(|k| if k % 2 == 0 { constrained() } else { plain() }).collect();
    let mut left = vec![INSTANCES; APPS];
    let mut slices: Vec<Vec<Placement>> = vec![Vec::new(); APPS];
    let mut indexes: Vec<PlacementIndex> = vec![PlacementIndex::default(); APPS];
    let (mut decisions, mut launched, mut used, mut cursor) = (0usize, 0usize, 0usize, 0usize);
    let start = Instant::now();
    'offers: for o in offers.iter().cycle().take(offers.len() * 20) {
        used += 1;
        for step in 0..APPS {
            let app = (cursor + step) % APPS;
            if left[app] == 0 {
                continue;
            }
            decisions += 1;
            let outcome = if indexed {
                match_offer_indexed(o, &requests[app], &indexes[app], "*", 1)
            } else {
                match_offer(o, &requests[app], &slices[app], "*", 1)
            };
            if !black_box(&outcome).launches.is_empty() {
                let here = placement_of(o);
                if indexed {
                    indexes[app].add(&here);
                } else {
                    slices[app].push(here);
                }
                left[app] -= 1;
                launched += 1;
                cursor = app + 1;
                if launched == APPS * INSTANCES {
                    break 'offers;
                }
                break;
            }
        }
    }
    (decisions as f64 / start.elapsed().as_secs_f64(), decisions, launched, used)
}

fn main() {
    if !common::wanted("matcher") {
        return;
    }
    for agents in [1_000, 10_000] {
        let offers: Vec<v1::Offer> = (0..agents).map(offer).collect();
        let bytes: Vec<Vec<u8>> = offers.iter().map(|o| o.encode_to_vec()).collect();
        let decode = common::rate(|| {
            for b in &bytes {
                black_box(v1::Offer::decode(b.as_slice()).ok());
            }
            bytes.len()
        });
        // Distinct agents (7 is prime to both counts), two per rack.
        let placed: Vec<Placement> = (0..PLACED).map(|i| placement_of(&offers[(i * 7) % agents])).collect();
        let index = PlacementIndex::new(&placed);
        let base = Some(("protobuf decode of the offer", decode, "offers/s"));
        common::header(&format!(
            "{agents} agents' offers, one app with {PLACED} placed instances; constraints: hostname:UNIQUE, rack:GROUP_BY, zone:LIKE:z[01], rack:MAX_PER:5"
        ));
        common::row("protobuf decode of the offer (baseline)", decode, "offers/s", None);
        let slice = |o: &v1::Offer, r: &TaskRequest| match_offer(o, r, &placed, "*", 1).launches.len();
        let indexed = |o: &v1::Offer, r: &TaskRequest| match_offer_indexed(o, r, &index, "*", 1).launches.len();
        for (label, req, matcher) in [
            ("no constraints, placed as slice", plain(), &slice as &dyn Fn(&v1::Offer, &TaskRequest) -> usize),
            ("no constraints, placed as index", plain(), &indexed),
            ("4 constraints, placed as slice", constrained(), &slice),
            ("4 constraints, placed as index", constrained(), &indexed),
        ] {
            let (rate, fit) = single_app(&offers, &req, matcher);
            common::row(&format!("match: {label} ({:.0}% fit)", fit * 100.0), rate, "decisions/s", base);
        }
        if agents == 1_000 {
            for indexed in [false, true] {
                let (rate, decisions, launched, used) = queued(&offers, indexed);
                let how = if indexed { "index per app" } else { "slice per app" };
                common::row(
                    &format!(
                        "queue: {} tasks of {APPS} apps (half constrained), {how}: {decisions} decisions, {launched} launched from {used} offers",
                        APPS * INSTANCES
                    ),
                    rate,
                    "decisions/s",
                    base,
                );
            }
        }
    }
}
