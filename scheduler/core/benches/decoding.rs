//! Decoding OFFERS events as the scheduler receives them: RecordIO framing, then the event
//! decoded from protobuf (with the required-field check) or from JSON, 10 offers per event.
//! Baseline in the same run: plain `prost` decoding of the same event bytes, no framing and
//! no required-field check.
//!
//! Run: `cargo bench -p framework-core --bench decoding`. Under `cargo test` it only says how.

mod common;
mod offers;

use offers::offer;

use std::hint::black_box;

use mesos_proto::recordio::{self, Decoder};
use mesos_proto::v1::scheduler::{Event, event};
use mesos_proto::{Encoding, codec};
use prost::Message as _;

const EVENTS: usize = 100;
const OFFERS_PER_EVENT: usize = 10;

fn event(first: usize) -> Event {
    Event {
        r#type: Some(event::Type::Offers as i32),
        offers: Some(event::Offers { offers: (first..first + OFFERS_PER_EVENT).map(offer).collect() }),
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
    let frame =
        |encoding: Encoding| -> Vec<u8> { events.iter().flat_map(|e| recordio::encode(&codec::encode(e, encoding)).to_vec()).collect() };
    let (protobuf, json) = (frame(Encoding::Protobuf), frame(Encoding::Json));
    let raw: Vec<Vec<u8>> = events.iter().map(|e| e.encode_to_vec()).collect();
    let baseline = common::rate(|| {
        raw.iter().map(|b| black_box(Event::decode(b.as_slice()).ok()).and_then(|e| e.offers).map_or(0, |o| o.offers.len())).sum()
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
