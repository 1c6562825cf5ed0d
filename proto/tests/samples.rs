//! The Mesos docs' own JSON examples (tests/samples, see its README) parse under our types and
//! re-emit equivalently: every value the sample gives comes back, and what is added is only the
//! declared defaults of unset fields.

use std::path::Path;

use mesos_proto::json;
use mesos_proto::v1::{executor, scheduler};
use serde_json::Value as Json;

/// Parses `sample` as `M` and writes it back out.
fn reemit<M: prost::Message + prost::Name + Default>(sample: &Json) -> Result<Json, String> {
    let msg: M = json::from_json(sample).map_err(|e| e.to_string())?;
    Ok(json::to_json(&msg))
}

/// Whether `emitted` holds every value of `sample` (numbers compared as numbers; a lone value
/// for a repeated field compares with a one-element array, as Mesos reads it).
fn covers(sample: &Json, emitted: &Json, path: &str) -> Result<(), String> {
    match (sample, emitted) {
        (Json::Object(s), Json::Object(e)) => {
            for (k, v) in s {
                let here = format!("{path}.{k}");
                match e.get(k) {
                    Some(ev) => covers(v, ev, &here)?,
                    // Empty repeated fields are left out on output, as Mesos does.
                    None if v.as_array().is_some_and(Vec::is_empty) => {}
                    None => return Err(format!("{here} was dropped (not a field of the official schema?)")),
                }
            }
            Ok(())
        }
        (Json::Array(s), Json::Array(e)) if s.len() == e.len() => {
            s.iter().zip(e).enumerate().try_for_each(|(i, (a, b))| covers(a, b, &format!("{path}[{i}]")))
        }
        (single, Json::Array(e)) if e.len() == 1 && !single.is_array() => covers(single, &e[0], path),
        (Json::Number(a), Json::Number(b)) if a.as_f64() == b.as_f64() => Ok(()),
        (Json::String(a), Json::Number(b)) if a.parse::<f64>().ok() == b.as_f64() => Ok(()),
        (Json::String(a), Json::String(b)) if a == b => Ok(()),
        // Bytes re-emit with canonical padding.
        (Json::String(a), Json::String(b)) if b.trim_end_matches('=') == a.trim_end_matches('=') => Ok(()),
        (a, b) if a == b => Ok(()),
        (a, b) => Err(format!("{path}: sample has {a}, re-emitted {b}")),
    }
}

#[test]
fn mesos_doc_samples_parse_and_reemit_equivalently() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/samples");
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("samples dir") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable sample");
        let sample: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
        let emitted = match (name.starts_with("executor_"), name.ends_with("_call.json")) {
            (true, true) => reemit::<executor::Call>(&sample),
            (true, false) => reemit::<executor::Event>(&sample),
            (false, true) => reemit::<scheduler::Call>(&sample),
            (false, false) => reemit::<scheduler::Event>(&sample),
        };
        let verdict = emitted.and_then(|e| covers(&sample, &e, "").map(|()| e));
        match verdict {
            Ok(_) => checked += 1,
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "samples that failed:\n{}", failures.join("\n"));
    for required in [
        "subscribe_call",
        "subscribed_event",
        "offers_event",
        "update_event",
        "accept_launch_call",
        "decline_call",
        "acknowledge_call",
        "reconcile_call",
    ] {
        assert!(dir.join(format!("{required}.json")).exists(), "{required}.json is present");
    }
    assert!(checked >= 20, "only {checked} samples checked");
}
