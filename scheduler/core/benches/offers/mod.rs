//! The offers the matcher and decoding benches use: one agent's offer with cpus, mem, disk, a
//! port range and `rack`/`zone` attributes.

use mesos_proto::v1::{self, value};

/// Racks the agents are spread over.
pub const RACKS: usize = 50;
/// Zones the agents are spread over.
pub const ZONES: usize = 3;

/// The offer of agent `i`.
pub fn offer(i: usize) -> v1::Offer {
    let scalar = |name: &str, v: f64| v1::Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(v1::value::Scalar { value: v }),
        ..Default::default()
    };
    let text = |name: &str, v: String| v1::Attribute {
        name: name.into(),
        r#type: value::Type::Text as i32,
        text: Some(v1::value::Text { value: v }),
        ..Default::default()
    };
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
        attributes: vec![text("rack", format!("r{}", i % RACKS)), text("zone", format!("z{}", i % ZONES))],
        ..Default::default()
    }
}
