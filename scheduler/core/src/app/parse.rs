//! The request pipeline for app bodies: JSON → shape (400/422 "Invalid JSON") → deprecated-field
//! rules → normalization → validation (422 "Object is not valid"), as Marathon 1.10's
//! `AppHelpers.appNormalization` runs it; plus partial updates and rollback bodies.

use serde_json::{Map, Value};

use super::definition::AppDefinition;
use super::error::{AppError, Violation, Violations, prefixed};
use super::normalize::normalize;
use super::read::{Obj, parse_timestamp, read_app, timestamp};
use super::validate::{validate, validate_legacy};
use crate::ids::{PathId, Timestamp};

/// Marathon's message for a `version` mixed with other fields.
pub const VERSION_ONLY: &str = "The 'version' field may only be combined with the 'id' field.";

/// Parses an app body (POST `/v2/apps`, or an app inside a group), resolving its id and
/// dependencies relative to `base` (the root `/` for `/v2/apps`), then normalizes and
/// validates it.
pub fn parse_app(body: &[u8], base: &PathId) -> Result<AppDefinition, AppError> {
    let value = parse_json(body)?;
    app_from_value(&value, "", base)
}

/// Applies a partial update (PATCH, or PUT with `partialUpdate=true`) to `current`: every field
/// given (not `null`) in `patch` replaces the current one, the rest stay; `id` in the body is
/// ignored. Deprecated fields in the patch replace their canonical twins (`ports` replaces
/// `portDefinitions`, `uris` replaces `fetch`, `container.docker.network` replaces `networks`).
/// Relative dependencies in the patch are resolved against `base`. The result is normalized and
/// validated, so its error paths name the patch's fields.
///
/// A rollback body (`{"version": ...}`, optionally with `id`; see [`is_version_only`]) is not a
/// patch: callers look it up first. Given one anyway, this returns `current` unchanged; a
/// `version` mixed with other fields is refused with [`VERSION_ONLY`].
pub fn apply_patch(current: &AppDefinition, patch: &[u8], base: &PathId) -> Result<AppDefinition, AppError> {
    let value = parse_json(patch)?;
    let mut e = Violations::default();
    let Some(o) = Obj::new(&value, "", &mut e) else {
        return Err(AppError::malformed(e.into_vec()));
    };
    check_version_rule(&value)?;
    if let Some((v, p)) = o.field("version") {
        return match timestamp(v, &p, &mut e) {
            Some(_) => Ok(current.clone()),
            None => Err(AppError::malformed(e.into_vec())),
        };
    }
    let mut merged = match serde_json::to_value(current) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    if o.has("ports") {
        merged.remove("portDefinitions");
    }
    if o.has("uris") {
        merged.remove("fetch");
    }
    let docker_network = value.pointer("/container/docker/network").is_some_and(|n| !n.is_null());
    if (docker_network || o.has("ipAddress")) && !o.has("networks") {
        merged.remove("networks");
    }
    if let Value::Object(fields) = &value {
        for (key, v) in fields {
            if key != "id" && !v.is_null() {
                merged.insert(key.clone(), v.clone());
            }
        }
    }
    app_from_value(&Value::Object(merged), "", base)
}

/// The version a rollback body asks for: `{"version": "<timestamp>"}`, optionally with `id`
/// (other fields given as `null` do not count). `None` for any other body.
pub fn is_version_only(patch: &Value) -> Option<Timestamp> {
    let fields = patch.as_object()?;
    let version = parse_timestamp(fields.get("version")?.as_str()?)?;
    fields.iter().all(|(k, v)| v.is_null() || k == "id" || k == "version").then_some(version)
}

/// Marathon's update rule: a `version` may only come with an `id` (422 [`VERSION_ONLY`] at `/`).
/// `apply_patch` applies it; callers handling full-replacement PUT bodies can apply it too.
pub fn check_version_rule(body: &Value) -> Result<(), AppError> {
    let Some(fields) = body.as_object() else {
        return Ok(());
    };
    let has_version = fields.get("version").is_some_and(|v| !v.is_null());
    let others = fields.iter().any(|(k, v)| !v.is_null() && k != "id" && k != "version");
    if has_version && others { Err(AppError::Invalid(vec![Violation::new("/", VERSION_ONLY)])) } else { Ok(()) }
}

/// Parses a request body as JSON; syntax errors and empty bodies are HTTP 400.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::Syntax {
            message: "Please specify data in JSON format".to_string(),
            detail: "No content to map due to end-of-input".to_string(),
        });
    }
    serde_json::from_slice(body).map_err(|err| AppError::Syntax { message: "Invalid JSON".to_string(), detail: err.to_string() })
}

/// Reads, checks, normalizes and validates the app at `path` of a body.
pub(crate) fn app_from_value(value: &Value, path: &str, base: &PathId) -> Result<AppDefinition, AppError> {
    let translated = translate_ip_address(value).map_err(|found| AppError::Invalid(prefixed(path, found)))?;
    let value = translated.as_ref().unwrap_or(value);
    let raw = read_app(value, path, base).map_err(AppError::malformed)?;
    check_app(raw, value).map_err(|found| AppError::Invalid(prefixed(path, found)))
}

/// The network name Marathon reads as "the Mesos bridge" in a deprecated `ipAddress`
/// (`--mesos_bridge_name`'s default).
const MESOS_BRIDGE_NAME: &str = "mesos-bridge";

/// Marathon 1.10's translation of the deprecated `ipAddress` (`AppNormalization`'s
/// `NetworkTranslation` and `migrateIpDiscovery`), done on the JSON before the app is read:
/// - with `container.docker.network` HOST, USER or BRIDGE: `networks` is `[{mode: host}]`,
///   `[{mode: container, name: networkName}]` or `[{mode: container/bridge}]` (the docker
///   network is dropped);
/// - without: `[{mode: container/bridge}]` for the name `mesos-bridge`, else
///   `[{mode: container, name: networkName}]`;
/// - `ipAddress.labels` become the network's labels; an app without a container gets an empty
///   MESOS container;
/// - `ipAddress.discovery.ports` become the MESOS container's `portMappings` (container port,
///   name, protocol, labels; no host port); with any other container type, or next to given
///   port mappings, they are refused;
/// - next to a non-empty `networks` the app is refused ("cannot mix deprecated and canonical
///   network APIs").
///
/// Marathon answers its refusals here with HTTP 500; they are 422s here. `None`: no `ipAddress`.
fn translate_ip_address(value: &Value) -> Result<Option<Value>, Vec<Violation>> {
    let Some(ip) = value.get("ipAddress").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let mut e = Violations::default();
    let Some(ip) = ip.as_object() else {
        e.add("/ipAddress", "error.expected.jsobject");
        return Err(e.into_vec());
    };
    let Some(mut app) = value.as_object().cloned() else {
        return Ok(None);
    };
    if value.get("networks").and_then(Value::as_array).is_some_and(|n| !n.is_empty()) {
        e.add("/", "cannot mix deprecated and canonical network APIs");
        return Err(e.into_vec());
    }
    let name = ip.get("networkName").and_then(Value::as_str);
    let labels = ip.get("labels").filter(|l| !l.is_null());
    let network = |mode: &str, name: Option<&str>| {
        let mut n = Map::new();
        n.insert("mode".into(), mode.into());
        if let Some(name) = name {
            n.insert("name".into(), name.into());
        }
        if let Some(labels) = labels.filter(|_| mode != "host") {
            n.insert("labels".into(), labels.clone());
        }
        Value::Object(n)
    };
    let networks = match value.pointer("/container/docker/network").filter(|n| !n.is_null()) {
        Some(Value::String(kind)) if kind == "HOST" => network("host", None),
        Some(Value::String(kind)) if kind == "USER" => network("container", name),
        Some(Value::String(kind)) if kind == "BRIDGE" => network("container/bridge", None),
        Some(other) => {
            let kind = other.as_str().map_or_else(|| other.to_string(), str::to_owned);
            e.add("/container/docker/network", format!("unsupported docker network type {kind}"));
            return Err(e.into_vec());
        }
        None if name == Some(MESOS_BRIDGE_NAME) => network("container/bridge", None),
        None => network("container", name),
    };
    app.insert("networks".into(), Value::Array(vec![networks]));
    let container = app.entry("container").or_insert(Value::Null);
    if container.is_null() {
        *container = serde_json::json!({"type": "MESOS"});
    }
    if let Some(c) = container.as_object_mut() {
        if let Some(Value::Object(docker)) = c.get_mut("docker") {
            docker.remove("network");
        }
        let ports = ip.get("discovery").and_then(|d| d.get("ports")).and_then(Value::as_array).filter(|p| !p.is_empty());
        if let Some(ports) = ports {
            let kind = c.get("type").and_then(Value::as_str).unwrap_or("DOCKER").to_owned();
            let given = |v: Option<&Value>| v.is_some_and(|m| !m.is_null());
            if kind != "MESOS" {
                e.add("/ipAddress/discovery/ports", format!("ipAddress.discovery.ports do not apply for container type {kind}"));
            } else if given(c.get("portMappings")) || given(c.get("docker").and_then(|d| d.get("portMappings"))) {
                e.add("/ipAddress/discovery/ports", "container.portMappings and ipAddress.discovery.ports must not both be set");
            } else {
                let mappings = ports
                    .iter()
                    .map(|port| {
                        let mut m = Map::new();
                        for (from, to) in [("number", "containerPort"), ("name", "name"), ("protocol", "protocol"), ("labels", "labels")] {
                            if let Some(v) = port.get(from).filter(|v| !v.is_null()) {
                                m.insert(to.into(), v.clone());
                            }
                        }
                        Value::Object(m)
                    })
                    .collect();
                c.insert("portMappings".into(), Value::Array(mappings));
            }
        }
    }
    app.remove("ipAddress");
    e.into_result()?;
    Ok(Some(Value::Object(app)))
}

/// Marathon 1.10 app fields this scheduler does not carry to Mesos: refused with a 422 that
/// says what to do rather than dropped (issue 19). A `null` counts as absent.
const NOT_CARRIED: &[(&str, &str)] = &[
    ("/resourceLimits", "resourceLimits is not supported: tasks are limited to the cpus and mem they ask for; remove resourceLimits"),
    ("/check", "check (Mesos task checks) is not supported: use healthChecks, or readinessChecks for deployments"),
    ("/executorResources", "executorResources is not supported: remove it (executors get Mesos's default resources)"),
    ("/container/linuxInfo", "container.linuxInfo is not supported: remove it (seccomp and shared memory are the agent's defaults)"),
];

/// The rules of an app as read from `value`: fields not carried to Mesos ([`NOT_CARRIED`], a
/// custom executor, a TTY), deprecated-field rules, normalization, validation. Paths are
/// relative to the app.
pub(crate) fn check_app(raw: AppDefinition, value: &Value) -> Result<AppDefinition, Vec<Violation>> {
    let mut legacy = Violations::default();
    for (path, why) in NOT_CARRIED {
        if value.pointer(path).is_some_and(|v| !v.is_null()) {
            legacy.add(path, *why);
        }
    }
    if !raw.executor.is_empty() && raw.executor != "//cmd" {
        legacy.add(
            "/executor",
            "custom executors are not supported: leave executor empty or \"//cmd\" (Docker apps can run through framework-executor with the label FRAMEWORK_EXECUTOR)",
        );
    }
    if raw.tty == Some(true) {
        legacy.add("/tty", "tty is not supported: tasks run without a terminal; remove tty or set it to false");
    }
    if let Err(found) = validate_legacy(&raw) {
        legacy.extend(found);
    }
    legacy.into_result()?;
    let app = normalize(raw)?;
    validate(&app)?;
    Ok(app)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::app::definition::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn root() -> PathId {
        PathId::root()
    }

    fn parse(v: Value) -> Result<AppDefinition, AppError> {
        parse_app(v.to_string().as_bytes(), &root())
    }

    #[test]
    fn error_classes() {
        let e = parse_app(b"{\"id\": ", &root()).unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(e.to_json()["message"], "Invalid JSON");
        assert!(e.to_json()["details"].is_string());
        let e = parse_app(b"  ", &root()).unwrap_err();
        assert_eq!((e.status(), e.to_json()["message"].as_str()), (400, Some("Please specify data in JSON format")));

        let e = parse(json!({"id": 123})).unwrap_err();
        assert_eq!(e.status(), 422);
        assert_eq!(e.to_json(), json!({"message": "Invalid JSON", "details": [{"path": "/id", "errors": ["error.expected.jsstring"]}]}));

        let e = parse(json!({"id": "/a", "instances": "x", "cpus": "y"})).unwrap_err();
        assert_eq!(e.details().len(), 2);
        assert!(matches!(e, AppError::Malformed { .. }));

        let e = parse(json!({"id": "/a"})).unwrap_err();
        assert_eq!(
            e.to_json(),
            json!({"message": "Object is not valid", "details": [{"path": "/",
                "errors": ["AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."]}]})
        );
    }

    #[test]
    fn ids_and_dependencies_are_relative_to_base() {
        let base = PathId::parse("/prod").unwrap();
        let a = parse_app(br#"{"id": "web", "cmd": "run", "dependencies": ["db", "/shared/cache", "../x"]}"#, &base).unwrap();
        assert_eq!(a.id.to_string(), "/prod/web");
        let deps: Vec<String> = a.dependencies.iter().map(ToString::to_string).collect();
        assert_eq!(deps, ["/prod/db", "/shared/cache", "/x"]);
    }

    #[test]
    fn ip_address_becomes_networks_as_in_marathon() {
        let networks = |a: &AppDefinition| serde_json::to_value(&a.networks).unwrap();
        // A named network, with labels and discovery ports: an empty MESOS container gets them.
        let a = parse(json!({"id": "/a", "cmd": "x1", "ipAddress": {"networkName": "dev", "labels": {"k": "v"},
            "discovery": {"ports": [{"number": 8080, "name": "http", "protocol": "tcp"}]}}}))
        .unwrap();
        assert_eq!(networks(&a), json!([{"mode": "container", "name": "dev", "labels": {"k": "v"}}]));
        let c = a.container.as_ref().unwrap();
        assert_eq!(c.kind, ContainerType::Mesos);
        let pm = c.port_mappings.as_ref().unwrap();
        assert_eq!((pm.len(), pm[0].container_port, pm[0].name.as_deref(), pm[0].host_port), (1, 8080, Some("http"), None));
        assert!(a.port_definitions.as_ref().is_none_or(Vec::is_empty));
        // The Mesos bridge's name, and the Docker network kinds.
        let a = parse(json!({"id": "/a", "cmd": "x1", "ipAddress": {"networkName": "mesos-bridge"}})).unwrap();
        assert_eq!(networks(&a), json!([{"mode": "container/bridge"}]));
        for (kind, want) in [
            ("BRIDGE", json!([{"mode": "container/bridge"}])),
            ("USER", json!([{"mode": "container", "name": "dev"}])),
            ("HOST", json!([{"mode": "host"}])),
        ] {
            let a = parse(json!({"id": "/a", "ipAddress": {"networkName": "dev"},
                "container": {"type": "DOCKER", "docker": {"image": "i", "network": kind}}}))
            .unwrap();
            assert_eq!(networks(&a), want, "{kind}");
            assert!(a.container.as_ref().unwrap().docker.as_ref().unwrap().network.is_none());
        }
        // Without a name: a container network needs one (no --default_network_name).
        let e = parse(json!({"id": "/a", "cmd": "x1", "ipAddress": {}})).unwrap_err();
        assert_eq!(e.status(), 422);
        assert!(e.details().iter().any(|d| d.path == "/networks"), "{:?}", e.details());
        // Refusals (Marathon's messages; its HTTP 500 is a 422 here).
        for (app, path, message) in [
            (
                json!({"id": "/a", "cmd": "x1", "ipAddress": {"networkName": "n"}, "networks": [{"mode": "host"}]}),
                "/",
                "cannot mix deprecated and canonical network APIs",
            ),
            (
                json!({"id": "/a", "ipAddress": {"networkName": "n", "discovery": {"ports": [{"number": 80, "name": "h", "protocol": "tcp"}]}},
                    "container": {"type": "DOCKER", "docker": {"image": "i"}}}),
                "/ipAddress/discovery/ports",
                "ipAddress.discovery.ports do not apply for container type DOCKER",
            ),
            (
                json!({"id": "/a", "cmd": "x1", "ipAddress": {"networkName": "n", "discovery": {"ports": [{"number": 80, "name": "h", "protocol": "tcp"}]}},
                    "container": {"type": "MESOS", "portMappings": [{"containerPort": 81}]}}),
                "/ipAddress/discovery/ports",
                "container.portMappings and ipAddress.discovery.ports must not both be set",
            ),
            (json!({"id": "/a", "cmd": "x1", "ipAddress": "n"}), "/ipAddress", "error.expected.jsobject"),
        ] {
            let e = parse(app).unwrap_err();
            assert_eq!((e.status(), e.details()[0].path.as_str(), e.details()[0].errors[0].as_str()), (422, path, message));
        }
        let r = parse(json!({"id": "/ip", "cmd": "sleep 1", "instances": 0, "ipAddress": {"networkName": "dev"}}));
        assert!(r.is_ok(), "{:?}", r.err().map(|e| e.to_json()));
        // A partial update naming ipAddress replaces the app's networks.
        let cur = parse(json!({"id": "/a", "cmd": "x1"})).unwrap();
        let next = apply_patch(&cur, br#"{"ipAddress": {"networkName": "dev"}}"#, &root()).unwrap();
        assert_eq!(networks(&next), json!([{"mode": "container", "name": "dev"}]));
    }

    #[test]
    fn fields_not_carried_to_mesos_are_refused_never_dropped() {
        for (field, value, path) in [
            ("resourceLimits", json!({"cpus": 2}), "/resourceLimits"),
            ("check", json!({"exec": {"command": {"shell": "true"}}}), "/check"),
            ("executorResources", json!({"cpus": 0.1}), "/executorResources"),
            ("container", json!({"type": "MESOS", "linuxInfo": {"seccomp": {"unconfined": true}}}), "/container/linuxInfo"),
            ("executor", json!("/opt/my-executor"), "/executor"),
            ("tty", json!(true), "/tty"),
        ] {
            let mut app = json!({"id": "/a", "cmd": "x1"});
            app[field] = value;
            let e = parse(app).unwrap_err();
            assert_eq!(e.status(), 422, "{field}");
            assert_eq!(e.details()[0].path, path, "{field}");
            assert!(e.details()[0].errors[0].contains("not supported"), "{field}: {:?}", e.details());
        }
        // What is carried or means nothing: accepted.
        for (field, value) in [("executor", json!("//cmd")), ("executor", json!("")), ("tty", json!(false)), ("check", Value::Null)] {
            let mut app = json!({"id": "/a", "cmd": "x1"});
            app[field] = value.clone();
            assert!(parse(app).is_ok(), "{field}: {value}");
        }
    }

    #[test]
    fn legacy_rules_come_before_normalization() {
        let e = parse(json!({"id": "/a", "cmd": "xx", "uris": ["http://a"], "fetch": [{"uri": "http://b"}]})).unwrap_err();
        assert_eq!(e, AppError::Invalid(vec![Violation::new("/uris", "may not be set in conjunction with fetch")]));
    }

    fn current() -> AppDefinition {
        parse(json!({"id": "/shop/web", "cmd": "serve", "instances": 2, "labels": {"a": "1"},
            "portDefinitions": [{"port": 0, "name": "http"}], "version": "2020-01-01T00:00:00.000Z"}))
        .unwrap()
    }

    #[test]
    fn patch_replaces_given_fields_only() {
        let cur = current();
        let next = apply_patch(&cur, br#"{"id": "/other", "instances": 5, "labels": {"b": "2"}, "cmd": null}"#, &root()).unwrap();
        assert_eq!(next.id, cur.id, "id in the body is ignored");
        assert_eq!(next.instances, 5);
        assert_eq!(next.labels.get("b").map(String::as_str), Some("2"));
        assert!(!next.labels.contains_key("a"), "top-level fields are replaced, not merged");
        assert_eq!(next.cmd, cur.cmd, "null means not given");
        assert_eq!(next.version, cur.version);
        assert!(next.is_only_scale_change(&cur) || next.labels != cur.labels);
    }

    #[test]
    fn patch_switching_to_bridge_networking() {
        let cur = current();
        let next = apply_patch(
            &cur,
            br#"{"networks": [{"mode": "container/bridge"}], "container": {"docker": {"image": "nginx"}, "portMappings": [{"containerPort": 80, "name": "http"}]}}"#,
            &root(),
        )
        .unwrap();
        assert_eq!(next.port_definitions, None);
        let pm = next.container.unwrap().port_mappings.unwrap();
        assert_eq!(pm[0].host_port, Some(0));
    }

    #[test]
    fn patch_with_deprecated_fields() {
        let cur = current();
        let next = apply_patch(&cur, br#"{"ports": [8080, 8081]}"#, &root()).unwrap();
        let ports: Vec<u32> = next.port_definitions.unwrap().iter().map(|d| d.port).collect();
        assert_eq!(ports, [8080, 8081]);
        let next = apply_patch(&cur, br#"{"container": {"docker": {"image": "i", "network": "BRIDGE"}}}"#, &root()).unwrap();
        assert_eq!(next.networks, vec![Network::of(NetworkMode::ContainerBridge)]);
    }

    #[test]
    fn patch_errors_name_patch_fields() {
        let e = apply_patch(&current(), br#"{"instances": -2, "cpus": "a"}"#, &root()).unwrap_err();
        assert_eq!(e.status(), 422);
        let paths: Vec<&str> = e.details().iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/instances", "/cpus"]);
        let e = apply_patch(&current(), br#"{"upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 2}}"#, &root())
            .unwrap_err();
        assert_eq!(e.details()[0].path, "/upgradeStrategy/maximumOverCapacity");
        assert_eq!(apply_patch(&current(), b"[]", &root()).unwrap_err().details()[0].errors, ["error.expected.jsobject"]);
    }

    #[test]
    fn many_errors_are_all_reported() {
        let bad: Vec<Value> = (0..20_000).map(|i| json!(["f", format!("OP{i}")])).collect();
        let e = parse(json!({"id": "/a", "cmd": "xx", "constraints": bad})).unwrap_err();
        assert_eq!((e.status(), e.details().len()), (422, 20_001));
        assert_eq!(e.details()[0], Violation::new("/constraints", "got 20000 items, expected 100 or less"));
        let labels: serde_json::Map<String, Value> = (0..20_000).map(|i| (i.to_string(), json!(i))).collect();
        let e = parse(json!({"id": "/a", "cmd": "xx", "labels": labels})).unwrap_err();
        assert_eq!(e.details().len(), 20_000);
        let app = AppDefinition {
            labels: (0..20_000).map(|i| (format!("l{i}"), "v".to_string())).collect(),
            container: Some(Container { port_mappings: Some(vec![PortMapping::default(); 5_000]), ..Container::of(ContainerType::Mesos) }),
            networks: vec![Network { name: Some("n".into()), ..Network::of(NetworkMode::Container) }],
            ..current()
        };
        let env = crate::app::task_env(&app, &crate::ids::InstanceId::new(&app.id, "u").task_id(1), "h", &[]);
        assert!(env.len() > 30_000);
    }

    #[test]
    fn version_bodies() {
        let v = json!({"version": "2020-01-01T00:00:00.000Z", "id": "/a", "cmd": null});
        assert_eq!(is_version_only(&v), Some("2020-01-01T00:00:00.000Z".parse().unwrap()));
        assert_eq!(is_version_only(&json!({"version": "2020-01-01T00:00:00.000Z", "instances": 1})), None);
        assert_eq!(is_version_only(&json!({"instances": 1})), None);
        assert_eq!(is_version_only(&json!({"version": "soon"})), None);
        assert_eq!(is_version_only(&json!({"version": "9223372036854775807-01-01T00:00:00Z"})), None);

        let e = apply_patch(&current(), br#"{"version": "2020-01-01T00:00:00.000Z", "instances": 3}"#, &root()).unwrap_err();
        assert_eq!(e, AppError::Invalid(vec![Violation::new("/", VERSION_ONLY)]));
        assert_eq!(apply_patch(&current(), br#"{"version": "2020-01-01T00:00:00.000Z"}"#, &root()).unwrap(), current());
        let e = apply_patch(&current(), br#"{"version": "soon"}"#, &root()).unwrap_err();
        assert_eq!(e.details()[0].path, "/version");
        assert!(check_version_rule(&json!({"id": "/a", "version": "x"})).is_ok());
    }

    /// Arbitrary JSON values, nested a few levels.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            "[a-zA-Z0-9/._ -]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(field_name(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Mostly real field names, so that arbitrary values reach the deeper readers.
    fn field_name() -> impl Strategy<Value = String> {
        let known = prop::sample::select(vec![
            "id",
            "cmd",
            "args",
            "instances",
            "cpus",
            "mem",
            "container",
            "docker",
            "image",
            "network",
            "portMappings",
            "portDefinitions",
            "ports",
            "networks",
            "mode",
            "name",
            "healthChecks",
            "readinessChecks",
            "portIndex",
            "constraints",
            "env",
            "labels",
            "upgradeStrategy",
            "unreachableStrategy",
            "fetch",
            "uris",
            "volumes",
            "version",
            "versionInfo",
            "dependencies",
            "type",
            "hostPort",
            "containerPort",
            "secret",
            "secrets",
        ]);
        prop_oneof![known.prop_map(str::to_string), "[a-z]{1,6}"]
    }

    /// App bodies built from plausible parts: many are valid, the rest exercise every rule.
    fn app_body() -> impl Strategy<Value = Value> {
        let network = prop_oneof![
            Just(json!(null)),
            Just(json!([{"mode": "host"}])),
            Just(json!([{"mode": "container/bridge"}])),
            Just(json!([{"mode": "container", "name": "n1"}])),
        ];
        let container = prop_oneof![
            Just(json!(null)),
            "[a-z]{1,8}(:[0-9]{1,2})?".prop_map(|i| json!({"docker": {"image": i}})),
            Just(json!({"type": "MESOS"})),
            Just(json!({"docker": {"image": "nginx", "network": "BRIDGE", "portMappings": [{"containerPort": 80, "name": "http"}]}})),
        ];
        let ports = prop_oneof![Just(json!(null)), prop::collection::vec(0u32..3000, 0..3).prop_map(|p| json!(p)),];
        let health = prop_oneof![
            Just(json!(null)),
            Just(json!([{"protocol": "HTTP"}])),
            Just(json!([{"protocol": "COMMAND", "command": {"value": "true"}}])),
            Just(json!([{"protocol": "TCP", "portIndex": 1}])),
        ];
        (
            "[a-z][a-z0-9-]{0,6}[a-z0-9]",
            prop::option::of("[a-z ]{2,12}"),
            0u32..20,
            (1u32..4000).prop_map(|m| f64::from(m) / 1000.0),
            network,
            container,
            ports,
            health,
            prop::collection::btree_map("[a-z]{1,5}", "[a-z0-9]{0,5}", 0..3),
            prop::option::of((0u32..=1000, 0u32..=1000)),
            prop::option::of(prop::sample::select(vec!["UNIQUE", "CLUSTER", "MAX_PER"])),
        )
            .prop_map(|(id, cmd, instances, cpus, networks, container, ports, health, labels, strategy, op)| {
                let mut body = json!({"id": id, "instances": instances, "cpus": cpus, "labels": labels});
                let fields = [
                    ("cmd", json!(cmd)),
                    ("networks", networks),
                    ("container", container),
                    ("ports", ports),
                    ("healthChecks", health),
                    (
                        "upgradeStrategy",
                        strategy.map_or(
                            Value::Null,
                            |(a, b)| json!({"minimumHealthCapacity": f64::from(a) / 1000.0, "maximumOverCapacity": f64::from(b) / 1000.0}),
                        ),
                    ),
                    (
                        "constraints",
                        op.map_or(Value::Null, |op| if op == "MAX_PER" { json!([["rack", op, "2"]]) } else { json!([["hostname", op]]) }),
                    ),
                ];
                if let Some(o) = body.as_object_mut() {
                    for (k, v) in fields {
                        if !v.is_null() {
                            o.insert(k.to_string(), v);
                        }
                    }
                }
                body
            })
    }

    proptest! {
        #[test]
        fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_app(&bytes, &root());
            let _ = apply_patch(&current(), &bytes, &root());
        }

        #[test]
        fn never_panics_on_json(v in json_value()) {
            let body = v.to_string();
            let _ = parse_app(body.as_bytes(), &root());
            let _ = apply_patch(&current(), body.as_bytes(), &root());
            let _ = is_version_only(&v);
            if let Some(o) = v.as_object() {
                let mut with_id = o.clone();
                with_id.insert("id".into(), json!("/p"));
                let _ = parse_app(Value::Object(with_id).to_string().as_bytes(), &root());
            }
        }

        #[test]
        fn valid_apps_round_trip(body in app_body()) {
            if let Ok(app) = parse_app(body.to_string().as_bytes(), &root()) {
                let written = serde_json::to_vec(&app).unwrap();
                let again = parse_app(&written, &root());
                prop_assert_eq!(again.as_ref(), Ok(&app), "{}", String::from_utf8_lossy(&written));
                let via_serde: AppDefinition = serde_json::from_slice(&written).unwrap();
                prop_assert_eq!(&via_serde, &app);
                prop_assert_eq!(app.config_key(), via_serde.config_key());
            }
        }
    }

    #[test]
    fn generated_bodies_are_often_valid() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let strategy = app_body();
        let valid = (0..200)
            .filter(|_| {
                let body = strategy.new_tree(&mut runner).unwrap().current();
                parse_app(body.to_string().as_bytes(), &root()).is_ok()
            })
            .count();
        assert!(valid > 50, "only {valid} of 200 generated apps are valid");
    }
}
