//! The RecordIO decoder over arbitrary bytes in arbitrary chunks: never panics, never returns
//! an empty or oversized record, and chunk boundaries do not change what it decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_proto::recordio::{Decoder, RecordIoError};

/// Records, then how the stream ended: an error, or whether it ended on a record boundary.
type Outcome = (Vec<Vec<u8>>, Result<bool, RecordIoError>);

fn decode(chunks: &[&[u8]]) -> Outcome {
    let mut d = Decoder::new(1024);
    let mut records = Vec::new();
    for chunk in chunks {
        d.push(chunk);
        loop {
            match d.next_record() {
                Ok(Some(r)) => {
                    assert!(!r.is_empty() && r.len() <= 1024, "record of {} bytes", r.len());
                    records.push(r.to_vec());
                }
                Ok(None) => break,
                Err(e) => return (records, Err(e)),
            }
        }
    }
    let finished = d.finish().is_ok();
    (records, Ok(finished))
}

fuzz_target!(|data: &[u8]| {
    // The first byte seeds the chunk sizes, the rest is the stream.
    let Some((&seed, stream)) = data.split_first() else { return };
    let mut chunks = Vec::new();
    let mut rest = stream;
    let mut size = usize::from(seed % 17) + 1;
    while !rest.is_empty() {
        let (head, tail) = rest.split_at(size.min(rest.len()));
        chunks.push(head);
        rest = tail;
        size = (size * 7 + 3) % 23 + 1;
    }
    assert_eq!(decode(&chunks), decode(&[stream]));
});
