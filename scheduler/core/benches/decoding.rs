//! Decoding OFFERS events as the scheduler receives them: RecordIO framing, then the event
//! decoded from protobuf (with the required-field check) or from JSON, 10 offers per event.
//! Baseline in the same run: plain `prost` decoding of the same event bytes, no framing and
//! no required-field check.
//!
//! Run: `cargo bench -p framework-core --bench decoding`. Under `cargo test` it only says how.

mod common;

use std::hint::black_box;

use mesos_proto::recordio::{self, Decoder};
use mesos_proto::v1::scheduler::{Event, event};
use mesos_proto::v1::{self, value};
use mesos_proto::{Encoding, codec};
use prost::Message as _;

const EVENTS: usize = 100;
const OFFERS_PER_EVENT: usize = 10;

fn offer(i: usize) -> v1::Offer {
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
                ranges: Some(v1::value::Ranges {
                    range: vec![value::Range { begin: 31000, end: 32000 }],
                }),
                ..Default::default()
            },
        ],
        attributes: vec![text("rack", format!("r{}", i % 50)), text("zone", format!("z{}", i % 3))],
        ..Default::default()
    }
}

fn event(first: usize) -> Event {
    Event {
        r#type: Some(event::Type::Offers as i32),
        offers: Some(event::Offers {
            offers: (first..first + OFFERS_PER_EVENT).map(offer).collect(),
        }),
        ..Default::default()
    }
}

/// Offers per second through framing and decoding a whole stream of `encoding` events.
fn stream_rate(stream: &[u8], encoding: Encoding) -> f64 {
    common::rate(|| {
        let mut decoder = Decoder::default();
        decoder.push(stream);
        let mut offers = 0;
        while let Ok(Some(record)) = decoder.next_record() {
            let event: Event = codec::decode(&record, encoding).expect("an event");
            offers += black_box(event).offers.map_or(0, |o| o.offers.len());
        }
        assert_eq!(offers, EVENTS * OFFERS_PER_EVENT, "every offer decoded");
        offers
    })
}

fn main() {
    if !common::wanted("decoding") {
        return;
    }
    let events: Vec<Event> = (0..EVENTS).map(|e| event(e * OFFERS_PER_EVENT)).collect();
    let frame = |encoding: Encoding| -> Vec<u8> {
        events.iter().flat_map(|e| recordio::encode(&codec::encode(e, encoding)).to_vec()).collect()
    };
    let (protobuf, json) = (frame(Encoding::Protobuf), frame(Encoding::Json));
    let raw: Vec<Vec<u8>> = events.iter().map(|e| e.encode_to_vec()).collect();
    let baseline = common::rate(|| {
        raw.iter()
            .map(|b| black_box(Event::decode(b.as_slice()).ok()).and_then(|e| e.offers).map_or(0, |o| o.offers.len()))
            .sum()
    });
    common::header(&format!(
        "OFFERS events of {OFFERS_PER_EVENT} offers (4 resources, 2 attributes each), {EVENTS} events per stream: {} bytes as protobuf, {} as JSON",
        protobuf.len(),
        json.len()
    ));
    let base = Some(("prost decode, no framing", baseline, "offers/s"));
    common::row("prost decode of the event bytes (baseline)", baseline, "offers/s", None);
    common::row("RecordIO + protobuf (codec::decode)", stream_rate(&protobuf, Encoding::Protobuf), "offers/s", base);
    common::row("RecordIO + JSON (codec::decode)", stream_rate(&json, Encoding::Json), "offers/s", base);
}
