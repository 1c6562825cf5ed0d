//! Wire-format tests for the Mesos v1 types: official field numbers (checked against hand-written
//! protobuf bytes), JSON and protobuf round trips of every Call and Event type, the Mesos docs'
//! JSON samples, and malformed input.

#![allow(deprecated)] // Resource.role is deprecated upstream but still on the wire.

use mesos_proto::codec::{self, Encoding};
use mesos_proto::json::{self, JsonError};
use mesos_proto::v1::{self, executor, scheduler};
use prost::Message as _;
use serde_json::{Value as Json, json};

// ---------------------------------------------------------------------------------------------
// Hand-written protobuf bytes. Tags below come from the official apache/mesos
// include/mesos/v1/{mesos,scheduler/scheduler,executor/executor}.proto, not from our files.

fn key(tag: u32, wire: u32) -> Vec<u8> {
    varint_bytes(u64::from(tag << 3 | wire))
}

fn varint_bytes(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn varint(tag: u32, v: u64) -> Vec<u8> {
    [key(tag, 0), varint_bytes(v)].concat()
}

fn bytes(tag: u32, body: &[u8]) -> Vec<u8> {
    [key(tag, 2), varint_bytes(body.len() as u64), body.to_vec()].concat()
}

fn double(tag: u32, v: f64) -> Vec<u8> {
    [key(tag, 1), v.to_le_bytes().to_vec()].concat()
}

/// `{ required string value = 1; }`, the shape of every Mesos ID message.
fn id(tag: u32, value: &str) -> Vec<u8> {
    bytes(tag, &bytes(1, value.as_bytes()))
}

#[test]
fn scheduler_call_types_and_body_tags_are_official() {
    // (Call.Type value, tag of the body field), Call.type = 2.
    let table: &[(i32, Option<u32>)] = &[
        (1, Some(3)),   // SUBSCRIBE, subscribe
        (2, None),      // TEARDOWN
        (3, Some(4)),   // ACCEPT, accept
        (4, Some(5)),   // DECLINE, decline
        (13, Some(13)), // ACCEPT_INVERSE_OFFERS
        (14, Some(14)), // DECLINE_INVERSE_OFFERS
        (5, Some(15)),  // REVIVE, revive
        (6, Some(6)),   // KILL, kill
        (7, Some(7)),   // SHUTDOWN, shutdown
        (8, Some(8)),   // ACKNOWLEDGE, acknowledge
        (15, Some(17)), // ACKNOWLEDGE_OPERATION_STATUS
        (9, Some(9)),   // RECONCILE, reconcile
        (16, Some(18)), // RECONCILE_OPERATIONS
        (10, Some(10)), // MESSAGE, message
        (11, Some(11)), // REQUEST, request
        (12, Some(16)), // SUPPRESS, suppress
        (17, Some(19)), // UPDATE_FRAMEWORK, update_framework
    ];
    assert_eq!(table.len(), all_call_types().len(), "every Call type is covered");
    for &(ty, body) in table {
        let mut wire = [id(1, "fw-1"), varint(2, ty as u64)].concat();
        if let Some(tag) = body {
            wire.extend(bytes(tag, &[]));
        }
        let call = scheduler::Call::decode(wire.as_slice()).expect("decodes");
        assert_eq!(call.r#type, Some(ty));
        assert_eq!(call.framework_id.as_ref().map(|f| f.value.as_str()), Some("fw-1"));
        let name = scheduler::call::Type::try_from(ty).expect("known type").as_str_name();
        assert_eq!(call_body_present(&call), body.is_some(), "{name}: body field tag");
    }
}

#[test]
fn scheduler_event_types_and_body_tags_are_official() {
    // (Event.Type value, tag of the body field), Event.type = 1.
    let table: &[(i32, Option<u32>)] = &[
        (1, Some(2)),   // SUBSCRIBED
        (2, Some(3)),   // OFFERS
        (9, Some(9)),   // INVERSE_OFFERS
        (3, Some(4)),   // RESCIND
        (10, Some(10)), // RESCIND_INVERSE_OFFER
        (4, Some(5)),   // UPDATE
        (11, Some(11)), // UPDATE_OPERATION_STATUS
        (5, Some(6)),   // MESSAGE
        (6, Some(7)),   // FAILURE
        (7, Some(8)),   // ERROR
        (8, None),      // HEARTBEAT
    ];
    assert_eq!(table.len(), all_event_types().len(), "every Event type is covered");
    for &(ty, body) in table {
        let mut wire = varint(1, ty as u64);
        if let Some(tag) = body {
            wire.extend(bytes(tag, &[]));
        }
        let event = scheduler::Event::decode(wire.as_slice()).expect("decodes");
        assert_eq!(event.r#type, Some(ty));
        assert_eq!(event_body_present(&event), body.is_some(), "event type {ty}: body field tag");
    }
}

#[test]
fn executor_call_and_event_tags_are_official() {
    // Executor Call: executor_id = 1, framework_id = 2, type = 3; bodies subscribe 4, update 5, message 6.
    for (ty, body) in [(1u64, Some(4u32)), (2, Some(5)), (3, Some(6)), (4, None)] {
        let mut wire = [id(1, "e"), id(2, "f"), varint(3, ty)].concat();
        if let Some(tag) = body {
            wire.extend(bytes(tag, &[]));
        }
        let call = executor::Call::decode(wire.as_slice()).expect("decodes");
        assert_eq!(call.executor_id.value, "e");
        assert_eq!(call.framework_id.value, "f");
        let present = call.subscribe.is_some() || call.update.is_some() || call.message.is_some();
        assert_eq!(present, body.is_some());
    }
    // Executor Call.Message.data is tag 2.
    let msg = executor::call::Message::decode(bytes(2, b"hi").as_slice()).expect("decodes");
    assert_eq!(msg.data, b"hi");
    // Executor Event: type 1; subscribed 2, acknowledged 3, launch 4, kill 5, message 6, error 7, launch_group 8.
    for (ty, body) in
        [(1u64, Some(2u32)), (2, Some(4)), (3, Some(5)), (4, Some(3)), (5, Some(6)), (6, Some(7)), (7, None), (8, Some(8)), (9, None)]
    {
        let mut wire = varint(1, ty);
        if let Some(tag) = body {
            wire.extend(bytes(tag, &[]));
        }
        let e = executor::Event::decode(wire.as_slice()).expect("decodes");
        let present = e.subscribed.is_some()
            || e.acknowledged.is_some()
            || e.launch.is_some()
            || e.kill.is_some()
            || e.message.is_some()
            || e.error.is_some()
            || e.launch_group.is_some();
        assert_eq!(present, body.is_some(), "executor event {ty}");
    }
}

#[test]
fn update_event_fields_decode_from_official_tags() {
    let uuid = [7u8; 16];
    // TaskStatus: task_id 1, state 2, message 4, agent_id 5, timestamp 6, executor_id 7, healthy 8,
    // source 9, reason 10, uuid 11.
    let status = [
        id(1, "web.1"),
        varint(2, 1), // TASK_RUNNING
        bytes(4, b"ok"),
        id(5, "S0"),
        double(6, 1.5e9),
        id(7, "exec"),
        varint(8, 1),
        varint(9, 2),   // SOURCE_EXECUTOR
        varint(10, 29), // REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
        bytes(11, &uuid),
    ]
    .concat();
    // Event.type = 1 (UPDATE = 4), Event.update = 5, Update.status = 1.
    let wire = [varint(1, 4), bytes(5, &bytes(1, &status))].concat();
    let event: scheduler::Event = codec::decode(&wire, Encoding::Protobuf).expect("valid event");
    assert_eq!(event.r#type(), scheduler::event::Type::Update);
    let s = event.update.expect("update body").status;
    assert_eq!(s.task_id.value, "web.1");
    assert_eq!(s.state(), v1::TaskState::TaskRunning);
    assert_eq!(s.message.as_deref(), Some("ok"));
    assert_eq!(s.agent_id.as_ref().map(|a| a.value.as_str()), Some("S0"));
    assert_eq!(s.timestamp, Some(1.5e9));
    assert_eq!(s.executor_id.as_ref().map(|e| e.value.as_str()), Some("exec"));
    assert_eq!(s.healthy, Some(true));
    assert_eq!(s.source(), v1::task_status::Source::Executor);
    assert_eq!(s.reason(), v1::task_status::Reason::TaskHealthCheckStatusUpdated);
    assert_eq!(s.uuid.as_deref(), Some(&uuid[..]));
}

#[test]
fn offers_event_fields_decode_from_official_tags() {
    // Value.Scalar.value 1; Value.Range begin 1, end 2; Value.Ranges.range 1.
    // Resource: name 1, type 2, scalar 3, ranges 4, role 6. Attribute: name 1, type 2, text 5.
    let cpus = [bytes(1, b"cpus"), varint(2, 0), bytes(3, &double(1, 2.5)), bytes(6, b"*")].concat();
    let ports = [bytes(1, b"ports"), varint(2, 1), bytes(4, &bytes(1, &[varint(1, 31000), varint(2, 31099)].concat()))].concat();
    let rack = [bytes(1, b"rack"), varint(2, 3), bytes(5, &bytes(1, b"r1"))].concat();
    // Offer: id 1, framework_id 2, agent_id 3, hostname 4, resources 5, attributes 7.
    let offer = [id(1, "O1"), id(2, "F"), id(3, "S1"), bytes(4, b"host-a"), bytes(5, &cpus), bytes(5, &ports), bytes(7, &rack)].concat();
    // Event.type OFFERS = 2, Event.offers = 3, Offers.offers = 1.
    let wire = [varint(1, 2), bytes(3, &bytes(1, &offer))].concat();
    let event: scheduler::Event = codec::decode(&wire, Encoding::Protobuf).expect("valid event");
    let offers = event.offers.expect("offers body").offers;
    let o = &offers[0];
    assert_eq!(
        (o.id.value.as_str(), o.framework_id.value.as_str(), o.agent_id.value.as_str(), o.hostname.as_str()),
        ("O1", "F", "S1", "host-a")
    );
    assert_eq!(o.resources[0].name, "cpus");
    assert_eq!(o.resources[0].scalar.as_ref().map(|s| s.value), Some(2.5));
    let range = &o.resources[1].ranges.as_ref().expect("ranges").range[0];
    assert_eq!((range.begin, range.end), (31000, 31099));
    assert_eq!(o.attributes[0].text.as_ref().map(|t| t.value.as_str()), Some("r1"));
    // And the same offer in Mesos JSON.
    let j = json::to_json(o);
    assert_eq!(j["resources"][0], json!({"name":"cpus","type":"SCALAR","scalar":{"value":2.5},"role":"*"}));
    assert_eq!(j["resources"][1]["ranges"], json!({"range":[{"begin":31000,"end":31099}]}));
    assert_eq!(j["attributes"][0], json!({"name":"rack","type":"TEXT","text":{"value":"r1"}}));
}

#[test]
fn subscribe_call_fields_decode_from_official_tags() {
    // FrameworkInfo: user 1, name 2, id 3, failover_timeout 4, checkpoint 5, hostname 7,
    // capabilities 10 (Capability.type 1), roles 12. Call.Subscribe: framework_info 1, suppressed_roles 2.
    let info = [
        bytes(1, b"root"),
        bytes(2, b"framework"),
        id(3, "F-0000"),
        double(4, 604800.0),
        varint(5, 1),
        bytes(7, b"h"),
        bytes(10, &varint(1, 5)), // PARTITION_AWARE
        bytes(10, &varint(1, 6)), // MULTI_ROLE
        bytes(12, b"web"),
    ]
    .concat();
    let wire = [id(1, "F-0000"), varint(2, 1), bytes(3, &[bytes(1, &info), bytes(2, b"batch")].concat())].concat();
    let call: scheduler::Call = codec::decode(&wire, Encoding::Protobuf).expect("valid call");
    let sub = call.subscribe.expect("subscribe");
    let fi = sub.framework_info;
    assert_eq!((fi.user.as_str(), fi.name.as_str()), ("root", "framework"));
    assert_eq!(fi.id.map(|i| i.value).as_deref(), Some("F-0000"));
    assert_eq!(fi.failover_timeout, Some(604800.0));
    assert_eq!(fi.checkpoint, Some(true));
    let caps: Vec<_> = fi.capabilities.iter().map(|c| c.r#type()).collect();
    assert_eq!(caps, vec![v1::framework_info::capability::Type::PartitionAware, v1::framework_info::capability::Type::MultiRole]);
    assert_eq!(fi.roles, vec!["web".to_owned()]);
    assert_eq!(sub.suppressed_roles, vec!["batch".to_owned()]);
}

// ---------------------------------------------------------------------------------------------
// Round trips of every Call and Event type, in both encodings.

fn all_call_types() -> Vec<scheduler::call::Type> {
    (1..=40).filter_map(|n| scheduler::call::Type::try_from(n).ok()).collect()
}

fn all_event_types() -> Vec<scheduler::event::Type> {
    (1..=40).filter_map(|n| scheduler::event::Type::try_from(n).ok()).collect()
}

fn call_body_present(c: &scheduler::Call) -> bool {
    c.subscribe.is_some()
        || c.accept.is_some()
        || c.decline.is_some()
        || c.accept_inverse_offers.is_some()
        || c.decline_inverse_offers.is_some()
        || c.revive.is_some()
        || c.kill.is_some()
        || c.shutdown.is_some()
        || c.acknowledge.is_some()
        || c.acknowledge_operation_status.is_some()
        || c.reconcile.is_some()
        || c.reconcile_operations.is_some()
        || c.message.is_some()
        || c.request.is_some()
        || c.suppress.is_some()
        || c.update_framework.is_some()
}

fn event_body_present(e: &scheduler::Event) -> bool {
    e.subscribed.is_some()
        || e.offers.is_some()
        || e.inverse_offers.is_some()
        || e.rescind.is_some()
        || e.rescind_inverse_offer.is_some()
        || e.update.is_some()
        || e.update_operation_status.is_some()
        || e.message.is_some()
        || e.failure.is_some()
        || e.error.is_some()
}

fn round_trip<M>(msg: &M) -> Json
where
    M: prost::Message + prost::Name + Default + PartialEq + std::fmt::Debug,
{
    // JSON: output carries declared defaults, so the fixed point is the JSON document itself.
    let text = codec::encode(msg, Encoding::Json);
    let back: M = codec::decode(&text, Encoding::Json).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&text)));
    assert_eq!(json::to_json(&back), json::to_json(msg), "JSON round trip");
    assert!(back.encode_to_vec().len() >= msg.encode_to_vec().len(), "nothing lost in JSON");
    let wire = codec::encode(msg, Encoding::Protobuf);
    let back: M = codec::decode(&wire, Encoding::Protobuf).expect("protobuf decodes");
    assert_eq!(&back, msg, "protobuf round trip");
    serde_json::from_slice(&text).expect("valid JSON")
}

#[test]
fn every_call_type_round_trips() {
    for ty in all_call_types() {
        let call = fixtures::call(ty);
        let j = round_trip(&call);
        assert_eq!(j["type"], json!(ty.as_str_name()));
        assert_eq!(j["framework_id"], json!({"value": "F-0000"}));
    }
}

#[test]
fn every_event_type_round_trips() {
    for ty in all_event_types() {
        let j = round_trip(&fixtures::event(ty));
        assert_eq!(j["type"], json!(ty.as_str_name()));
    }
}

#[test]
fn executor_calls_and_events_round_trip() {
    for ty in 1..=4 {
        let ty = executor::call::Type::try_from(ty).expect("known");
        round_trip(&fixtures::executor_call(ty));
    }
    for ty in 1..=9 {
        let ty = executor::event::Type::try_from(ty).expect("known");
        round_trip(&fixtures::executor_event(ty));
    }
}

/// `codec::decode` checks required fields by walking the encoding; it must give the reflective
/// decoder's answer on every damaged variant of every sample: cut short, a byte dropped, a byte
/// changed.
fn decode_agrees_with_reflection<M>(msg: &M)
where
    M: prost::Message + prost::Name + Default + PartialEq + std::fmt::Debug,
{
    let descriptor = mesos_proto::descriptor::message_descriptor::<M>();
    let wire = msg.encode_to_vec();
    let mut variants = vec![wire.clone()];
    for i in 0..wire.len() {
        variants.push(wire[..i].to_vec());
        let mut dropped = wire.clone();
        dropped.remove(i);
        variants.push(dropped);
        for flip in [0x01, 0x80, 0xff] {
            let mut changed = wire.clone();
            changed[i] ^= flip;
            variants.push(changed);
        }
    }
    for bytes in &variants {
        let fast = codec::decode::<M>(bytes, Encoding::Protobuf);
        let reference = codec::decode_reflective::<M>(&descriptor, bytes);
        assert_eq!(fast, reference, "{} from {bytes:?}", M::full_name());
    }
}

#[test]
fn protobuf_decoding_agrees_with_the_reflective_decoder_on_damaged_input() {
    for ty in all_call_types() {
        decode_agrees_with_reflection(&fixtures::call(ty));
    }
    for ty in all_event_types() {
        decode_agrees_with_reflection(&fixtures::event(ty));
    }
    for ty in 1..=4 {
        decode_agrees_with_reflection(&fixtures::executor_call(executor::call::Type::try_from(ty).expect("known")));
    }
}

// ---------------------------------------------------------------------------------------------
// The JSON mapping's rules.

#[test]
fn declared_defaults_are_written_and_deprecated_ones_are_not() {
    assert_eq!(json::to_json(&v1::Filters::default()), json!({"refuse_seconds": 5.0}));
    let cmd = json::to_json(&v1::CommandInfo { value: Some("sleep 1".into()), ..Default::default() });
    assert_eq!(cmd, json!({"value": "sleep 1", "shell": true}));
    let hc = json::to_json(&v1::HealthCheck::default());
    for (k, v) in [("delay_seconds", 15.0), ("interval_seconds", 10.0), ("timeout_seconds", 20.0), ("grace_period_seconds", 10.0)] {
        assert_eq!(hc[k], json!(v), "{k}");
    }
    assert_eq!(hc["consecutive_failures"], json!(3));
    // Resource.role is deprecated: its default "*" is not written when unset.
    let r = v1::Resource {
        name: "cpus".into(),
        r#type: v1::value::Type::Scalar as i32,
        scalar: Some(v1::value::Scalar { value: 1.0 }),
        ..Default::default()
    };
    assert!(json::to_json(&r).get("role").is_none());
}

#[test]
fn bytes_are_standard_base64_and_int64_accepts_strings() {
    let ack = scheduler::call::Acknowledge {
        agent_id: v1::AgentId { value: "S".into() },
        task_id: v1::TaskId { value: "t".into() },
        uuid: vec![0xfb, 0xff, 0xfe, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    };
    let j = json::to_json(&ack);
    assert_eq!(j["uuid"], json!("+//+AAECAwQFBgcICQoLDA=="));
    let d: v1::DurationInfo = json::from_json(&json!({"nanoseconds": "3000000000"})).expect("string int64");
    assert_eq!(d.nanoseconds, 3_000_000_000);
    let d: v1::DurationInfo = json::from_json(&json!({"nanoseconds": 5})).expect("number int64");
    assert_eq!(d.nanoseconds, 5);
}

#[test]
fn nulls_and_unknown_keys_are_ignored() {
    let call: scheduler::Call =
        json::from_json(&json!({"type": "TEARDOWN", "framework_id": {"value": "F"}, "kill": null, "futureField": {"x": 1}}))
            .expect("valid");
    assert_eq!(call.r#type(), scheduler::call::Type::Teardown);
    assert!(call.kill.is_none());
}

#[test]
fn enums_must_be_names() {
    let err = json::from_json::<scheduler::Call>(&json!({"type": 2})).expect_err("numeric enum");
    assert!(matches!(&err, JsonError::Schema { path, .. } if path == "type"), "{err}");
    // An unknown name in an optional enum leaves it unset.
    let call: scheduler::Call = json::from_json(&json!({"type": "NO_SUCH_CALL"})).expect("optional enum dropped");
    assert_eq!(call.r#type, None);
    // In a required enum it is an error.
    let err = json::from_json::<v1::TaskStatus>(&json!({"task_id": {"value": "t"}, "state": "TASK_NOWHERE"})).expect_err("required enum");
    assert!(err.to_string().contains("state"), "{err}");
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let cases: &[&[u8]] = &[
        b"",
        b"{",
        b"[]",
        b"\"SUBSCRIBE\"",
        b"{\"type\":\"SUBSCRIBE\",\"subscribe\":{}}",
        b"{\"type\":\"SUBSCRIBE\",\"subscribe\":{\"framework_info\":{\"user\":\"u\"}}}",
        b"{\"type\":\"ACKNOWLEDGE\",\"acknowledge\":{\"agent_id\":{\"value\":\"a\"},\"task_id\":{\"value\":\"t\"},\"uuid\":\"***\"}}",
        b"{\"framework_id\":{\"value\":7}}",
        b"{\"type\":\"ACCEPT\",\"accept\":{\"offer_ids\":[{\"value\":[]}]}}",
        b"{\"type\":\"SUBSCRIBE\",\"framework_id\":{\"value\":\"\xff\xfe\"}}",
    ];
    for case in cases {
        let res = codec::decode::<scheduler::Call>(case, Encoding::Json);
        assert!(res.is_err(), "{:?} should be refused", String::from_utf8_lossy(case));
    }
    // Protobuf: a truncated length-delimited field, and a missing required field.
    let truncated = [key(3, 2), vec![10, 1]].concat();
    assert!(codec::decode::<scheduler::Call>(&truncated, Encoding::Protobuf).is_err());
    let missing_user = [varint(2, 1), bytes(3, &bytes(1, &bytes(2, b"name-only")))].concat();
    let err = codec::decode::<scheduler::Call>(&missing_user, Encoding::Protobuf).expect_err("user is required");
    assert!(err.to_string().contains("subscribe.framework_info.user"), "{err}");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn arb_json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<i64>().prop_map(Json::from),
            any::<f64>().prop_map(Json::from),
            prop::sample::select(vec!["SUBSCRIBE", "TASK_RUNNING", "value", "AAAA", "1e999", "-1", "x"]).prop_map(Json::from),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec![
                        "type",
                        "framework_id",
                        "value",
                        "subscribe",
                        "framework_info",
                        "user",
                        "name",
                        "accept",
                        "offer_ids",
                        "operations",
                        "launch",
                        "task_infos",
                        "resources",
                        "scalar",
                        "ranges",
                        "range",
                        "begin",
                        "end",
                        "uuid",
                        "status",
                        "state",
                        "filters",
                        "refuse_seconds",
                        "kill",
                        "task_id",
                    ]),
                    inner,
                    0..6
                )
                .prop_map(|m| Json::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_json_never_panics(j in arb_json()) {
            if let Ok(call) = json::from_json::<scheduler::Call>(&j) {
                // Whatever parses re-emits and re-parses to the same message.
                let again: scheduler::Call = json::from_json(&json::to_json(&call)).expect("re-parses");
                prop_assert_eq!(again, call);
            }
            let _ = json::from_json::<scheduler::Event>(&j);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = codec::decode::<scheduler::Event>(&data, Encoding::Protobuf);
            let _ = codec::decode::<scheduler::Event>(&data, Encoding::Json);
            let _ = codec::decode::<executor::Call>(&data, Encoding::Protobuf);
        }
    }
}

mod fixtures {
    //! One representative message per Call and Event type, with every body populated.
    use super::*;

    fn fid() -> v1::FrameworkId {
        v1::FrameworkId { value: "F-0000".into() }
    }
    fn aid() -> v1::AgentId {
        v1::AgentId { value: "M-S0".into() }
    }
    fn tid() -> v1::TaskId {
        v1::TaskId { value: "web.abc".into() }
    }
    fn eid() -> v1::ExecutorId {
        v1::ExecutorId { value: "exec".into() }
    }
    fn oid(n: u32) -> v1::OfferId {
        v1::OfferId { value: format!("M-O{n}") }
    }
    fn uuid() -> Vec<u8> {
        (0..16).collect()
    }
    fn scalar(name: &str, v: f64) -> v1::Resource {
        v1::Resource {
            name: name.into(),
            r#type: v1::value::Type::Scalar as i32,
            scalar: Some(v1::value::Scalar { value: v }),
            role: Some("*".into()),
            ..Default::default()
        }
    }
    fn ports() -> v1::Resource {
        v1::Resource {
            name: "ports".into(),
            r#type: v1::value::Type::Ranges as i32,
            ranges: Some(v1::value::Ranges { range: vec![v1::value::Range { begin: 31000, end: 32000 }] }),
            ..Default::default()
        }
    }
    pub fn framework_info() -> v1::FrameworkInfo {
        v1::FrameworkInfo {
            user: "root".into(),
            name: "framework".into(),
            id: Some(fid()),
            failover_timeout: Some(604800.0),
            checkpoint: Some(true),
            roles: vec!["*".into()],
            capabilities: vec![v1::framework_info::Capability { r#type: Some(v1::framework_info::capability::Type::MultiRole as i32) }],
            hostname: Some("localhost".into()),
            ..Default::default()
        }
    }
    pub fn task_info() -> v1::TaskInfo {
        v1::TaskInfo {
            name: "web".into(),
            task_id: tid(),
            agent_id: aid(),
            resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0), ports()],
            command: Some(v1::CommandInfo {
                value: Some("python3 -m http.server $PORT0".into()),
                environment: Some(v1::Environment {
                    variables: vec![v1::environment::Variable { name: "PORT0".into(), value: Some("31000".into()), ..Default::default() }],
                }),
                shell: Some(true),
                ..Default::default()
            }),
            health_check: Some(v1::HealthCheck {
                r#type: Some(v1::health_check::Type::Http as i32),
                http: Some(v1::health_check::HttpCheckInfo { port: 31000, path: Some("/".into()), ..Default::default() }),
                ..Default::default()
            }),
            container: Some(v1::ContainerInfo {
                r#type: v1::container_info::Type::Docker as i32,
                docker: Some(v1::container_info::DockerInfo {
                    image: "local/nginx".into(),
                    network: Some(v1::container_info::docker_info::Network::Bridge as i32),
                    port_mappings: vec![v1::container_info::docker_info::PortMapping {
                        host_port: 31000,
                        container_port: 80,
                        protocol: Some("tcp".into()),
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            kill_policy: Some(v1::KillPolicy { grace_period: Some(v1::DurationInfo { nanoseconds: 3_000_000_000 }) }),
            labels: Some(v1::Labels { labels: vec![v1::Label { key: "app".into(), value: Some("/web".into()) }] }),
            ..Default::default()
        }
    }
    pub fn status() -> v1::TaskStatus {
        v1::TaskStatus {
            task_id: tid(),
            state: v1::TaskState::TaskRunning as i32,
            agent_id: Some(aid()),
            executor_id: Some(eid()),
            source: Some(v1::task_status::Source::Executor as i32),
            reason: Some(v1::task_status::Reason::TaskHealthCheckStatusUpdated as i32),
            healthy: Some(true),
            timestamp: Some(1_700_000_000.25),
            uuid: Some(uuid()),
            message: Some("healthy".into()),
            ..Default::default()
        }
    }
    fn offer() -> v1::Offer {
        v1::Offer {
            id: oid(1),
            framework_id: fid(),
            agent_id: aid(),
            hostname: "agent-1".into(),
            resources: vec![scalar("cpus", 4.0), scalar("mem", 8192.0), scalar("disk", 10000.0), ports()],
            attributes: vec![v1::Attribute {
                name: "rack".into(),
                r#type: v1::value::Type::Text as i32,
                text: Some(v1::value::Text { value: "r1".into() }),
                ..Default::default()
            }],
            allocation_info: Some(v1::resource::AllocationInfo { role: Some("*".into()) }),
            ..Default::default()
        }
    }

    pub fn call(ty: scheduler::call::Type) -> scheduler::Call {
        use scheduler::call::{self as c, Type as T};
        let mut call = scheduler::Call { framework_id: Some(fid()), r#type: Some(ty as i32), ..Default::default() };
        let filters = Some(v1::Filters { refuse_seconds: Some(120.0) });
        match ty {
            T::Unknown | T::Teardown => {}
            T::Subscribe => {
                call.subscribe =
                    Some(c::Subscribe { framework_info: framework_info(), suppressed_roles: vec!["batch".into()], ..Default::default() })
            }
            T::Accept => {
                call.accept = Some(c::Accept {
                    offer_ids: vec![oid(1), oid(2)],
                    operations: vec![v1::offer::Operation {
                        r#type: Some(v1::offer::operation::Type::Launch as i32),
                        launch: Some(v1::offer::operation::Launch { task_infos: vec![task_info()] }),
                        ..Default::default()
                    }],
                    filters,
                })
            }
            T::Decline => call.decline = Some(c::Decline { offer_ids: vec![oid(3)], filters }),
            T::AcceptInverseOffers => {
                call.accept_inverse_offers = Some(c::AcceptInverseOffers { inverse_offer_ids: vec![oid(4)], filters })
            }
            T::DeclineInverseOffers => {
                call.decline_inverse_offers = Some(c::DeclineInverseOffers { inverse_offer_ids: vec![oid(5)], filters })
            }
            T::Revive => call.revive = Some(c::Revive { roles: vec!["web".into()] }),
            T::Kill => {
                call.kill = Some(c::Kill {
                    task_id: tid(),
                    agent_id: Some(aid()),
                    kill_policy: Some(v1::KillPolicy { grace_period: Some(v1::DurationInfo { nanoseconds: 1 }) }),
                })
            }
            T::Shutdown => call.shutdown = Some(c::Shutdown { executor_id: eid(), agent_id: aid() }),
            T::Acknowledge => call.acknowledge = Some(c::Acknowledge { agent_id: aid(), task_id: tid(), uuid: uuid() }),
            T::AcknowledgeOperationStatus => {
                call.acknowledge_operation_status = Some(c::AcknowledgeOperationStatus {
                    agent_id: Some(aid()),
                    uuid: uuid(),
                    operation_id: v1::OperationId { value: "op".into() },
                    ..Default::default()
                })
            }
            T::Reconcile => {
                call.reconcile = Some(c::Reconcile { tasks: vec![c::reconcile::Task { task_id: tid(), agent_id: Some(aid()) }] })
            }
            T::ReconcileOperations => {
                call.reconcile_operations = Some(c::ReconcileOperations {
                    operations: vec![c::reconcile_operations::Operation {
                        operation_id: v1::OperationId { value: "op".into() },
                        ..Default::default()
                    }],
                })
            }
            T::Message => call.message = Some(c::Message { agent_id: aid(), executor_id: eid(), data: b"hello".to_vec() }),
            T::Request => {
                call.request =
                    Some(c::Request { requests: vec![v1::Request { agent_id: Some(aid()), resources: vec![scalar("cpus", 1.0)] }] })
            }
            T::Suppress => call.suppress = Some(c::Suppress { roles: vec!["*".into()] }),
            T::UpdateFramework => {
                call.update_framework = Some(c::UpdateFramework { framework_info: framework_info(), ..Default::default() })
            }
        }
        call
    }

    pub fn event(ty: scheduler::event::Type) -> scheduler::Event {
        use scheduler::event::{self as e, Type as T};
        let mut ev = scheduler::Event { r#type: Some(ty as i32), ..Default::default() };
        match ty {
            T::Unknown | T::Heartbeat => {}
            T::Subscribed => {
                ev.subscribed = Some(e::Subscribed {
                    framework_id: fid(),
                    heartbeat_interval_seconds: Some(15.0),
                    master_info: Some(v1::MasterInfo {
                        id: "M".into(),
                        ip: 16777343,
                        port: 5050,
                        hostname: Some("localhost".into()),
                        address: Some(v1::Address { hostname: Some("localhost".into()), ip: Some("127.0.0.1".into()), port: 5050 }),
                        ..Default::default()
                    }),
                })
            }
            T::Offers => ev.offers = Some(e::Offers { offers: vec![offer()] }),
            T::InverseOffers => {
                ev.inverse_offers = Some(e::InverseOffers {
                    inverse_offers: vec![v1::InverseOffer {
                        id: oid(9),
                        framework_id: fid(),
                        agent_id: Some(aid()),
                        unavailability: v1::Unavailability { start: v1::TimeInfo { nanoseconds: 1 }, duration: None },
                        ..Default::default()
                    }],
                })
            }
            T::Rescind => ev.rescind = Some(e::Rescind { offer_id: oid(1) }),
            T::RescindInverseOffer => ev.rescind_inverse_offer = Some(e::RescindInverseOffer { inverse_offer_id: oid(9) }),
            T::Update => ev.update = Some(e::Update { status: status() }),
            T::UpdateOperationStatus => {
                ev.update_operation_status = Some(e::UpdateOperationStatus {
                    status: v1::OperationStatus {
                        state: v1::OperationState::OperationFinished as i32,
                        uuid: Some(v1::Uuid { value: uuid() }),
                        ..Default::default()
                    },
                })
            }
            T::Message => ev.message = Some(e::Message { agent_id: aid(), executor_id: eid(), data: b"\x00\x01".to_vec() }),
            T::Failure => ev.failure = Some(e::Failure { agent_id: Some(aid()), executor_id: Some(eid()), status: Some(137) }),
            T::Error => ev.error = Some(e::Error { message: "Framework failed over".into() }),
        }
        ev
    }

    pub fn executor_call(ty: executor::call::Type) -> executor::Call {
        use executor::call::{self as c, Type as T};
        let mut call = executor::Call { executor_id: eid(), framework_id: fid(), r#type: Some(ty as i32), ..Default::default() };
        match ty {
            T::Unknown | T::Heartbeat => {}
            T::Subscribe => {
                call.subscribe = Some(c::Subscribe {
                    unacknowledged_tasks: vec![task_info()],
                    unacknowledged_updates: vec![c::Update { status: status() }],
                })
            }
            T::Update => call.update = Some(c::Update { status: status() }),
            T::Message => call.message = Some(c::Message { data: b"m".to_vec() }),
        }
        call
    }

    pub fn executor_event(ty: executor::event::Type) -> executor::Event {
        use executor::event::{self as e, Type as T};
        let mut ev = executor::Event { r#type: Some(ty as i32), ..Default::default() };
        match ty {
            T::Unknown | T::Shutdown | T::Heartbeat => {}
            T::Subscribed => {
                ev.subscribed = Some(e::Subscribed {
                    executor_info: v1::ExecutorInfo {
                        executor_id: eid(),
                        command: Some(v1::CommandInfo { value: Some("executor".into()), ..Default::default() }),
                        ..Default::default()
                    },
                    framework_info: framework_info(),
                    agent_info: v1::AgentInfo { hostname: "agent-1".into(), id: Some(aid()), port: Some(5051), ..Default::default() },
                    container_id: Some(v1::ContainerId { value: "c1".into(), parent: None }),
                })
            }
            T::Launch => ev.launch = Some(e::Launch { task: task_info() }),
            T::LaunchGroup => ev.launch_group = Some(e::LaunchGroup { task_group: v1::TaskGroupInfo { tasks: vec![task_info()] } }),
            T::Kill => ev.kill = Some(e::Kill { task_id: tid(), kill_policy: None }),
            T::Acknowledged => ev.acknowledged = Some(e::Acknowledged { task_id: tid(), uuid: uuid() }),
            T::Message => ev.message = Some(e::Message { data: b"m".to_vec() }),
            T::Error => ev.error = Some(e::Error { message: "boom".into() }),
        }
        ev
    }
}
