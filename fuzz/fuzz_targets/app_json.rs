//! App and group bodies as the REST API receives them: parsing, normalization and validation
//! never panic, and an accepted app is valid and survives being written and read back.
#![no_main]

use framework_core::app::{self, AppDefinition};
use framework_core::ids::PathId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let root = PathId::root();
    let base = PathId::parse("/team").unwrap_or_default();
    if let Ok(parsed) = app::parse_app(data, &root) {
        assert_eq!(app::validate(&parsed), Ok(()), "an accepted app must be valid");
        let written = serde_json::to_vec(&parsed).expect("apps serialize");
        let again = app::parse_app(&written, &root).expect("a written app parses again");
        assert_eq!(again, parsed, "written: {}", String::from_utf8_lossy(&written));
        let via_serde: AppDefinition = serde_json::from_slice(&written).expect("serde reads what it wrote");
        assert_eq!(via_serde, parsed);
        let _ = app::task_env(&parsed, &framework_core::ids::InstanceId::new(&parsed.id, "u").task_id(1), "host", &[31000]);
    }
    let current = app::parse_app(br#"{"id": "/team/web", "cmd": "serve", "portDefinitions": [{"port": 0, "name": "http"}]}"#, &root);
    if let Ok(current) = current
        && let Ok(patched) = app::apply_patch(&current, data, &base)
    {
        assert_eq!(app::validate(&patched), Ok(()), "a patched app must be valid");
    }
    if let Ok(group) = app::parse_group(data, &base) {
        for a in group.all_apps() {
            assert_eq!(app::validate(a), Ok(()), "apps of an accepted group must be valid");
        }
    }
    let _ = app::parse_group_request(data, &base);
    if let Err(e) = app::parse_app(data, &base) {
        assert!(matches!(e.status(), 400 | 422));
        let _ = e.to_json();
    }
});
