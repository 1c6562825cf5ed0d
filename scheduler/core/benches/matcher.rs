//! Offer matching throughput: placement decisions per second on one core, over 1,000 agents'
//! offers, with and without constraints. Baseline in the same run: decoding the same offers from
//! protobuf bytes (what merely receiving them costs).
//!
//! Run: `cargo bench -p framework-core --bench matcher`. Under `cargo test` it only says how.

use std::hint::black_box;
use std::time::Instant;

use framework_core::matching::{Constraint, Placement, PortRequest, TaskRequest, match_offer, placement_of};
use mesos_proto::v1::{self, value};
use prost::Message as _;

const AGENTS: usize = 1000;
const DECISIONS: usize = 200_000;

fn offer(i: usize) -> v1::Offer {
    let scalar = |name: &str, v: f64| v1::Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(v1::value::Scalar { value: v }),
        ..Default::default()
    };
    let text = |name: &str, v: String| v1::Attribute { name: name.into(), r#type: value::Type::Text as i32, text: Some(v1::value::Text { value: v }), ..Default::default() };
    v1::Offer {
        id: v1::OfferId { value: format!("o{i}") },
        framework_id: v1::FrameworkId { value: "f".into() },
        agent_id: v1::AgentId { value: format!("a{i}") },
        hostname: format!("agent-{i}.example"),
        resources: vec![
            scalar("cpus", 32.0),
            scalar("mem", 65536.0),
            scalar("disk", 100_000.0),
            v1::Resource {
                name: "ports".into(),
                r#type: value::Type::Ranges as i32,
                ranges: Some(v1::value::Ranges { range: vec![value::Range { begin: 31000, end: 32000 }] }),
                ..Default::default()
            },
        ],
        attributes: vec![text("rack", format!("r{}", i % 20)), text("zone", format!("z{}", i % 3))],
        ..Default::default()
    }
}

fn run(label: &str, offers: &[v1::Offer], req: &TaskRequest, placed: &[Placement]) -> f64 {
    let t = Instant::now();
    let mut fits = 0usize;
    for n in 0..DECISIONS {
        let out = match_offer(&offers[n % offers.len()], req, placed, "*", 1);
        fits += black_box(out.launches.len());
    }
    let rate = DECISIONS as f64 / t.elapsed().as_secs_f64();
    println!("| {label} | {rate:.0} decisions/s | {fits} fitted |");
    rate
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("matcher benchmark: run it with `cargo bench -p framework-core --bench matcher`");
        return;
    }
    let offers: Vec<v1::Offer> = (0..AGENTS).map(offer).collect();
    let bytes: Vec<Vec<u8>> = offers.iter().map(|o| o.encode_to_vec()).collect();
    let t = Instant::now();
    for n in 0..DECISIONS {
        black_box(v1::Offer::decode(bytes[n % bytes.len()].as_slice()).ok());
    }
    let decode = DECISIONS as f64 / t.elapsed().as_secs_f64();
    // 500 instances already placed, spread over the agents.
    let placed: Vec<Placement> = (0..500).map(|i| placement_of(&offers[(i * 7) % AGENTS])).collect();
    let parts = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let plain = TaskRequest { cpus: 0.1, mem: 64.0, disk: 0.0, gpus: 0, host_ports: vec![PortRequest::Any], constraints: vec![], accepted_roles: vec![] };
    let mut constrained = plain.clone();
    constrained.constraints = [parts(&["rack", "GROUP_BY", "20"]), parts(&["zone", "MAX_PER", "400"]), parts(&["hostname", "LIKE", "agent-[0-9]+\\.example"])]
        .iter()
        .filter_map(|c| Constraint::parse(c).ok())
        .collect();
    println!("| measurement ({AGENTS} agents' offers, {DECISIONS} decisions, one core) | rate | |");
    println!("|---|---|---|");
    println!("| baseline: protobuf decode of the offer | {decode:.0} offers/s | |");
    run("match, no constraints (500 placed)", &offers, &plain, &placed);
    run("match, GROUP_BY + MAX_PER + LIKE (500 placed)", &offers, &constrained, &placed);
}
