//! Scheduler and executor events and calls as they arrive from the master or an agent, in
//! protobuf and in Mesos JSON: decoding never panics, and what decodes also re-encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_proto::v1::{executor, scheduler};
use mesos_proto::{Encoding, codec, json};

fuzz_target!(|data: &[u8]| {
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        if let Ok(event) = codec::decode::<scheduler::Event>(data, encoding) {
            let _ = codec::encode(&event, Encoding::Json);
            let _ = codec::encode(&event, Encoding::Protobuf);
        }
        let _ = codec::decode::<executor::Event>(data, encoding);
        let _ = codec::decode::<scheduler::Call>(data, encoding);
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(call) = json::from_json::<scheduler::Call>(&value)
    {
        let again: scheduler::Call = json::from_json(&json::to_json(&call)).expect("a decoded call re-parses");
        assert_eq!(again, call);
    }
});
