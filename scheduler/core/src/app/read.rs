//! Reading app JSON into [`AppDefinition`], reporting every shape error the way Marathon's
//! RAML-generated play-json readers do.
//!
//! Marathon reads bodies with readers generated from its RAML types: a wrong JSON type gives
//! `error.expected.jsstring` / `jsnumber` / `jsboolean` / `jsarray` / `jsobject` (`error.expected.int`
//! for a non-integral or too large integer), a missing required field `error.path.missing`, and
//! RAML constraints `error.min`, `error.max`, `error.minLength`, `error.maxLength`,
//! `error.pattern`; unknown enum literals `error.unknown.enum.literal` (literals are matched
//! ignoring case). Paths are play-json's: `/container/docker/image`, `/constraints(0)(1)`,
//! `/labels/KEY`. `null` counts as "not given" everywhere, unknown fields are ignored.
//!
//! The reader applies Marathon's defaults but no normalization ([`super::normalize`]) and no
//! validation ([`super::validate`]). It never fails fast: every field is read and every error
//! recorded, so one response lists them all.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::definition::*;
use super::error::{Violation, Violations};
use crate::ids::{PathId, Timestamp};

/// Reads an app body (a JSON value) whose ids are relative to `base`. Errors carry paths below
/// `path` (`""` for a top-level body, `/apps(0)` for an app in a group).
pub(crate) fn read_app(value: &Value, path: &str, base: &PathId) -> Result<AppDefinition, Vec<Violation>> {
    let mut e = Violations::default();
    let app = app(value, path, base, &mut e);
    match app {
        Some(app) if e.is_empty() => Ok(app),
        _ => Err(e.into_vec()),
    }
}

/// Storage and tests can deserialize apps with serde: the same reader, ids taken as absolute,
/// no normalization and no validation.
impl<'de> Deserialize<'de> for AppDefinition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        read_app(&value, "", &PathId::root()).map_err(|details| {
            let text: Vec<String> = details.iter().map(|v| format!("{}: {}", v.path, v.errors.join("; "))).collect();
            serde::de::Error::custom(format!("not a Marathon app definition: {}", text.join(", ")))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Paths and primitive readers.

/// `path/key`.
pub(crate) fn at(path: &str, key: &str) -> String {
    format!("{path}/{key}")
}

/// `path(index)`.
pub(crate) fn nth(path: &str, index: usize) -> String {
    format!("{path}({index})")
}

/// A JSON object being read.
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    /// `value` as an object, or `error.expected.jsobject`.
    pub(crate) fn new(value: &'a Value, path: &str, e: &mut Violations) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Self { map, path: path.to_string() }),
            _ => {
                e.add(path, "error.expected.jsobject");
                None
            }
        }
    }

    /// The field `key` unless absent or null, with its path.
    pub(crate) fn field(&self, key: &str) -> Option<(&'a Value, String)> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some((v, at(&self.path, key))),
        }
    }

    /// Whether `key` is given (present and not null).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.field(key).is_some()
    }

    /// Reads an optional field.
    pub(crate) fn opt<T>(
        &self,
        key: &str,
        e: &mut Violations,
        read: impl FnOnce(&'a Value, &str, &mut Violations) -> Option<T>,
    ) -> Option<T> {
        let (v, p) = self.field(key)?;
        read(v, &p, e)
    }

    /// Reads a required field (`error.path.missing` when absent).
    pub(crate) fn req<T>(
        &self,
        key: &str,
        e: &mut Violations,
        read: impl FnOnce(&'a Value, &str, &mut Violations) -> Option<T>,
    ) -> Option<T> {
        match self.map.get(key) {
            None => {
                e.add(&at(&self.path, key), "error.path.missing");
                None
            }
            Some(v) => read(v, &at(&self.path, key), e),
        }
    }
}

/// A string.
pub(crate) fn string(v: &Value, p: &str, e: &mut Violations) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        _ => {
            e.add(p, "error.expected.jsstring");
            None
        }
    }
}

/// A string of `min..=max` characters.
fn string_len(v: &Value, p: &str, e: &mut Violations, min: usize, max: usize) -> Option<String> {
    let s = string(v, p, e)?;
    let n = s.chars().count();
    if n < min {
        e.add(p, "error.minLength");
        return None;
    }
    if n > max {
        e.add(p, "error.maxLength");
        return None;
    }
    Some(s)
}

/// A non-empty string.
fn string1(v: &Value, p: &str, e: &mut Violations) -> Option<String> {
    string_len(v, p, e, 1, usize::MAX)
}

/// A boolean.
pub(crate) fn boolean(v: &Value, p: &str, e: &mut Violations) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => {
            e.add(p, "error.expected.jsboolean");
            None
        }
    }
}

/// An integer in `min..=max` (`long` widens the accepted width to 64 bits, as int64 fields do).
fn integer(v: &Value, p: &str, e: &mut Violations, min: i64, max: i64, long: bool) -> Option<i64> {
    let Value::Number(n) = v else {
        e.add(p, "error.expected.jsnumber");
        return None;
    };
    let (lo, hi, key) =
        if long { (i64::MIN, i64::MAX, "error.expected.long") } else { (i64::from(i32::MIN), i64::from(i32::MAX), "error.expected.int") };
    let whole = match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => Some(i),
        // Whole floats such as `2.0` are integers to play-json; the bounds keep the cast exact.
        (None, Some(f)) if f.fract() == 0.0 && (-9.0e15..=9.0e15).contains(&f) => Some(f as i64),
        _ => None,
    };
    let Some(i) = whole.filter(|i| (lo..=hi).contains(i)) else {
        e.add(p, key);
        return None;
    };
    if i < min {
        e.add(p, "error.min");
        return None;
    }
    if i > max {
        e.add(p, "error.max");
        return None;
    }
    Some(i)
}

/// A non-negative int32.
fn count(v: &Value, p: &str, e: &mut Violations) -> Option<u32> {
    integer(v, p, e, 0, i64::from(i32::MAX), false).and_then(|i| u32::try_from(i).ok())
}

/// A port number, 0..=65535 (RAML `AnyPort`).
fn port(v: &Value, p: &str, e: &mut Violations) -> Option<u32> {
    integer(v, p, e, 0, 65_535, false).and_then(|i| u32::try_from(i).ok())
}

/// A non-negative int64.
fn seconds64(v: &Value, p: &str, e: &mut Violations) -> Option<u64> {
    integer(v, p, e, 0, i64::MAX, true).and_then(|i| u64::try_from(i).ok())
}

/// A number, optionally bounded.
fn number(v: &Value, p: &str, e: &mut Violations, min: Option<f64>, max: Option<f64>) -> Option<f64> {
    let Some(f) = v.as_f64() else {
        e.add(p, "error.expected.jsnumber");
        return None;
    };
    if min.is_some_and(|m| f < m) {
        e.add(p, "error.min");
        return None;
    }
    if max.is_some_and(|m| f > m) {
        e.add(p, "error.max");
        return None;
    }
    Some(f)
}

/// An array whose elements are read by `item`; bad elements are reported and dropped.
pub(crate) fn list<'a, T>(
    v: &'a Value,
    p: &str,
    e: &mut Violations,
    mut item: impl FnMut(&'a Value, &str, &mut Violations) -> Option<T>,
) -> Option<Vec<T>> {
    let Value::Array(items) = v else {
        e.add(p, "error.expected.jsarray");
        return None;
    };
    Some(items.iter().enumerate().filter_map(|(i, x)| item(x, &nth(p, i), e)).collect())
}

/// An object of strings (labels, options).
fn string_map(v: &Value, p: &str, e: &mut Violations) -> Option<BTreeMap<String, String>> {
    let o = Obj::new(v, p, e)?;
    let mut out = BTreeMap::new();
    for (k, x) in o.map {
        if let Some(s) = string(x, &at(p, k), e) {
            out.insert(k.clone(), s);
        }
    }
    Some(out)
}

/// An enum literal.
fn literal<T>(v: &Value, p: &str, e: &mut Violations, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    let found = v.as_str().and_then(parse);
    if found.is_none() {
        e.add(p, "error.unknown.enum.literal");
    }
    found
}

/// A path id relative to `base` (`error.pattern` when it breaks Marathon's id rules).
fn path_id(v: &Value, p: &str, e: &mut Violations, base: &PathId) -> Option<PathId> {
    let raw = string1(v, p, e)?;
    match PathId::parse_relative(&raw, base) {
        Ok(id) => Some(id),
        Err(_) => {
            e.add(p, "error.pattern");
            None
        }
    }
}

/// An ISO-8601 timestamp.
pub(crate) fn timestamp(v: &Value, p: &str, e: &mut Violations) -> Option<Timestamp> {
    let raw = string(v, p, e)?;
    let t = parse_timestamp(&raw);
    if t.is_none() {
        e.add(p, "error.expected.date.isoformat");
    }
    t
}

/// Parses an ISO-8601 timestamp of a year with at most six digits (the id module's parser
/// overflows on larger years, so they are refused before reaching it).
pub(crate) fn parse_timestamp(raw: &str) -> Option<Timestamp> {
    let year = raw.split('-').next().unwrap_or_default();
    if year.len() > 6 {
        return None;
    }
    raw.parse().ok()
}

/// Whether `s` matches the executor pattern `^(//cmd)|(/?[^/]+(/[^/]+)*)|$` as a whole.
pub(crate) fn valid_executor(s: &str) -> bool {
    if s.is_empty() || s == "//cmd" {
        return true;
    }
    let rest = s.strip_prefix('/').unwrap_or(s);
    !rest.is_empty() && rest.split('/').all(|part| !part.is_empty())
}

/// Whether `s` matches the readiness `portName` pattern `^[a-z][-a-z0-9]*$`.
fn valid_port_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase()) && chars.all(|c| c == '-' || c.is_ascii_lowercase() || c.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------------
// The app and its parts.

/// Reads an app object; `None` only when `value` is not an object.
fn app(value: &Value, path: &str, base: &PathId, e: &mut Violations) -> Option<AppDefinition> {
    let o = Obj::new(value, path, e)?;
    let id = o.req("id", e, |v, p, e| path_id(v, p, e, base)).unwrap_or_else(|| base.clone());
    let mut a = AppDefinition::new(id);
    // Raw defaults: normalization decides networks and port definitions.
    a.networks = Vec::new();
    a.port_definitions = None;

    a.cmd = o.opt("cmd", e, string1);
    a.args = o.opt("args", e, |v, p, e| list(v, p, e, string)).unwrap_or_default();
    a.user = o.opt("user", e, string);
    a.env = o.opt("env", e, env).unwrap_or_default();
    a.instances = o.opt("instances", e, count).unwrap_or(a.instances);
    a.cpus = o.opt("cpus", e, |v, p, e| number(v, p, e, Some(0.001), None)).unwrap_or(a.cpus);
    a.mem = o.opt("mem", e, |v, p, e| number(v, p, e, Some(0.0), None)).unwrap_or(a.mem);
    a.disk = o.opt("disk", e, |v, p, e| number(v, p, e, None, None)).unwrap_or(a.disk);
    a.gpus = o.opt("gpus", e, count).unwrap_or(a.gpus);
    a.executor = o
        .opt("executor", e, |v, p, e| {
            let s = string(v, p, e)?;
            if valid_executor(&s) {
                Some(s)
            } else {
                e.add(p, "error.pattern");
                None
            }
        })
        .unwrap_or_default();
    a.constraints = o.opt("constraints", e, |v, p, e| list(v, p, e, |v, p, e| list(v, p, e, string))).unwrap_or_default();
    a.uris = o.opt("uris", e, |v, p, e| list(v, p, e, |v, p, e| string_len(v, p, e, 1, 1024))).unwrap_or_default();
    a.fetch = o.opt("fetch", e, |v, p, e| list(v, p, e, artifact)).unwrap_or_default();
    a.store_urls = o.opt("storeUrls", e, |v, p, e| list(v, p, e, string1)).unwrap_or_default();
    a.backoff_seconds = o.opt("backoffSeconds", e, count).unwrap_or(a.backoff_seconds);
    a.backoff_factor = o.opt("backoffFactor", e, |v, p, e| number(v, p, e, Some(1.0), None)).unwrap_or(a.backoff_factor);
    a.max_launch_delay_seconds = o.opt("maxLaunchDelaySeconds", e, count).unwrap_or(a.max_launch_delay_seconds);
    a.container = o.opt("container", e, container);
    a.health_checks = o.opt("healthChecks", e, |v, p, e| list(v, p, e, health_check)).unwrap_or_default();
    a.readiness_checks = o.opt("readinessChecks", e, |v, p, e| list(v, p, e, readiness_check)).unwrap_or_default();
    a.dependencies = o.opt("dependencies", e, |v, p, e| list(v, p, e, |v, p, e| path_id(v, p, e, base))).unwrap_or_default();
    a.upgrade_strategy = o.opt("upgradeStrategy", e, upgrade_strategy).unwrap_or_default();
    a.labels = o.opt("labels", e, string_map).unwrap_or_default();
    a.accepted_resource_roles = o.opt("acceptedResourceRoles", e, |v, p, e| list(v, p, e, string));
    a.role = o.opt("role", e, string);
    a.require_ports = o.opt("requirePorts", e, boolean).unwrap_or(false);
    a.port_definitions = o.opt("portDefinitions", e, |v, p, e| list(v, p, e, port_definition));
    a.ports = o.opt("ports", e, |v, p, e| list(v, p, e, port));
    a.networks = o.opt("networks", e, |v, p, e| list(v, p, e, network)).unwrap_or_default();
    a.kill_selection = o.opt("killSelection", e, |v, p, e| literal(v, p, e, KillSelection::from_name)).unwrap_or_default();
    a.unreachable_strategy = o.opt("unreachableStrategy", e, unreachable_strategy).unwrap_or_default();
    a.task_kill_grace_period_seconds = o.opt("taskKillGracePeriodSeconds", e, count);
    a.tty = o.opt("tty", e, boolean);
    a.secrets = o.opt("secrets", e, secrets).unwrap_or_default();
    a.version = o.opt("version", e, timestamp);
    a.version_info = o.opt("versionInfo", e, version_info);
    // `residency` is deprecated and has no effect; `ipAddress` is translated by the parser.
    Some(a)
}

/// `env`: strings or `{"secret": name}`.
fn env(v: &Value, p: &str, e: &mut Violations) -> Option<BTreeMap<String, EnvValue>> {
    let o = Obj::new(v, p, e)?;
    let mut out = BTreeMap::new();
    for (k, x) in o.map {
        let xp = at(p, k);
        let value = match x {
            Value::Object(_) => Obj::new(x, &xp, e).and_then(|s| s.req("secret", e, string)).map(|secret| EnvValue::Secret { secret }),
            _ => string(x, &xp, e).map(EnvValue::Value),
        };
        if let Some(value) = value {
            out.insert(k.clone(), value);
        }
    }
    Some(out)
}

/// `secrets`: name → `{"source": path}`.
fn secrets(v: &Value, p: &str, e: &mut Violations) -> Option<BTreeMap<String, SecretDef>> {
    let o = Obj::new(v, p, e)?;
    let mut out = BTreeMap::new();
    for (k, x) in o.map {
        let xp = at(p, k);
        if let Some(source) = Obj::new(x, &xp, e).and_then(|s| s.req("source", e, string)) {
            out.insert(k.clone(), SecretDef { source });
        }
    }
    Some(out)
}

/// A `fetch` entry.
fn artifact(v: &Value, p: &str, e: &mut Violations) -> Option<Artifact> {
    let o = Obj::new(v, p, e)?;
    let uri = o.req("uri", e, |v, p, e| string_len(v, p, e, 1, 1024));
    let extract = o.opt("extract", e, boolean).unwrap_or(true);
    let executable = o.opt("executable", e, boolean).unwrap_or(false);
    let cache = o.opt("cache", e, boolean).unwrap_or(false);
    let dest_path = o.opt("destPath", e, |v, p, e| string_len(v, p, e, 1, 1024));
    Some(Artifact { uri: uri?, extract, executable, cache, dest_path })
}

/// `container`.
fn container(v: &Value, p: &str, e: &mut Violations) -> Option<Container> {
    let o = Obj::new(v, p, e)?;
    let kind = o.opt("type", e, |v, p, e| literal(v, p, e, ContainerType::from_name)).unwrap_or_default();
    let docker = o.opt("docker", e, docker);
    let port_mappings = o.opt("portMappings", e, |v, p, e| list(v, p, e, port_mapping));
    let volumes = o.opt("volumes", e, |v, p, e| list(v, p, e, volume)).unwrap_or_default();
    Some(Container { kind, docker, port_mappings, volumes })
}

/// `container.docker`.
fn docker(v: &Value, p: &str, e: &mut Violations) -> Option<DockerContainer> {
    let o = Obj::new(v, p, e)?;
    let image = o.req("image", e, string1);
    let network = o.opt("network", e, |v, p, e| literal(v, p, e, DockerNetwork::from_name));
    let port_mappings = o.opt("portMappings", e, |v, p, e| list(v, p, e, port_mapping));
    let privileged = o.opt("privileged", e, boolean).unwrap_or(false);
    let parameters = o
        .opt("parameters", e, |v, p, e| {
            list(v, p, e, |v, p, e| {
                let o = Obj::new(v, p, e)?;
                let key = o.req("key", e, string1);
                let value = o.req("value", e, string);
                Some(DockerParameter { key: key?, value: value? })
            })
        })
        .unwrap_or_default();
    let force_pull_image = o.opt("forcePullImage", e, boolean).unwrap_or(false);
    let credential = o.opt("credential", e, |v, p, e| Obj::new(v, p, e).map(|_| v.clone()));
    let pull_config = o.opt("pullConfig", e, |v, p, e| {
        let o = Obj::new(v, p, e)?;
        o.req("secret", e, string).map(|secret| PullConfig { secret })
    });
    Some(DockerContainer {
        image: image.unwrap_or_default(),
        network,
        port_mappings,
        privileged,
        parameters,
        force_pull_image,
        credential,
        pull_config,
    })
}

/// A port mapping.
fn port_mapping(v: &Value, p: &str, e: &mut Violations) -> Option<PortMapping> {
    let o = Obj::new(v, p, e)?;
    Some(PortMapping {
        container_port: o.opt("containerPort", e, port).unwrap_or(0),
        host_port: o.opt("hostPort", e, port),
        service_port: o.opt("servicePort", e, port).unwrap_or(0),
        protocol: o.opt("protocol", e, |v, p, e| literal(v, p, e, Protocol::parse)).unwrap_or_default(),
        name: o.opt("name", e, string),
        labels: o.opt("labels", e, string_map).unwrap_or_default(),
        network_names: o.opt("networkNames", e, |v, p, e| list(v, p, e, string)).unwrap_or_default(),
    })
}

/// A port definition.
fn port_definition(v: &Value, p: &str, e: &mut Violations) -> Option<PortDefinition> {
    let o = Obj::new(v, p, e)?;
    Some(PortDefinition {
        port: o.opt("port", e, port).unwrap_or(0),
        protocol: o.opt("protocol", e, |v, p, e| literal(v, p, e, Protocol::parse)).unwrap_or_default(),
        name: o.opt("name", e, string),
        labels: o.opt("labels", e, string_map).unwrap_or_default(),
    })
}

/// A `networks` entry (mode defaults to `container`, as in the RAML).
fn network(v: &Value, p: &str, e: &mut Violations) -> Option<Network> {
    let o = Obj::new(v, p, e)?;
    Some(Network {
        mode: o.opt("mode", e, |v, p, e| literal(v, p, e, NetworkMode::from_name)).unwrap_or(NetworkMode::Container),
        name: o.opt("name", e, string),
        labels: o.opt("labels", e, string_map).unwrap_or_default(),
    })
}

/// A volume: host volumes are structured, everything else is kept as given.
fn volume(v: &Value, p: &str, e: &mut Violations) -> Option<Volume> {
    let o = Obj::new(v, p, e)?;
    let special = ["persistent", "external", "secret"].iter().any(|k| o.has(k));
    if special || !o.has("hostPath") {
        return Some(Volume::Other(v.clone()));
    }
    let container_path = o.req("containerPath", e, string1);
    let host_path = o.req("hostPath", e, string1);
    let mode = o.opt("mode", e, |v, p, e| literal(v, p, e, ReadMode::from_name)).unwrap_or(ReadMode::Rw);
    Some(Volume::Host { container_path: container_path?, host_path: host_path?, mode })
}

/// A health check.
fn health_check(v: &Value, p: &str, e: &mut Violations) -> Option<HealthCheck> {
    let o = Obj::new(v, p, e)?;
    let d = HealthCheck::default();
    Some(HealthCheck {
        protocol: o.opt("protocol", e, |v, p, e| literal(v, p, e, HealthCheckProtocol::from_name)).unwrap_or_default(),
        path: o.opt("path", e, string),
        port_index: o.opt("portIndex", e, port),
        port: o.opt("port", e, port),
        command: o.opt("command", e, |v, p, e| {
            let o = Obj::new(v, p, e)?;
            o.req("value", e, string).map(|value| CommandCheck { value })
        }),
        grace_period_seconds: o.opt("gracePeriodSeconds", e, count).unwrap_or(d.grace_period_seconds),
        interval_seconds: o.opt("intervalSeconds", e, count).unwrap_or(d.interval_seconds),
        timeout_seconds: o.opt("timeoutSeconds", e, count).unwrap_or(d.timeout_seconds),
        max_consecutive_failures: o.opt("maxConsecutiveFailures", e, count).unwrap_or(d.max_consecutive_failures),
        delay_seconds: o.opt("delaySeconds", e, count).unwrap_or(d.delay_seconds),
        ignore_http1xx: o.opt("ignoreHttp1xx", e, boolean).unwrap_or(false),
        ip_protocol: o.opt("ipProtocol", e, |v, p, e| literal(v, p, e, IpProtocol::from_name)).unwrap_or_default(),
    })
}

/// A readiness check.
fn readiness_check(v: &Value, p: &str, e: &mut Violations) -> Option<ReadinessCheck> {
    let o = Obj::new(v, p, e)?;
    let d = ReadinessCheck::default();
    let codes = o.opt("httpStatusCodesForReady", e, |v, p, e| {
        list(v, p, e, |v, p, e| integer(v, p, e, 100, 999, false).and_then(|i| u16::try_from(i).ok()))
    });
    Some(ReadinessCheck {
        name: o.opt("name", e, string).unwrap_or(d.name),
        protocol: o.opt("protocol", e, |v, p, e| literal(v, p, e, HttpScheme::from_name)).unwrap_or_default(),
        path: o.opt("path", e, |v, p, e| string_len(v, p, e, 1, 1024)).unwrap_or(d.path),
        port_name: o
            .opt("portName", e, |v, p, e| {
                let s = string(v, p, e)?;
                if valid_port_name(&s) {
                    Some(s)
                } else {
                    e.add(p, "error.pattern");
                    None
                }
            })
            .unwrap_or(d.port_name),
        interval_seconds: o.opt("intervalSeconds", e, count).unwrap_or(d.interval_seconds),
        timeout_seconds: o.opt("timeoutSeconds", e, count).unwrap_or(d.timeout_seconds),
        // An empty list means the default, as Marathon's normalization has it.
        http_status_codes_for_ready: codes.filter(|c| !c.is_empty()).unwrap_or(d.http_status_codes_for_ready),
        preserve_last_response: o.opt("preserveLastResponse", e, boolean).unwrap_or(false),
    })
}

/// `upgradeStrategy` (each bound 0..=1, each defaulting to 1).
fn upgrade_strategy(v: &Value, p: &str, e: &mut Violations) -> Option<UpgradeStrategy> {
    let o = Obj::new(v, p, e)?;
    let fraction = |v: &Value, p: &str, e: &mut Violations| number(v, p, e, Some(0.0), Some(1.0));
    Some(UpgradeStrategy {
        minimum_health_capacity: o.opt("minimumHealthCapacity", e, fraction).unwrap_or(1.0),
        maximum_over_capacity: o.opt("maximumOverCapacity", e, fraction).unwrap_or(1.0),
    })
}

/// `unreachableStrategy`: `"disabled"` or the two timeouts.
fn unreachable_strategy(v: &Value, p: &str, e: &mut Violations) -> Option<UnreachableStrategy> {
    match v {
        Value::String(s) if s.eq_ignore_ascii_case("disabled") => Some(UnreachableStrategy::Disabled),
        Value::Object(_) => {
            let o = Obj::new(v, p, e)?;
            Some(UnreachableStrategy::Enabled {
                inactive_after_seconds: o.opt("inactiveAfterSeconds", e, seconds64).unwrap_or(0),
                expunge_after_seconds: o.opt("expungeAfterSeconds", e, seconds64).unwrap_or(0),
            })
        }
        _ => {
            e.add(p, "error.unknown.enum.literal");
            None
        }
    }
}

/// `versionInfo`.
fn version_info(v: &Value, p: &str, e: &mut Violations) -> Option<VersionInfo> {
    let o = Obj::new(v, p, e)?;
    let last_scaling_at = o.req("lastScalingAt", e, timestamp);
    let last_config_change_at = o.req("lastConfigChangeAt", e, timestamp);
    Some(VersionInfo { last_scaling_at: last_scaling_at?, last_config_change_at: last_config_change_at? })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> Result<AppDefinition, Vec<Violation>> {
        read_app(&v, "", &PathId::root())
    }

    fn errors(v: Value) -> Vec<(String, Vec<String>)> {
        read(v).unwrap_err().into_iter().map(|v| (v.path, v.errors)).collect()
    }

    #[test]
    fn applies_marathon_defaults() {
        let a = read(json!({"id": "web", "cmd": "sleep 1"})).unwrap();
        assert_eq!(a.id.to_string(), "/web");
        assert_eq!((a.instances, a.cpus, a.mem, a.disk, a.gpus), (1, 1.0, 128.0, 0.0, 0));
        assert_eq!((a.backoff_seconds, a.backoff_factor, a.max_launch_delay_seconds), (1, 1.15, 300));
        assert_eq!(a.executor, "");
        assert_eq!(a.upgrade_strategy, UpgradeStrategy { minimum_health_capacity: 1.0, maximum_over_capacity: 1.0 });
        assert_eq!(a.unreachable_strategy, UnreachableStrategy::Enabled { inactive_after_seconds: 0, expunge_after_seconds: 0 });
        assert_eq!(a.kill_selection, KillSelection::YoungestFirst);
        assert!(!a.require_ports && a.networks.is_empty() && a.port_definitions.is_none());
    }

    #[test]
    fn nested_defaults() {
        let a = read(json!({
            "id": "/a", "cmd": "x",
            "container": {"docker": {"image": "nginx"}, "portMappings": [{}], "volumes": [{"containerPath": "/d", "hostPath": "/h"}]},
            "healthChecks": [{}], "readinessChecks": [{"httpStatusCodesForReady": []}],
            "fetch": [{"uri": "http://x/a.tgz"}], "portDefinitions": [{}], "networks": [{"name": "n"}],
            "unreachableStrategy": "disabled"
        }))
        .unwrap();
        let c = a.container.unwrap();
        assert_eq!(c.kind, ContainerType::Docker);
        assert_eq!(c.port_mappings.unwrap()[0], PortMapping::default());
        assert_eq!(c.volumes[0], Volume::Host { container_path: "/d".into(), host_path: "/h".into(), mode: ReadMode::Rw });
        assert_eq!(a.health_checks[0], HealthCheck::default());
        assert_eq!(a.readiness_checks[0], ReadinessCheck::default());
        assert_eq!(a.fetch[0], Artifact::new("http://x/a.tgz"));
        assert_eq!(a.port_definitions.unwrap()[0], PortDefinition::default());
        assert_eq!(a.networks[0].mode, NetworkMode::Container);
        assert_eq!(a.unreachable_strategy, UnreachableStrategy::Disabled);
    }

    #[test]
    fn reports_every_shape_error_with_play_keys() {
        let errs = errors(json!({
            "cmd": 3, "instances": "two", "cpus": 0.0, "gpus": 1.5, "labels": {"a": 1},
            "constraints": [["a", 2]], "container": {"type": "RKT", "docker": {}},
            "upgradeStrategy": {"minimumHealthCapacity": 1.5}, "requirePorts": "yes",
            "args": {}, "portDefinitions": [{"port": 70000}], "executor": "//x",
            "env": {"A": {"nope": 1}}, "version": "yesterday", "readinessChecks": [{"portName": "HTTP"}]
        }));
        let expect = [
            ("/id", "error.path.missing"),
            ("/cmd", "error.expected.jsstring"),
            ("/args", "error.expected.jsarray"),
            ("/env/A/secret", "error.path.missing"),
            ("/instances", "error.expected.jsnumber"),
            ("/cpus", "error.min"),
            ("/gpus", "error.expected.int"),
            ("/executor", "error.pattern"),
            ("/constraints(0)(1)", "error.expected.jsstring"),
            ("/container/type", "error.unknown.enum.literal"),
            ("/container/docker/image", "error.path.missing"),
            ("/readinessChecks(0)/portName", "error.pattern"),
            ("/upgradeStrategy/minimumHealthCapacity", "error.max"),
            ("/labels/a", "error.expected.jsstring"),
            ("/requirePorts", "error.expected.jsboolean"),
            ("/portDefinitions(0)/port", "error.max"),
            ("/version", "error.expected.date.isoformat"),
        ];
        for (path, err) in expect {
            assert!(errs.iter().any(|(p, e)| p == path && e.iter().any(|x| x == err)), "missing {path}: {err} in {errs:?}");
        }
        assert_eq!(errs.len(), expect.len(), "{errs:?}");
    }

    #[test]
    fn whole_floats_are_integers_and_nulls_are_absent() {
        let a = read(json!({"id": "/a", "instances": 3.0, "cmd": null, "labels": null})).unwrap();
        assert_eq!(a.instances, 3);
        assert!(a.cmd.is_none());
        assert_eq!(errors(json!({"id": "/a", "instances": -1})), vec![("/instances".to_string(), vec!["error.min".to_string()])]);
        assert_eq!(errors(json!({"id": "/a", "instances": 3_000_000_000u64}))[0].1, vec!["error.expected.int"]);
        assert_eq!(errors(json!([1]))[0], ("/".to_string(), vec!["error.expected.jsobject".to_string()]));
        assert_eq!(errors(json!({"id": "/A"}))[0].0, "/id");
        let huge = errors(json!({"id": "/a", "version": "9223372036854775807-01-01T00:00:00Z"}));
        assert_eq!(huge, vec![("/version".to_string(), vec!["error.expected.date.isoformat".to_string()])]);
    }

    #[test]
    fn serde_deserialize_uses_the_reader() {
        let a: AppDefinition = serde_json::from_value(json!({"id": "/a/b", "cmd": "x", "env": {"S": {"secret": "s"}}})).unwrap();
        assert_eq!(a.env["S"], EnvValue::Secret { secret: "s".into() });
        let err = serde_json::from_value::<AppDefinition>(json!({"cmd": 1})).unwrap_err().to_string();
        assert!(err.contains("/id: error.path.missing"), "{err}");
    }

    #[test]
    fn patterns() {
        for ok in ["", "//cmd", "a", "/a/b", "a/b"] {
            assert!(valid_executor(ok), "{ok}");
        }
        for bad in ["//x", "a//b", "/", "a/"] {
            assert!(!valid_executor(bad), "{bad}");
        }
        assert!(valid_port_name("http-api") && !valid_port_name("1x") && !valid_port_name(""));
    }
}
