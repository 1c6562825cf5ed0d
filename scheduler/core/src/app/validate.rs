//! App validation: every rule of Marathon 1.10's `AppValidation` (plus the model rules of
//! `AppDefinition.validAppDefinition`) that applies to a scheduler without pods, resident apps,
//! secrets, external volumes, AppC images or a default container network.
//!
//! [`validate`] lists every violated path, with Marathon's messages (accord's wording for range
//! rules: `got 1.5, expected between 0.0 and 1.0`, `got -1.0, expected 0.0 or more`) and paths
//! (`/` for rules about the whole app, `/healthChecks(0)` for list items).
//!
//! Left out, and why:
//! - `role` must be the default role or the enclosing group's role, and
//!   `acceptedResourceRoles` are sanitized against it: needs the scheduler's configuration
//!   (`--mesos_role`, group roles); only the role *names* are checked here.
//! - GPUs need Marathon's `gpu_resources` feature: a configuration matter; only the rule
//!   "GPU resources only work with the Mesos containerizer" is checked.
//! - Residency rules, `unreachableStrategy must be disabled for resident tasks` and the
//!   resident upgrade strategy: resident apps need persistent volumes, which are refused.
//! - Secret references (`env`, `pullConfig`, secret volumes) pointing at existing secrets:
//!   the `secrets` feature is off, so any secret use is refused outright.
//! - External volume provider rules and AppC image ids. `check` (Mesos checks), `linuxInfo`,
//!   `resourceLimits`, `executorResources`, custom executors and `tty: true` are not
//!   supported: the parser refuses them (`parse.rs`, `NOT_CARRIED`); it translates `ipAddress`.
//! - "Network name must be specified" assumes no `--default_network_name` is configured.
//!
//! Added here, beyond Marathon: size bounds ([`MAX_ID_LENGTH`], [`MAX_INSTANCES`] and the
//! other `MAX_*` constants) so that no body can make the scheduler build unbounded task ids,
//! file names, instance tables or per-offer work. They are reported like every other rule
//! (422 `Object is not valid`, with the path and `got N, expected M or less`).

use std::collections::BTreeSet;

use super::definition::*;
use super::error::{Violation, Violations};
use super::jvm::double;
use super::read::{at, nth, valid_executor};
use crate::matching::Constraint;

/// Marathon's message for a missing `secrets` feature.
const SECRETS_OFF: &str = "Feature secrets is not enabled. Enable with --enable_features secrets)";
/// Health check port rule.
const PORT_INDEX: &str = "Health check port indices must address an element of the ports array or container port mappings.";
/// The executor pattern, as Marathon prints it.
const EXECUTOR_PATTERN: &str = "^(//cmd)|(/?[^/]+(/[^/]+)*)|$";

/// The longest app or group id, in bytes as written (`/shop/web` is 9). Task ids are
/// `<id without the leading slash, '/' as '_'>.instance-<36-char uuid>._app.<n>` and become
/// Mesos executor ids and sandbox directory names, which must fit in a 255-byte file name:
/// 190 leaves room for the 62 bytes of suffix.
pub const MAX_ID_LENGTH: usize = 190;
/// The most instances an app may ask for.
pub const MAX_INSTANCES: u32 = 100_000;
/// The most ports an app may ask for (`portDefinitions`, `ports` or port mappings).
pub const MAX_PORTS: usize = 1_000;
/// The most entries of `env` and of `labels`, each.
pub const MAX_ENTRIES: usize = 1_000;
/// The longest `env` value and label name or value, in bytes (a whole `NAME=value` must stay
/// well below Linux's 128 KiB limit on one environment string).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// The most placement constraints (each is evaluated against every offer).
pub const MAX_CONSTRAINTS: usize = 100;
/// The most health checks.
pub const MAX_HEALTH_CHECKS: usize = 32;
/// The most items of the other lists: `args`, `dependencies`, `fetch`, `uris`, volumes,
/// Docker parameters, networks, accepted roles.
pub const MAX_LIST_ITEMS: usize = 1_000;

/// Checks `app` against every rule (see the module docs); lists every violated path.
pub fn validate(app: &AppDefinition) -> Result<(), Vec<Violation>> {
    let mut e = Violations::default();
    limits(app, &mut e);
    legacy(app, &mut e);
    identity(app, &mut e);
    resources(app, &mut e);
    networking(app, &mut e);
    if let Some(c) = &app.container {
        container(app, c, &mut e);
    }
    health_checks(app, &mut e);
    readiness_checks(app, &mut e);
    environment(app, &mut e);
    scheduling(app, &mut e);
    e.into_result()
}

/// Marathon's `validateOldAppAPI`: rules about deprecated fields, which it checks before
/// normalizing (they hold vacuously for normalized apps).
pub(crate) fn validate_legacy(app: &AppDefinition) -> Result<(), Vec<Violation>> {
    let mut e = Violations::default();
    legacy(app, &mut e);
    e.into_result()
}

/// The size bounds of the module docs.
fn limits(app: &AppDefinition, e: &mut Violations) {
    let id = app.id.to_string();
    if id.len() > MAX_ID_LENGTH {
        e.add("/id", id_too_long(id.len()));
    }
    if app.instances > MAX_INSTANCES {
        e.add("/instances", format!("got {}, expected {MAX_INSTANCES} or less", app.instances));
    }
    let container = app.container.as_ref();
    let docker = container.and_then(|c| c.docker.as_ref());
    let counts = [
        ("/portDefinitions", app.port_definitions.as_ref().map_or(0, Vec::len), MAX_PORTS),
        ("/ports", app.ports.as_ref().map_or(0, Vec::len), MAX_PORTS),
        ("/container/portMappings", container.and_then(|c| c.port_mappings.as_ref()).map_or(0, Vec::len), MAX_PORTS),
        ("/container/docker/portMappings", docker.and_then(|d| d.port_mappings.as_ref()).map_or(0, Vec::len), MAX_PORTS),
        ("/env", app.env.len(), MAX_ENTRIES),
        ("/labels", app.labels.len(), MAX_ENTRIES),
        ("/constraints", app.constraints.len(), MAX_CONSTRAINTS),
        ("/healthChecks", app.health_checks.len(), MAX_HEALTH_CHECKS),
        ("/args", app.args.len(), MAX_LIST_ITEMS),
        ("/dependencies", app.dependencies.len(), MAX_LIST_ITEMS),
        ("/fetch", app.fetch.len(), MAX_LIST_ITEMS),
        ("/uris", app.uris.len(), MAX_LIST_ITEMS),
        ("/networks", app.networks.len(), MAX_LIST_ITEMS),
        ("/acceptedResourceRoles", app.accepted_resource_roles.as_ref().map_or(0, Vec::len), MAX_LIST_ITEMS),
        ("/container/volumes", container.map_or(0, |c| c.volumes.len()), MAX_LIST_ITEMS),
        ("/container/docker/parameters", docker.map_or(0, |d| d.parameters.len()), MAX_LIST_ITEMS),
    ];
    for (path, n, max) in counts {
        if n > max {
            e.add(path, format!("got {n} items, expected {max} or less"));
        }
    }
    for (name, value) in &app.env {
        if let EnvValue::Value(v) = value
            && v.len() > MAX_VALUE_BYTES
        {
            e.add(&at("/env", name), format!("got a value of {} bytes, expected {MAX_VALUE_BYTES} or less", v.len()));
        }
    }
    for (name, value) in &app.labels {
        let longest = name.len().max(value.len());
        if longest > MAX_VALUE_BYTES {
            e.add(&at("/labels", name), format!("got a name or value of {longest} bytes, expected {MAX_VALUE_BYTES} or less"));
        }
    }
}

/// The message for an id longer than [`MAX_ID_LENGTH`].
pub(crate) fn id_too_long(len: usize) -> String {
    format!(
        "got an id of {len} characters, expected {MAX_ID_LENGTH} or less: task ids and sandbox directory names embed it; use shorter group and app names"
    )
}

/// Deprecated fields and how they clash with their replacements.
fn legacy(app: &AppDefinition, e: &mut Violations) {
    for (i, uri) in app.uris.iter().enumerate() {
        if !valid_uri(uri) {
            e.add(&nth("/uris", i), "URI has invalid syntax.");
        }
    }
    if !app.uris.is_empty() && !app.fetch.is_empty() {
        e.add("/uris", "may not be set in conjunction with fetch");
    }
    let docker = app.container.as_ref().and_then(|c| c.docker.as_ref().map(|d| (c.kind, d)));
    if let Some((kind, d)) = docker {
        if d.credential.is_some() {
            e.add("/container/docker/credential", "must be empty");
        }
        if kind == ContainerType::Mesos {
            if d.network.is_some() {
                e.add("/container/docker/network", "must be empty");
            }
            if !d.parameters.is_empty() {
                e.add("/container/docker/parameters", "must be empty");
            }
            if d.port_mappings.is_some() {
                e.add("/container/docker/portMappings", "must be empty");
            }
        }
        if let Some(mappings) = &d.port_mappings
            && !unique(mappings.iter().filter_map(|m| m.name.as_deref()))
        {
            e.add("/container/docker/portMappings", "Port names must be unique.");
        }
        if d.network.is_some() && !app.networks.is_empty() {
            e.add("/", "must not specify both container.docker.network and networks");
        }
    }
    if let Some(ports) = &app.ports {
        if !unique(ports.iter().filter(|p| **p != 0)) {
            e.add("/", "ports must be unique");
        }
        if let Some(defs) = &app.port_definitions {
            let same = defs.iter().map(|d| d.port).eq(ports.iter().copied());
            if !same {
                e.add("/", "cannot specify both ports and port definitions");
            }
        }
    }
}

/// Id, command and executor.
fn identity(app: &AppDefinition, e: &mut Violations) {
    if app.id.is_root() {
        e.add("/id", "Path must contain at least one path element");
        e.add("/", "must not be root");
    }
    // These names would clash with the routes `/v2/apps/{id}/restart|tasks|versions`.
    if app.id.segments().last().is_some_and(|last| ["restart", "tasks", "versions"].contains(&last.as_str())) {
        e.add("/id", "must not end with any of the following reserved keywords: restart, tasks, versions");
    }
    if app.cmd.as_ref().is_some_and(|c| c.chars().count() <= 1) {
        // Marathon's test is `cmd.length > 1`, so a one-character command is refused too.
        e.add("/", "must not be an empty string");
    }
    let cmd = app.cmd.is_some();
    let args = !app.args.is_empty();
    let image = app.container.as_ref().is_some_and(|c| c.docker.is_some());
    if !((cmd ^ args) || (!(cmd && args) && image)) {
        e.add("/", "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.");
    }
    if !valid_executor(&app.executor) {
        e.add("/executor", format!("must fully match regular expression '{EXECUTOR_PATTERN}'"));
    }
}

/// Resources, backoff and roles.
fn resources(app: &AppDefinition, e: &mut Violations) {
    for (path, value) in [("/cpus", app.cpus), ("/mem", app.mem), ("/disk", app.disk)] {
        at_least(e, path, value, 0.0);
    }
    at_least(e, "/backoffFactor", app.backoff_factor, 1.0);
    if app.gpus > 0 && app.container.as_ref().is_some_and(|c| c.kind == ContainerType::Docker) {
        e.add("/", "GPU resources only work with the Mesos containerizer");
    }
    if let Some(roles) = &app.accepted_resource_roles {
        if roles.is_empty() {
            e.add("/acceptedResourceRoles", "must not be empty");
        }
        for (i, role) in roles.iter().enumerate() {
            for msg in role_errors(role) {
                e.add(&nth("/acceptedResourceRoles", i), msg);
            }
        }
    }
    if let Some(role) = &app.role {
        for msg in role_errors(role) {
            e.add("/role", msg);
        }
    }
}

/// `networks`, port definitions and port mappings against the network mode.
fn networking(app: &AppDefinition, e: &mut Violations) {
    let count = |mode| app.networks.iter().filter(|n| n.mode == mode).count();
    let (host, bridge, container) = (count(NetworkMode::Host), count(NetworkMode::ContainerBridge), count(NetworkMode::Container));
    if app.networks.iter().any(|n| n.mode == NetworkMode::Host && (n.name.is_some() || !n.labels.is_empty())) {
        e.add("/networks", "Host networks may not have names or labels");
    }
    if app.networks.iter().any(|n| n.mode == NetworkMode::ContainerBridge && n.name.is_some()) {
        e.add("/networks", "Bridge networks may not have names");
    }
    let unnamed = app.networks.iter().filter(|n| n.mode == NetworkMode::Container && n.name.is_none()).count();
    if unnamed > 1 || !unique(app.networks.iter().filter_map(|n| n.name.as_deref())) {
        e.add("/networks", "Duplicate networks are not allowed");
    }
    let modes_ok = (host <= 1 && bridge == 0 && container == 0)
        || (host == 0 && bridge <= 1 && container == 0)
        || (host == 0 && bridge == 0 && container > 0);
    if !modes_ok {
        e.add("/networks", "May specify a single host network, single bridge network, or else 1-to-n container networks");
    }
    if unnamed > 0 {
        e.add("/networks", "Network name must be specified when container network is selected.");
    }
    if host > 0 && app.container.as_ref().and_then(|c| c.port_mappings.as_ref()).is_some_and(|m| !m.is_empty()) {
        e.add("/", "portMappings are not allowed with host-networking");
    }
    if app.has_non_host_networking() && app.port_definitions.as_ref().is_some_and(|d| !d.is_empty()) {
        e.add("/", "portDefinitions are only allowed with host-networking");
    }
    if let Some(defs) = &app.port_definitions {
        if !unique(defs.iter().filter_map(|d| d.name.as_deref())) {
            e.add("/portDefinitions", "Port names must be unique.");
        }
        if !unique(defs.iter().map(|d| d.port).filter(|p| *p != 0)) {
            e.add("/portDefinitions", "Ports must be unique.");
        }
        for (i, d) in defs.iter().enumerate() {
            port_in_range(e, &at(&nth("/portDefinitions", i), "port"), Some(d.port));
        }
    }
    if app.container.as_ref().is_some_and(|c| c.kind == ContainerType::Docker) && container > 1 {
        e.add("/", "may only specify a single container network when using the Docker container engine");
    }
}

/// `container`: engine rules, port mappings and volumes.
fn container(app: &AppDefinition, c: &Container, e: &mut Violations) {
    match (c.kind, &c.docker) {
        (ContainerType::Docker, None) => e.add("/container/docker", "not defined"),
        (ContainerType::Docker, Some(d)) => {
            if d.image.is_empty() {
                e.add("/container/docker/image", "must not be empty");
            }
            if d.pull_config.is_some() {
                e.add("/container/docker/pullConfig", "pullConfig is not supported with Docker containerizer");
            }
        }
        (ContainerType::Mesos, Some(d)) => {
            if d.image.is_empty() {
                e.add("/container/docker/image", "must not be empty");
            }
            if d.pull_config.is_some() {
                e.add("/container/docker/pullConfig", SECRETS_OFF);
            }
        }
        (ContainerType::Mesos, None) => {}
    }
    if let Some(mappings) = &c.port_mappings {
        if !unique(mappings.iter().filter_map(|m| m.name.as_deref())) {
            e.add("/container/portMappings", "Port names must be unique.");
        }
        let names: Vec<&str> = app.networks.iter().filter_map(|n| n.name.as_deref()).collect();
        let several = app.networks.iter().filter(|n| n.mode == NetworkMode::Container).count() > 1;
        for (i, m) in mappings.iter().enumerate() {
            let path = nth("/container/portMappings", i);
            if several && m.host_port.is_some() && m.network_names.len() != 1 {
                e.add(
                    &path,
                    "networkNames must be a single item list when hostPort is specified and more than 1 container network is defined",
                );
            }
            for (j, name) in m.network_names.iter().enumerate() {
                if !names.contains(&name.as_str()) {
                    e.add(&nth(&at(&path, "networkNames"), j), format!("is not one of ({})", names.join(",")));
                }
            }
            port_in_range(e, &at(&path, "containerPort"), Some(m.container_port));
            port_in_range(e, &at(&path, "hostPort"), m.host_port);
            port_in_range(e, &at(&path, "servicePort"), Some(m.service_port));
        }
    }
    for (i, v) in c.volumes.iter().enumerate() {
        let path = nth("/container/volumes", i);
        match v {
            Volume::Host { container_path, host_path, .. } => {
                if container_path.is_empty() {
                    e.add(&at(&path, "containerPath"), "must not be empty");
                }
                if host_path.is_empty() {
                    e.add(&at(&path, "hostPath"), "must not be empty");
                }
                if !host_path.starts_with('/') && host_path.split('/').any(|part| part == "..") {
                    e.add(
                        &at(&path, "hostPath"),
                        "a relative host path is inside the task's sandbox and must not climb out of it with '..'; give an absolute path instead",
                    );
                }
            }
            Volume::Other(raw) => {
                let has = |k: &str| raw.get(k).is_some_and(|x| !x.is_null());
                let msg = if has("persistent") {
                    "persistent volumes are not supported: this scheduler runs no resident apps"
                } else if has("external") {
                    "Feature external_volumes is not enabled. Enable with --enable_features external_volumes)"
                } else if has("secret") {
                    SECRETS_OFF
                } else {
                    "Unknown app volume type"
                };
                e.add(&path, msg);
            }
        }
    }
}

/// `healthChecks`.
fn health_checks(app: &AppDefinition, e: &mut Violations) {
    let ports = app.port_count();
    let docker = app.container.as_ref().is_some_and(|c| c.kind == ContainerType::Docker);
    for (i, check) in app.health_checks.iter().enumerate() {
        let path = nth("/healthChecks", i);
        let scheduler_run = matches!(check.protocol, HealthCheckProtocol::Http | HealthCheckProtocol::Https | HealthCheckProtocol::Tcp);
        if check.command.is_none() && scheduler_run {
            let ok = match check.port_index {
                Some(index) => usize::try_from(index).is_ok_and(|index| index < ports),
                None => check.port.is_some() || ports == 1,
            };
            if !ok {
                e.add(&path, PORT_INDEX);
            }
        }
        let mesos_network_check =
            matches!(check.protocol, HealthCheckProtocol::MesosHttp | HealthCheckProtocol::MesosHttps | HealthCheckProtocol::MesosTcp);
        if check.ip_protocol == IpProtocol::IPv6 && !(mesos_network_check && docker) {
            e.add(&path, "IPv6 can only be used for container type DOCKER and Mesos http/https/tcp health checks");
        }
        if check.protocol == HealthCheckProtocol::Command && check.command.is_none() {
            e.add(&at(&path, "command"), "not defined");
        }
        port_in_range(e, &at(&path, "port"), check.port);
    }
    let with_command = app.health_checks.iter().filter(|c| c.command.is_some()).count();
    let mesos = app.health_checks.iter().filter(|c| c.command.is_some() || c.protocol.is_mesos()).count();
    if mesos.saturating_sub(with_command) > 1 {
        // Several COMMAND checks are tolerated: older Marathons accepted them.
        e.add("/", "AppDefinition can contain at most one Mesos health check");
    }
}

/// `readinessChecks`.
fn readiness_checks(app: &AppDefinition, e: &mut Violations) {
    let n = app.readiness_checks.len();
    if n > 1 {
        e.add("/readinessChecks", format!("got {n}, expected 1 or less"));
    }
    // Marathon takes the names of the container's mappings when it has any list of them.
    let names: Vec<&str> = match app.container.as_ref().and_then(|c| c.port_mappings.as_ref()) {
        Some(mappings) => mappings.iter().filter_map(|m| m.name.as_deref()).collect(),
        None => app.port_definitions.iter().flatten().filter_map(|d| d.name.as_deref()).collect(),
    };
    for (i, check) in app.readiness_checks.iter().enumerate() {
        let path = nth("/readinessChecks", i);
        if !names.contains(&check.port_name.as_str()) {
            e.add(&at(&path, "portName"), format!("No port definition reference for portName {}", check.port_name));
        }
        if check.timeout_seconds >= check.interval_seconds {
            e.add(&at(&path, "timeoutSeconds"), format!("got {}, expected less than {}", check.timeout_seconds, check.interval_seconds));
        }
    }
}

/// `env`, `secrets`, `fetch` and labels with a meaning.
fn environment(app: &AppDefinition, e: &mut Violations) {
    for name in app.env.keys() {
        let path = at("/env", name);
        if name.is_empty() {
            e.add(&path, "must not be empty");
        }
        if name.encode_utf16().count() >= 255 {
            e.add(&path, "variable name must be 254 chars or less");
        }
    }
    if app.env.values().any(|v| matches!(v, EnvValue::Secret { .. })) {
        e.add("/env", "use of secret-references in the environment requires the secrets feature to be enabled");
    }
    if !app.secrets.is_empty() {
        e.add("/secrets", SECRETS_OFF);
    }
    for (i, artifact) in app.fetch.iter().enumerate() {
        if !valid_uri(&artifact.uri) {
            e.add(&at(&nth("/fetch", i), "uri"), "URI has invalid syntax.");
        }
    }
    let label = |k: &str| app.labels.get(k).map(String::as_str);
    if let Some(version) = label("DCOS_MIGRATION_API_VERSION").filter(|v| !v.is_empty()) {
        let complete = version == "v1"
            && label("DCOS_PACKAGE_FRAMEWORK_NAME").is_some_and(|v| !v.is_empty())
            && label("DCOS_MIGRATION_API_PATH").is_some_and(|v| !v.is_empty());
        if !complete {
            e.add("/", "DCOS_PACKAGE_FRAMEWORK_NAME and DCOS_MIGRATION_API_PATH must be defined when using DCOS_MIGRATION_API_VERSION");
        }
    }
}

/// Constraints, upgrade and unreachable strategies, single-instance apps.
fn scheduling(app: &AppDefinition, e: &mut Violations) {
    for (i, c) in app.constraints.iter().enumerate() {
        if let Err(msg) = Constraint::parse(c) {
            e.add(&nth("/constraints", i), msg);
        }
    }
    let us = app.upgrade_strategy;
    for (path, value) in [
        ("/upgradeStrategy/minimumHealthCapacity", us.minimum_health_capacity),
        ("/upgradeStrategy/maximumOverCapacity", us.maximum_over_capacity),
    ] {
        if !(0.0..=1.0).contains(&value) {
            e.add(path, format!("got {}, expected between 0.0 and 1.0", double(value)));
        }
    }
    if app.labels.get("MARATHON_SINGLE_INSTANCE_APP").is_some_and(|v| v == "true") {
        if app.instances > 1 {
            e.add("/", "Single instance app may only have one instance");
        }
        for (path, value) in [
            ("/upgradeStrategy/minimumHealthCapacity", us.minimum_health_capacity),
            ("/upgradeStrategy/maximumOverCapacity", us.maximum_over_capacity),
        ] {
            if value != 0.0 {
                e.add(path, format!("got {}, expected 0.0", double(value)));
            }
        }
    }
    if let UnreachableStrategy::Enabled { inactive_after_seconds, expunge_after_seconds } = app.unreachable_strategy
        && inactive_after_seconds > expunge_after_seconds
    {
        e.add(
            "/unreachableStrategy/inactiveAfterSeconds",
            format!("got {inactive_after_seconds}, expected {expunge_after_seconds} or less"),
        );
    }
}

/// `value >= min` (and finite), with accord's message.
fn at_least(e: &mut Violations, path: &str, value: f64, min: f64) {
    if !value.is_finite() || value < min {
        e.add(path, format!("got {}, expected {} or more", double(value), double(min)));
    }
}

/// A port number within 0..=65535.
fn port_in_range(e: &mut Violations, path: &str, port: Option<u32>) {
    if let Some(p) = port.filter(|p| *p > 65_535) {
        e.add(path, format!("got {p}, expected between 0 and 65535"));
    }
}

/// Whether the items are pairwise distinct.
fn unique<T: Ord>(items: impl Iterator<Item = T>) -> bool {
    let mut seen = BTreeSet::new();
    items.into_iter().all(|x| seen.insert(x))
}

/// Marathon's role name rules (`ResourceRole.validResourceRole`).
fn role_errors(role: &str) -> Vec<String> {
    let mut out = Vec::new();
    for bad in ["", ".", ".."] {
        if role == bad {
            out.push(format!("A role name must not be \"{bad}\"."));
        }
    }
    if role.starts_with('-') {
        out.push("A role name must not start with a '-'.".to_string());
    }
    let chars = [
        ('\u{09}', "horizontal tab (\\x09)"),
        ('\u{0a}', "line feed (\\x0a)"),
        ('\u{0b}', "vertical tab (\\x0b)"),
        ('\u{0c}', "form feed (\\x0c)"),
        ('\u{0d}', "carriage return (\\x0d)"),
        (' ', "space (\\x20)"),
        ('/', "slash (\\x2f)"),
        ('\u{7f}', "backspace (\\x7f)"),
    ];
    for (c, name) in chars {
        if role.contains(c) {
            out.push(format!("A role name must not include a {name} character."));
        }
    }
    out
}

/// Whether `uri` would pass `java.net.URI`'s syntax check, approximately: not empty, no
/// whitespace, control characters or characters URIs must escape, `%` followed by two hex
/// digits, and a scheme (if any) that starts with a letter.
fn valid_uri(uri: &str) -> bool {
    if uri.is_empty() {
        return false;
    }
    let bytes = uri.as_bytes();
    let bad_char = uri.chars().any(|c| c.is_whitespace() || c.is_control() || "\"<>\\^`{|}".contains(c));
    let bad_escape = bytes.iter().enumerate().any(|(i, b)| {
        *b == b'%' && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    let bad_scheme = match uri.split_once(':') {
        Some((scheme, _)) if !scheme.contains('/') && !scheme.contains('?') && !scheme.contains('#') => {
            !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        _ => false,
    };
    !(bad_char || bad_escape || bad_scheme)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::app::normalize::normalize;
    use crate::app::read::read_app;
    use crate::ids::PathId;
    use serde_json::{Value, json};

    /// Reads and normalizes `body` (a valid shape), then validates it.
    fn check(body: Value) -> Result<(), Vec<Violation>> {
        let raw = read_app(&body, "", &PathId::root()).unwrap();
        validate_legacy(&raw)?;
        validate(&normalize(raw)?)
    }

    /// Asserts that `good` passes and `bad` fails with exactly `message` at `path`.
    fn rule(good: Value, bad: Value, path: &str, message: &str) {
        assert_eq!(check(good.clone()), Ok(()), "good case refused: {good}");
        let errs = check(bad.clone()).unwrap_err();
        assert!(
            errs.iter().any(|v| v.path == path && v.errors.iter().any(|m| m == message)),
            "expected {path}: {message} for {bad}, got {errs:?}"
        );
    }

    fn app(extra: Value) -> Value {
        let mut base = json!({"id": "/a", "cmd": "sleep 1"});
        if let (Some(b), Some(x)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in x {
                b.insert(k.clone(), v.clone());
            }
        }
        base
    }

    #[test]
    fn size_limits() {
        let id = |n: usize| format!("/{}", "a".repeat(n - 1));
        let msg = id_too_long(MAX_ID_LENGTH + 1);
        rule(app(json!({"id": id(MAX_ID_LENGTH)})), app(json!({"id": id(MAX_ID_LENGTH + 1)})), "/id", &msg);
        rule(
            app(json!({"instances": MAX_INSTANCES})),
            app(json!({"instances": MAX_INSTANCES + 1})),
            "/instances",
            "got 100001, expected 100000 or less",
        );
        let ports = |n: usize| json!((0..n).map(|_| json!({"port": 0})).collect::<Vec<_>>());
        rule(
            app(json!({"portDefinitions": ports(MAX_PORTS)})),
            app(json!({"portDefinitions": ports(MAX_PORTS + 1)})),
            "/portDefinitions",
            "got 1001 items, expected 1000 or less",
        );
        let mappings = |n: usize| json!({"docker": {"image": "i"}, "portMappings": (0..n).map(|_| json!({})).collect::<Vec<_>>()});
        rule(
            app(json!({"networks": [{"mode": "container/bridge"}], "container": mappings(MAX_PORTS)})),
            app(json!({"networks": [{"mode": "container/bridge"}], "container": mappings(MAX_PORTS + 1)})),
            "/container/portMappings",
            "got 1001 items, expected 1000 or less",
        );
        let map = |n: usize| json!((0..n).map(|i| (format!("K{i}"), json!("v"))).collect::<serde_json::Map<_, _>>());
        rule(
            app(json!({"env": map(MAX_ENTRIES)})),
            app(json!({"env": map(MAX_ENTRIES + 1)})),
            "/env",
            "got 1001 items, expected 1000 or less",
        );
        rule(
            app(json!({"labels": map(MAX_ENTRIES)})),
            app(json!({"labels": map(MAX_ENTRIES + 1)})),
            "/labels",
            "got 1001 items, expected 1000 or less",
        );
        let big = "x".repeat(MAX_VALUE_BYTES + 1);
        rule(
            app(json!({"env": {"A": "x".repeat(MAX_VALUE_BYTES)}})),
            app(json!({"env": {"A": big}})),
            "/env/A",
            "got a value of 65537 bytes, expected 65536 or less",
        );
        rule(
            app(json!({"labels": {"A": "x"}})),
            app(json!({"labels": {"A": big}})),
            "/labels/A",
            "got a name or value of 65537 bytes, expected 65536 or less",
        );
        let constraints = |n: usize| json!((0..n).map(|_| json!(["hostname", "UNIQUE"])).collect::<Vec<_>>());
        rule(
            app(json!({"constraints": constraints(MAX_CONSTRAINTS)})),
            app(json!({"constraints": constraints(MAX_CONSTRAINTS + 1)})),
            "/constraints",
            "got 101 items, expected 100 or less",
        );
        let checks = |n: usize| json!((0..n).map(|_| json!({"protocol": "COMMAND", "command": {"value": "true"}})).collect::<Vec<_>>());
        rule(
            app(json!({"healthChecks": checks(MAX_HEALTH_CHECKS)})),
            app(json!({"healthChecks": checks(MAX_HEALTH_CHECKS + 1)})),
            "/healthChecks",
            "got 33 items, expected 32 or less",
        );
        let params = |n: usize| json!({"docker": {"image": "i", "parameters": (0..n).map(|_| json!({"key": "label", "value": "a=b"})).collect::<Vec<_>>()}});
        rule(
            app(json!({"container": params(3)})),
            app(json!({"container": params(MAX_LIST_ITEMS + 1)})),
            "/container/docker/parameters",
            "got 1001 items, expected 1000 or less",
        );
    }

    #[test]
    fn task_ids_of_the_longest_id_fit_in_a_file_name() {
        let id = PathId::parse(&format!("/{}/{}", "a".repeat(94), "b".repeat(94))).unwrap();
        assert_eq!(id.to_string().len(), MAX_ID_LENGTH);
        let task = crate::ids::InstanceId::new(&id, &"f".repeat(36)).task_id(u32::MAX);
        assert!(task.as_str().len() <= 255, "{} bytes", task.as_str().len());
    }

    #[test]
    fn id_must_not_be_root() {
        rule(app(json!({})), app(json!({"id": "/"})), "/", "must not be root");
        let errs = check(app(json!({"id": "/"}))).unwrap_err();
        assert!(errs.iter().any(|v| v.path == "/id"));
    }

    #[test]
    fn id_must_not_end_with_a_route_name() {
        rule(
            app(json!({"id": "/restart/x"})),
            app(json!({"id": "/x/tasks"})),
            "/id",
            "must not end with any of the following reserved keywords: restart, tasks, versions",
        );
    }

    #[test]
    fn cmd_args_or_container() {
        let msg = "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.";
        rule(json!({"id": "/a", "args": ["x"]}), json!({"id": "/a"}), "/", msg);
        rule(json!({"id": "/a", "container": {"docker": {"image": "i"}}}), app(json!({"args": ["x"]})), "/", msg);
        rule(app(json!({"container": {"docker": {"image": "i"}}})), json!({"id": "/a", "container": {"type": "MESOS"}}), "/", msg);
    }

    #[test]
    fn cmd_must_be_longer_than_one_character() {
        rule(app(json!({"cmd": "ls"})), app(json!({"cmd": "w"})), "/", "must not be an empty string");
    }

    #[test]
    fn docker_image_and_section() {
        let mut raw = read_app(&app(json!({"container": {"docker": {"image": "i"}}})), "", &PathId::root()).unwrap();
        if let Some(d) = raw.container.as_mut().and_then(|c| c.docker.as_mut()) {
            d.image.clear();
        }
        let errs = validate(&normalize(raw).unwrap()).unwrap_err();
        assert!(errs.contains(&Violation::new("/container/docker/image", "must not be empty")));
        rule(
            app(json!({"container": {"type": "MESOS"}})),
            app(json!({"container": {"type": "DOCKER"}})),
            "/container/docker",
            "not defined",
        );
    }

    #[test]
    fn legacy_network_and_networks_conflict() {
        rule(
            app(json!({"container": {"docker": {"image": "i", "network": "BRIDGE"}}})),
            app(json!({"container": {"docker": {"image": "i", "network": "BRIDGE"}}, "networks": [{"mode": "container/bridge"}]})),
            "/",
            "must not specify both container.docker.network and networks",
        );
    }

    #[test]
    fn legacy_ports_rules() {
        rule(app(json!({"ports": [0, 0, 80]})), app(json!({"ports": [80, 80]})), "/", "ports must be unique");
        rule(
            app(json!({"ports": [80], "portDefinitions": [{"port": 80}]})),
            app(json!({"ports": [80], "portDefinitions": [{"port": 81}]})),
            "/",
            "cannot specify both ports and port definitions",
        );
        rule(
            app(json!({"container": {"docker": {"image": "i"}}})),
            app(json!({"container": {"docker": {"image": "i", "credential": {"principal": "p"}}}})),
            "/container/docker/credential",
            "must be empty",
        );
        rule(
            app(json!({"container": {"type": "MESOS", "docker": {"image": "i"}}})),
            app(json!({"container": {"type": "MESOS", "docker": {"image": "i", "parameters": [{"key": "k", "value": "v"}]}}})),
            "/container/docker/parameters",
            "must be empty",
        );
    }

    #[test]
    fn fetch_and_uris_conflict() {
        rule(
            app(json!({"uris": ["http://h/a"]})),
            app(json!({"uris": ["http://h/a"], "fetch": [{"uri": "http://h/b"}]})),
            "/uris",
            "may not be set in conjunction with fetch",
        );
        rule(
            app(json!({"fetch": [{"uri": "http://h/b"}]})),
            app(json!({"fetch": [{"uri": "http://h/a b"}]})),
            "/fetch(0)/uri",
            "URI has invalid syntax.",
        );
    }

    #[test]
    fn port_mappings_need_non_host_networking() {
        let mut a = normalize(read_app(&app(json!({})), "", &PathId::root()).unwrap()).unwrap();
        assert_eq!(validate(&a), Ok(()));
        a.container = Some(Container { port_mappings: Some(vec![PortMapping::default()]), ..Container::of(ContainerType::Mesos) });
        assert!(validate(&a).unwrap_err().contains(&Violation::new("/", "portMappings are not allowed with host-networking")));
    }

    #[test]
    fn port_definitions_need_host_networking() {
        let mut a = normalize(read_app(&app(json!({"networks": [{"mode": "container/bridge"}]})), "", &PathId::root()).unwrap()).unwrap();
        assert_eq!(validate(&a), Ok(()));
        a.port_definitions = Some(vec![PortDefinition::default()]);
        assert!(validate(&a).unwrap_err().contains(&Violation::new("/", "portDefinitions are only allowed with host-networking")));
    }

    #[test]
    fn port_names_and_numbers_unique() {
        rule(
            app(json!({"portDefinitions": [{"name": "a"}, {"name": "b"}]})),
            app(json!({"portDefinitions": [{"name": "a"}, {"name": "a"}]})),
            "/portDefinitions",
            "Port names must be unique.",
        );
        rule(
            app(json!({"portDefinitions": [{"port": 0}, {"port": 0}]})),
            app(json!({"portDefinitions": [{"port": 80}, {"port": 80}]})),
            "/portDefinitions",
            "Ports must be unique.",
        );
        rule(
            app(
                json!({"networks": [{"mode": "container/bridge"}], "container": {"docker": {"image": "i"}, "portMappings": [{"name": "a"}, {"name": "b"}]}}),
            ),
            app(
                json!({"networks": [{"mode": "container/bridge"}], "container": {"docker": {"image": "i"}, "portMappings": [{"name": "a"}, {"name": "a"}]}}),
            ),
            "/container/portMappings",
            "Port names must be unique.",
        );
    }

    #[test]
    fn health_check_port_index() {
        rule(
            app(json!({"portDefinitions": [{}, {}], "healthChecks": [{"portIndex": 1}]})),
            app(json!({"portDefinitions": [{}, {}], "healthChecks": [{"portIndex": 2}]})),
            "/healthChecks(0)",
            PORT_INDEX,
        );
        rule(
            app(json!({"portDefinitions": [], "healthChecks": [{"port": 8080}]})),
            app(json!({"portDefinitions": [], "healthChecks": [{"protocol": "TCP"}]})),
            "/healthChecks(0)",
            PORT_INDEX,
        );
    }

    #[test]
    fn health_check_kinds() {
        rule(
            app(
                json!({"healthChecks": [{"protocol": "MESOS_HTTP"}, {"protocol": "COMMAND", "command": {"value": "true"}}, {"protocol": "COMMAND", "command": {"value": "true"}}]}),
            ),
            app(json!({"healthChecks": [{"protocol": "MESOS_HTTP"}, {"protocol": "MESOS_TCP"}]})),
            "/",
            "AppDefinition can contain at most one Mesos health check",
        );
        rule(
            app(json!({"container": {"docker": {"image": "i"}}, "healthChecks": [{"protocol": "MESOS_HTTP", "ipProtocol": "IPv6"}]})),
            app(json!({"healthChecks": [{"protocol": "HTTP", "ipProtocol": "IPv6"}]})),
            "/healthChecks(0)",
            "IPv6 can only be used for container type DOCKER and Mesos http/https/tcp health checks",
        );
        rule(
            app(json!({"healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}]})),
            app(json!({"healthChecks": [{"protocol": "COMMAND"}]})),
            "/healthChecks(0)/command",
            "not defined",
        );
    }

    #[test]
    fn readiness_checks() {
        let ok = app(json!({"portDefinitions": [{"name": "http-api"}], "readinessChecks": [{}]}));
        rule(
            ok.clone(),
            app(json!({"portDefinitions": [{"name": "http-api"}], "readinessChecks": [{}, {"name": "b"}]})),
            "/readinessChecks",
            "got 2, expected 1 or less",
        );
        rule(
            ok.clone(),
            app(json!({"portDefinitions": [{"name": "web"}], "readinessChecks": [{}]})),
            "/readinessChecks(0)/portName",
            "No port definition reference for portName http-api",
        );
        rule(
            ok,
            app(json!({"portDefinitions": [{"name": "http-api"}], "readinessChecks": [{"timeoutSeconds": 30}]})),
            "/readinessChecks(0)/timeoutSeconds",
            "got 30, expected less than 30",
        );
    }

    #[test]
    fn constraints_use_the_matcher_parser() {
        let errs = check(app(json!({"constraints": [["hostname", "UNIQUE"], ["rack", "NEAR", "x"], ["a"]]}))).unwrap_err();
        assert!(errs.iter().any(|v| v.path == "/constraints(1)"), "{errs:?}");
        assert!(errs.iter().any(|v| v.path == "/constraints(2)"), "{errs:?}");
        assert!(!errs.iter().any(|v| v.path == "/constraints(0)"));
        assert_eq!(check(app(json!({"constraints": [["hostname", "MAX_PER", "2"]]}))), Ok(()));
    }

    #[test]
    fn ranges_on_hand_built_apps() {
        let mut a = normalize(read_app(&app(json!({})), "", &PathId::root()).unwrap()).unwrap();
        a.backoff_factor = 0.5;
        a.cpus = -1.0;
        a.mem = f64::NAN;
        a.upgrade_strategy.minimum_health_capacity = 1.5;
        a.upgrade_strategy.maximum_over_capacity = -0.1;
        a.unreachable_strategy = UnreachableStrategy::Enabled { inactive_after_seconds: 20, expunge_after_seconds: 10 };
        a.executor = "//x".into();
        let errs = validate(&a).unwrap_err();
        for (path, msg) in [
            ("/backoffFactor", "got 0.5, expected 1.0 or more"),
            ("/cpus", "got -1.0, expected 0.0 or more"),
            ("/mem", "got NaN, expected 0.0 or more"),
            ("/upgradeStrategy/minimumHealthCapacity", "got 1.5, expected between 0.0 and 1.0"),
            ("/upgradeStrategy/maximumOverCapacity", "got -0.1, expected between 0.0 and 1.0"),
            ("/unreachableStrategy/inactiveAfterSeconds", "got 20, expected 10 or less"),
            ("/executor", "must fully match regular expression '^(//cmd)|(/?[^/]+(/[^/]+)*)|$'"),
        ] {
            assert!(errs.contains(&Violation::new(path, msg)), "missing {path}: {msg} in {errs:?}");
        }
        assert_eq!(errs.len(), 7, "{errs:?}");
    }

    #[test]
    fn unreachable_expunge_after_inactive() {
        rule(
            app(json!({"unreachableStrategy": {"inactiveAfterSeconds": 10, "expungeAfterSeconds": 10}})),
            app(json!({"unreachableStrategy": {"inactiveAfterSeconds": 11, "expungeAfterSeconds": 10}})),
            "/unreachableStrategy/inactiveAfterSeconds",
            "got 11, expected 10 or less",
        );
    }

    #[test]
    fn env_keys_and_secrets() {
        rule(app(json!({"env": {"my-var": "x"}})), app(json!({"env": {"": "x"}})), "/env/", "must not be empty");
        let long = "A".repeat(255);
        let mut env = serde_json::Map::new();
        env.insert(long.clone(), json!("x"));
        rule(app(json!({"env": {"A": "x"}})), app(json!({"env": env})), &format!("/env/{long}"), "variable name must be 254 chars or less");
        rule(
            app(json!({})),
            app(json!({"env": {"A": {"secret": "s"}}})),
            "/env",
            "use of secret-references in the environment requires the secrets feature to be enabled",
        );
        rule(app(json!({})), app(json!({"secrets": {"s": {"source": "/x"}}})), "/secrets", SECRETS_OFF);
    }

    #[test]
    fn gpus_need_mesos_containerizer() {
        rule(
            app(json!({"gpus": 1, "container": {"type": "MESOS", "docker": {"image": "i"}}})),
            app(json!({"gpus": 1, "container": {"docker": {"image": "i"}}})),
            "/",
            "GPU resources only work with the Mesos containerizer",
        );
    }

    #[test]
    fn networks_rules() {
        rule(
            app(json!({"networks": [{"mode": "host"}]})),
            app(json!({"networks": [{"mode": "host", "name": "x"}]})),
            "/networks",
            "Host networks may not have names or labels",
        );
        rule(
            app(json!({"networks": [{"name": "a"}, {"name": "b"}]})),
            app(json!({"networks": [{"name": "a"}, {"name": "a"}]})),
            "/networks",
            "Duplicate networks are not allowed",
        );
        rule(
            app(json!({"networks": [{"mode": "container/bridge"}]})),
            app(json!({"networks": [{"mode": "container/bridge"}, {"mode": "host"}]})),
            "/networks",
            "May specify a single host network, single bridge network, or else 1-to-n container networks",
        );
        rule(
            app(json!({"networks": [{"name": "a"}]})),
            app(json!({"networks": [{"mode": "container"}]})),
            "/networks",
            "Network name must be specified when container network is selected.",
        );
        rule(
            app(json!({"container": {"docker": {"image": "i"}}, "networks": [{"name": "a"}]})),
            app(json!({"container": {"docker": {"image": "i"}}, "networks": [{"name": "a"}, {"name": "b"}]})),
            "/",
            "may only specify a single container network when using the Docker container engine",
        );
        rule(
            app(
                json!({"networks": [{"name": "a"}, {"name": "b"}], "container": {"type": "MESOS", "portMappings": [{"hostPort": 0, "networkNames": ["a"]}]}}),
            ),
            app(json!({"networks": [{"name": "a"}, {"name": "b"}], "container": {"type": "MESOS", "portMappings": [{"hostPort": 0}]}})),
            "/container/portMappings(0)",
            "networkNames must be a single item list when hostPort is specified and more than 1 container network is defined",
        );
        rule(
            app(json!({"networks": [{"name": "a"}], "container": {"type": "MESOS", "portMappings": [{"networkNames": ["a"]}]}})),
            app(json!({"networks": [{"name": "a"}], "container": {"type": "MESOS", "portMappings": [{"networkNames": ["z"]}]}})),
            "/container/portMappings(0)/networkNames(0)",
            "is not one of (a)",
        );
    }

    #[test]
    fn roles() {
        rule(
            app(json!({"acceptedResourceRoles": ["*", "public"]})),
            app(json!({"acceptedResourceRoles": []})),
            "/acceptedResourceRoles",
            "must not be empty",
        );
        rule(
            app(json!({"acceptedResourceRoles": ["*"]})),
            app(json!({"acceptedResourceRoles": ["a b"]})),
            "/acceptedResourceRoles(0)",
            "A role name must not include a space (\\x20) character.",
        );
        rule(app(json!({"role": "dev"})), app(json!({"role": "-dev"})), "/role", "A role name must not start with a '-'.");
    }

    #[test]
    fn volumes() {
        rule(
            app(json!({"container": {"type": "MESOS", "volumes": [{"containerPath": "/d", "hostPath": "/h", "mode": "RO"}]}})),
            app(json!({"container": {"type": "MESOS", "volumes": [{"containerPath": "d", "persistent": {"size": 10}, "mode": "RW"}]}})),
            "/container/volumes(0)",
            "persistent volumes are not supported: this scheduler runs no resident apps",
        );
        rule(
            app(json!({"container": {"type": "MESOS", "volumes": [{"containerPath": "/d", "hostPath": "conf/..x", "mode": "RO"}]}})),
            app(
                json!({"container": {"type": "MESOS", "volumes": [{"containerPath": "/d", "hostPath": "conf/../../../etc", "mode": "RO"}]}}),
            ),
            "/container/volumes(0)/hostPath",
            "a relative host path is inside the task's sandbox and must not climb out of it with '..'; give an absolute path instead",
        );
        let errs = check(app(json!({"container": {"type": "MESOS", "volumes": [{"containerPath": "/d"}]}}))).unwrap_err();
        assert_eq!(errs, vec![Violation::new("/container/volumes(0)", "Unknown app volume type")]);
    }

    #[test]
    fn labels_with_meaning() {
        rule(
            app(
                json!({"instances": 1, "labels": {"MARATHON_SINGLE_INSTANCE_APP": "true"}, "upgradeStrategy": {"minimumHealthCapacity": 0, "maximumOverCapacity": 0}}),
            ),
            app(json!({"instances": 2, "labels": {"MARATHON_SINGLE_INSTANCE_APP": "true"}})),
            "/",
            "Single instance app may only have one instance",
        );
        let errs = check(app(json!({"labels": {"MARATHON_SINGLE_INSTANCE_APP": "true"}}))).unwrap_err();
        assert!(errs.contains(&Violation::new("/upgradeStrategy/minimumHealthCapacity", "got 1.0, expected 0.0")));
        rule(
            app(
                json!({"labels": {"DCOS_MIGRATION_API_VERSION": "v1", "DCOS_PACKAGE_FRAMEWORK_NAME": "f", "DCOS_MIGRATION_API_PATH": "/p"}}),
            ),
            app(json!({"labels": {"DCOS_MIGRATION_API_VERSION": "v1"}})),
            "/",
            "DCOS_PACKAGE_FRAMEWORK_NAME and DCOS_MIGRATION_API_PATH must be defined when using DCOS_MIGRATION_API_VERSION",
        );
    }

    #[test]
    fn lists_every_violation_at_once() {
        let errs = check(json!({"id": "/", "cmd": "x", "args": ["y"], "readinessChecks": [{}, {}],
            "healthChecks": [{"portIndex": 5}], "constraints": [["h"]]}))
        .unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|v| v.path.as_str()).collect();
        for p in ["/", "/id", "/readinessChecks", "/readinessChecks(0)/portName", "/healthChecks(0)", "/constraints(0)"] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
    }

    #[test]
    fn uri_syntax() {
        for ok in ["http://h/a.tgz", "hdfs://nn:8020/x", "file:///tmp/a", "a/b", "http://h/a%20b"] {
            assert!(valid_uri(ok), "{ok}");
        }
        for bad in ["", "http://h/a b", "http://h/%zz", "1http://h", "http://h/{x}"] {
            assert!(!valid_uri(bad), "{bad}");
        }
    }
}
