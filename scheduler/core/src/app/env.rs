//! The environment Marathon gives a task (`docs/docs/task-environment-vars.md`,
//! `TaskBuilder.commandInfo`, `EnvironmentHelper.portsEnv` and `labelsToEnvVars` in 1.10).
//!
//! - `MESOS_TASK_ID`, `MARATHON_APP_ID`, `MARATHON_APP_VERSION`, `MARATHON_APP_DOCKER_IMAGE` (when
//!   the app has a Docker image), `MARATHON_APP_RESOURCE_CPUS`/`MEM`/`DISK` (printed as Java
//!   doubles: `1.0`, `128.0`) and `_GPUS`.
//! - `MARATHON_APP_LABELS`: the label names, space-separated, each with every run of characters
//!   outside `[a-zA-Z0-9_]` replaced by `_` and upper-cased; `MARATHON_APP_LABEL_<NAME>=value`
//!   for each. Labels whose name has 493 or more characters, or whose value has 512 or more,
//!   are left out.
//! - Ports, indexed over the container's port mappings when it has any, else the port
//!   definitions: `PORT<i>` (the host port; for a mapping without host port, the container port),
//!   `PORT_<requested>` (keyed by the declared port number, or by the host port when the
//!   declared one is 0), `PORT_<NAME>` (upper-cased name, not otherwise sanitized), `PORT` (the
//!   first assigned port) and `PORTS` (comma-separated). Marathon picks a *random* port for a
//!   container-only mapping with container port 0; here it is the lowest free port from 1025,
//!   so the function stays pure.
//! - `HOST`.
//! - Last, the app's own `env` string values, which override everything above (secret
//!   references are skipped: they need Marathon's secrets feature).
//!
//! Marathon's `--env_vars_prefix` (a prefix for the port variables and `HOST`) is not applied.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::definition::{AppDefinition, EnvValue};
use super::jvm::double;
use crate::ids::TaskId;

/// Marathon's limit on a variable name plus value.
const MAX_LENGTH: usize = 512;
/// The prefix of label variables.
const LABEL_PREFIX: &str = "MARATHON_APP_LABEL_";

/// The environment variables of a task of `app` with id `task_id` on agent `host`, given the
/// host ports assigned to it in order (one per port definition, or one per port mapping that
/// asks for a host port). Names are unique; the app's own `env` wins over Marathon's variables.
pub fn task_env(app: &AppDefinition, task_id: &TaskId, host: &str, host_ports: &[u32]) -> Vec<(String, String)> {
    let mut env = Env::default();
    env.set("MESOS_TASK_ID", task_id.to_string());
    env.set("MARATHON_APP_ID", app.id.to_string());
    if let Some(version) = app.version {
        env.set("MARATHON_APP_VERSION", version.to_string());
    }
    if let Some(image) = app.docker_image() {
        env.set("MARATHON_APP_DOCKER_IMAGE", image.to_string());
    }
    env.set("MARATHON_APP_RESOURCE_CPUS", double(app.cpus));
    env.set("MARATHON_APP_RESOURCE_MEM", double(app.mem));
    env.set("MARATHON_APP_RESOURCE_DISK", double(app.disk));
    env.set("MARATHON_APP_RESOURCE_GPUS", app.gpus.to_string());
    labels(app, &mut env);
    ports(app, host_ports, &mut env);
    env.set("HOST", host.to_string());
    for (name, value) in &app.env {
        if let EnvValue::Value(v) = value {
            env.set(name, v.clone());
        }
    }
    env.vars
}

/// An ordered environment where setting a name again replaces its value in place.
#[derive(Default)]
struct Env {
    vars: Vec<(String, String)>,
    /// Position of each name in `vars`.
    index: HashMap<String, usize>,
}

impl Env {
    fn set(&mut self, name: &str, value: String) {
        match self.index.get(name).and_then(|i| self.vars.get_mut(*i)) {
            Some(slot) => slot.1 = value,
            None => {
                self.index.insert(name.to_string(), self.vars.len());
                self.vars.push((name.to_string(), value));
            }
        }
    }
}

/// `MARATHON_APP_LABELS` and `MARATHON_APP_LABEL_*`.
fn labels(app: &AppDefinition, env: &mut Env) {
    let mut kept: BTreeMap<String, &str> = BTreeMap::new();
    for (name, value) in &app.labels {
        let short_name = name.encode_utf16().count() < MAX_LENGTH - LABEL_PREFIX.len();
        let short_value = value.encode_utf16().count() < MAX_LENGTH;
        if short_name && short_value {
            kept.insert(env_name(name), value);
        }
    }
    env.set("MARATHON_APP_LABELS", kept.keys().cloned().collect::<Vec<_>>().join(" "));
    for (name, value) in kept {
        env.set(&format!("{LABEL_PREFIX}{name}"), value.to_string());
    }
}

/// A label name as a variable name: runs of characters outside `[a-zA-Z0-9_]` become `_`,
/// then upper case.
fn env_name(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut in_run = false;
    for c in label.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c.to_ascii_uppercase());
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

/// One declared port: its name, its number (container port with mappings, else the port
/// definition's) and whether it gets a host port.
struct Declared<'a> {
    name: Option<&'a str>,
    port: u32,
    wants_host_port: bool,
}

/// The port variables (`EnvironmentHelper.portsEnv`).
fn ports(app: &AppDefinition, host_ports: &[u32], env: &mut Env) {
    let declared: Vec<Declared<'_>> = match app.container.as_ref().and_then(|c| c.port_mappings.as_ref()) {
        Some(mappings) if !mappings.is_empty() => mappings
            .iter()
            .map(|m| Declared { name: m.name.as_deref(), port: m.container_port, wants_host_port: m.host_port.is_some() })
            .collect(),
        _ => app
            .port_definitions
            .iter()
            .flatten()
            .map(|d| Declared { name: d.name.as_deref(), port: d.port, wants_host_port: true })
            .collect(),
    };
    if declared.is_empty() {
        return;
    }
    let mut assigned = host_ports.iter().copied();
    let effective: Vec<Option<u32>> = declared.iter().map(|d| if d.wants_host_port { assigned.next() } else { None }).collect();

    // Container ports to stand in for container-only mappings that declare port 0.
    let used: HashSet<u32> = declared.iter().map(|d| d.port).chain(effective.iter().flatten().copied()).collect();
    let mut candidates = (1025..=65_535).filter(|p| !used.contains(p));
    let generated: Vec<Option<u32>> = declared
        .iter()
        .zip(&effective)
        .map(|(d, eff)| match (eff, d.port) {
            (None, 0) => candidates.next(),
            _ => None,
        })
        .collect();

    for (i, (d, (eff, gen_port))) in declared.iter().zip(effective.iter().zip(&generated)).enumerate() {
        let value = eff.or(*gen_port).or((d.port != 0).then_some(d.port));
        if let Some(v) = value {
            env.set(&format!("PORT{i}"), v.to_string());
        }
    }
    for (d, (eff, gen_port)) in declared.iter().zip(effective.iter().zip(&generated)) {
        let entry = match (eff, d.port) {
            (Some(host), 0) => Some((*host, *host)),
            (Some(host), requested) => Some((requested, *host)),
            (None, 0) => gen_port.map(|g| (g, g)),
            (None, requested) => Some((requested, requested)),
        };
        if let Some((key, value)) = entry {
            env.set(&format!("PORT_{key}"), value.to_string());
        }
    }
    for (d, (eff, gen_port)) in declared.iter().zip(effective.iter().zip(&generated)) {
        let Some(name) = d.name else { continue };
        // Marathon writes the declared port (possibly 0) for a container-only mapping; the
        // port the task can actually use is more helpful.
        let value = eff.or(*gen_port).unwrap_or(d.port);
        env.set(&format!("PORT_{}", name.to_uppercase()), value.to_string());
    }
    let all: Vec<String> = effective.iter().flatten().chain(generated.iter().flatten()).map(ToString::to_string).collect();
    if let Some(first) = all.first() {
        env.set("PORT", first.clone());
    }
    env.set("PORTS", all.join(","));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::app::parse::parse_app;
    use crate::ids::{InstanceId, PathId};
    use serde_json::{Value, json};

    fn task() -> TaskId {
        InstanceId::new(&PathId::parse("/shop/web").unwrap(), "4b2d1e6a").task_id(1)
    }

    fn env_of(body: Value, ports: &[u32]) -> BTreeMap<String, String> {
        let app = parse_app(body.to_string().as_bytes(), &PathId::root()).unwrap();
        let vars = task_env(&app, &task(), "agent-1", ports);
        let map: BTreeMap<String, String> = vars.iter().cloned().collect();
        assert_eq!(map.len(), vars.len(), "names are unique");
        map
    }

    #[test]
    fn app_metadata() {
        let env = env_of(
            json!({"id": "/shop/web", "cmd": "run", "cpus": 0.5, "mem": 256, "gpus": 0, "version": "2015-02-03T12:30:00.000Z",
                "container": {"type": "MESOS", "docker": {"image": "myregistry/myimage:version"}},
                "labels": {"LABEL1": "VALUE1", "my.label-x": "v", "long": "x".repeat(600)}}),
            &[31000],
        );
        assert_eq!(env["MESOS_TASK_ID"], task().to_string());
        assert_eq!(env["MARATHON_APP_ID"], "/shop/web");
        assert_eq!(env["MARATHON_APP_VERSION"], "2015-02-03T12:30:00.000Z");
        assert_eq!(env["MARATHON_APP_DOCKER_IMAGE"], "myregistry/myimage:version");
        assert_eq!(env["MARATHON_APP_RESOURCE_CPUS"], "0.5");
        assert_eq!(env["MARATHON_APP_RESOURCE_MEM"], "256.0");
        assert_eq!(env["MARATHON_APP_RESOURCE_DISK"], "0.0");
        assert_eq!(env["MARATHON_APP_RESOURCE_GPUS"], "0");
        assert_eq!(env["MARATHON_APP_LABELS"], "LABEL1 MY_LABEL_X");
        assert_eq!(env["MARATHON_APP_LABEL_LABEL1"], "VALUE1");
        assert_eq!(env["MARATHON_APP_LABEL_MY_LABEL_X"], "v");
        assert!(!env.contains_key("MARATHON_APP_LABEL_LONG"));
        assert_eq!(env["HOST"], "agent-1");
    }

    #[test]
    fn host_ports_from_port_definitions() {
        let env = env_of(
            json!({"id": "/a", "cmd": "run", "portDefinitions": [{"port": 0, "name": "http"}, {"port": 9000}, {"port": 0}]}),
            &[31001, 31002, 31003],
        );
        assert_eq!(env["PORT0"], "31001");
        assert_eq!(env["PORT1"], "31002");
        assert_eq!(env["PORT2"], "31003");
        assert_eq!(env["PORT_31001"], "31001");
        assert_eq!(env["PORT_9000"], "31002");
        assert_eq!(env["PORT_HTTP"], "31001");
        assert_eq!(env["PORT"], "31001");
        assert_eq!(env["PORTS"], "31001,31002,31003");
        assert!(!env.contains_key("MARATHON_APP_DOCKER_IMAGE"));
        assert!(!env.contains_key("MARATHON_APP_VERSION"));
    }

    #[test]
    fn bridge_mappings_key_by_container_port() {
        let env = env_of(
            json!({"id": "/a", "networks": [{"mode": "container/bridge"}], "container": {"docker": {"image": "nginx"},
                "portMappings": [{"containerPort": 80, "name": "web"}, {"containerPort": 0}]}}),
            &[31500, 31501],
        );
        assert_eq!(env["PORT0"], "31500");
        assert_eq!(env["PORT_80"], "31500");
        assert_eq!(env["PORT_WEB"], "31500");
        assert_eq!(env["PORT1"], "31501");
        assert_eq!(env["PORT_31501"], "31501");
        assert_eq!(env["PORTS"], "31500,31501");
    }

    #[test]
    fn container_only_mappings() {
        let env = env_of(
            json!({"id": "/a", "cmd": "run", "networks": [{"mode": "container", "name": "n"}], "container": {"type": "MESOS",
                "portMappings": [{"containerPort": 8080, "name": "api"}, {"containerPort": 0}, {"containerPort": 9000, "hostPort": 0}]}}),
            &[31900],
        );
        assert_eq!(env["PORT0"], "8080");
        assert_eq!(env["PORT_8080"], "8080");
        assert_eq!(env["PORT_API"], "8080");
        assert_eq!(env["PORT1"], "1025");
        assert_eq!(env["PORT_1025"], "1025");
        assert_eq!(env["PORT2"], "31900");
        assert_eq!(env["PORT_9000"], "31900");
        assert_eq!(env["PORT"], "31900");
        assert_eq!(env["PORTS"], "31900,1025");
    }

    #[test]
    fn no_ports_and_user_env_wins() {
        let env = env_of(json!({"id": "/a", "cmd": "run", "portDefinitions": [], "env": {"HOST": "mine", "X": "1"}}), &[]);
        assert!(!env.contains_key("PORTS") && !env.contains_key("PORT0"));
        assert_eq!(env["HOST"], "mine");
        assert_eq!(env["X"], "1");
        assert_eq!(env["MARATHON_APP_LABELS"], "");
    }

    #[test]
    fn label_names() {
        assert_eq!(env_name("a.b--c"), "A_B_C");
        assert_eq!(env_name("ünï"), "_N_");
        assert_eq!(env_name("ok_1"), "OK_1");
    }
}
