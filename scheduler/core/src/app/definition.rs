//! The Marathon app definition as plain data, with Marathon's defaults and the JSON it writes.
//!
//! Field names and defaults follow Marathon 1.10 (`app.raml` and friends, `AppConversion.scala`).
//! Reading JSON lives in the private `read` module (it reports every error with play-json's keys);
//! writing is the `Serialize` impl here, in Marathon 1.10's shape: empty `args`, `constraints`,
//! `dependencies`, `env`, `fetch`, `healthChecks`, `readinessChecks`, `secrets` and `storeUrls`
//! are omitted (RAML `omitEmpty`), `portDefinitions` is written only for host networking and
//! `container.portMappings` only for other networking, deprecated fields (`ports`, `uris`,
//! `container.docker.network`, `container.docker.portMappings`) are written only while they are
//! set, which is never after normalization.

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::{AppId, Timestamp};

/// Defines a closed set of Marathon string literals: the enum, its wire name, a
/// case-insensitive reader (RAML-generated readers lower-case the input) and serde impls.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every literal Marathon accepts, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The literal Marathon writes.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            /// Reads a literal, ignoring case as Marathon does.
            pub fn from_name(raw: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name().eq_ignore_ascii_case(raw))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::from_name(&raw)
                    .ok_or_else(|| serde::de::Error::custom(format!("unknown {} '{raw}'", stringify!($name))))
            }
        }
    };
}

wire_enum! {
    /// The container engine (`container.type`).
    #[derive(Default)]
    ContainerType {
        /// Docker containerizer (Marathon's default for a `container` object).
        #[default]
        Docker = "DOCKER",
        /// Mesos (universal) containerizer.
        Mesos = "MESOS",
    }
}

wire_enum! {
    /// The deprecated `container.docker.network`, translated into `networks` on read.
    DockerNetwork {
        /// Docker bridge: becomes `[{mode: container/bridge}]`.
        Bridge = "BRIDGE",
        /// Host networking: becomes `[{mode: host}]`.
        Host = "HOST",
        /// No networking: Marathon 1.5+ refuses it ("unsupported docker network type NONE").
        None = "NONE",
        /// A user (CNI) network: becomes `[{mode: container}]`.
        User = "USER",
    }
}

wire_enum! {
    /// How a task joins the network (`networks[].mode`).
    NetworkMode {
        /// A named container (CNI) network; the default mode inside a `networks` entry.
        Container = "container",
        /// The bridge network of the container engine.
        ContainerBridge = "container/bridge",
        /// The agent's network namespace (the default when `networks` is absent).
        Host = "host",
    }
}

wire_enum! {
    /// A port's protocol.
    #[derive(Default)]
    Protocol {
        /// TCP (default).
        #[default]
        Tcp = "tcp",
        /// UDP.
        Udp = "udp",
        /// Both; Marathon's RAML spells it `tcp,udp` (`udp,tcp` is read too).
        TcpUdp = "tcp,udp",
    }
}

impl Protocol {
    /// Reads `tcp`, `udp`, `tcp,udp` or `udp,tcp`.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.eq_ignore_ascii_case("udp,tcp") { Some(Protocol::TcpUdp) } else { Self::from_name(raw) }
    }
}

wire_enum! {
    /// A health check's kind. HTTP, HTTPS and TCP are run by the scheduler; the others by Mesos.
    #[derive(Default)]
    HealthCheckProtocol {
        /// HTTP GET from the scheduler (default).
        #[default]
        Http = "HTTP",
        /// HTTPS GET from the scheduler (certificate not verified).
        Https = "HTTPS",
        /// TCP connect from the scheduler.
        Tcp = "TCP",
        /// A shell command run by Mesos.
        Command = "COMMAND",
        /// TCP check run by Mesos.
        MesosTcp = "MESOS_TCP",
        /// HTTP check run by Mesos.
        MesosHttp = "MESOS_HTTP",
        /// HTTPS check run by Mesos.
        MesosHttps = "MESOS_HTTPS",
    }
}

impl HealthCheckProtocol {
    /// Whether Mesos (not the scheduler) runs checks of this kind.
    pub fn is_mesos(self) -> bool {
        matches!(
            self,
            HealthCheckProtocol::Command | HealthCheckProtocol::MesosTcp | HealthCheckProtocol::MesosHttp | HealthCheckProtocol::MesosHttps
        )
    }
}

wire_enum! {
    /// The IP family a Mesos HTTP/TCP health check uses.
    #[derive(Default)]
    IpProtocol {
        /// IPv4 (default).
        #[default]
        IPv4 = "IPv4",
        /// IPv6 (Docker containers with Mesos HTTP/HTTPS/TCP checks only).
        IPv6 = "IPv6",
    }
}

wire_enum! {
    /// The scheme of a readiness check.
    #[derive(Default)]
    HttpScheme {
        /// Plain HTTP (default).
        #[default]
        Http = "HTTP",
        /// HTTPS.
        Https = "HTTPS",
    }
}

wire_enum! {
    /// Which instances go first when scaling down.
    #[derive(Default)]
    KillSelection {
        /// The newest instances (default).
        #[default]
        YoungestFirst = "YOUNGEST_FIRST",
        /// The oldest instances.
        OldestFirst = "OLDEST_FIRST",
    }
}

wire_enum! {
    /// A host volume's access mode.
    ReadMode {
        /// Read-only.
        Ro = "RO",
        /// Read-write.
        Rw = "RW",
    }
}

/// An `env` value: a plain string or a reference to a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EnvValue {
    /// A literal value.
    Value(String),
    /// `{"secret": "<name in secrets>"}`; needs Marathon's `secrets` feature.
    Secret {
        /// The name of an entry in the app's `secrets`.
        secret: String,
    },
}

/// A `secrets` entry: where the secret store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretDef {
    /// The path in the secret store.
    pub source: String,
}

/// A `fetch` entry: something the Mesos fetcher downloads into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// What to download (1 to 1024 characters).
    pub uri: String,
    /// Unpack archives (default true).
    pub extract: bool,
    /// Mark the file executable (default false).
    pub executable: bool,
    /// Use the fetcher cache (default false).
    pub cache: bool,
    /// Where to put it in the sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_path: Option<String>,
}

impl Artifact {
    /// An artifact with Marathon's defaults.
    pub fn new(uri: impl Into<String>) -> Self {
        Self { uri: uri.into(), extract: true, executable: false, cache: false, dest_path: None }
    }
}

/// A `container.docker.parameters` entry, passed to `docker run --key=value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockerParameter {
    /// The option name (at least one character).
    pub key: String,
    /// Its value.
    pub value: String,
}

/// `container.docker.pullConfig`: registry credentials from a secret (Mesos containerizer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullConfig {
    /// The name of an entry in the app's `secrets`.
    pub secret: String,
}

/// `container.docker`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerContainer {
    /// The image (required, at least one character).
    pub image: String,
    /// Deprecated network mode; moved into the app's `networks` by normalization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<DockerNetwork>,
    /// Deprecated location of port mappings; moved to `container.portMappings` by normalization.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Vec<PortMapping>>,
    /// Run privileged (Docker containerizer only; default false).
    pub privileged: bool,
    /// Extra `docker run` options.
    pub parameters: Vec<DockerParameter>,
    /// Pull the image even if present (default false).
    pub force_pull_image: bool,
    /// Deprecated credentials; Marathon refuses them ("must be empty").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<serde_json::Value>,
    /// Registry credentials from a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_config: Option<PullConfig>,
}

impl DockerContainer {
    /// A Docker section for `image` with Marathon's defaults.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            network: None,
            port_mappings: None,
            privileged: false,
            parameters: Vec::new(),
            force_pull_image: false,
            credential: None,
            pull_config: None,
        }
    }
}

/// A `container.portMappings` entry (bridge or container networking).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// The port inside the container; 0 means "the same as the host port".
    pub container_port: u32,
    /// The host port: `Some(0)` for a dynamic one, `None` for no host port (container mode).
    /// Normalization sets missing host ports to 0 in bridge mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u32>,
    /// The service port for load balancers; 0 lets Marathon pick one.
    pub service_port: u32,
    /// The protocol (default tcp).
    pub protocol: Protocol,
    /// A name, unique among the app's mappings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The container networks this mapping applies to (all when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network_names: Vec<String>,
}

/// A `portDefinitions` entry (host networking).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PortDefinition {
    /// With `requirePorts` the exact host port; else 0 (dynamic port and service port) or a
    /// service port.
    pub port: u32,
    /// The protocol (default tcp).
    pub protocol: Protocol,
    /// A name, unique among the app's port definitions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A `networks` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    /// The mode (`container` when an entry omits it).
    pub mode: NetworkMode,
    /// The container network's name (container mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels for the network info (ignored for host networking).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Network {
    /// Host networking, the default when an app has no `networks`.
    pub fn host() -> Self {
        Self::of(NetworkMode::Host)
    }

    /// An unnamed, unlabelled network of `mode`.
    pub fn of(mode: NetworkMode) -> Self {
        Self { mode, name: None, labels: BTreeMap::new() }
    }
}

/// A `container.volumes` entry. Host volumes are kept as structured data; persistent,
/// external and secret volumes are kept verbatim (validation refuses them: this scheduler has
/// no resident apps and Marathon's `external_volumes`/`secrets` features are off).
#[derive(Debug, Clone, PartialEq)]
pub enum Volume {
    /// A directory of the agent (or the sandbox) mounted into the container.
    Host {
        /// The path inside the container.
        container_path: String,
        /// The path on the agent.
        host_path: String,
        /// RO or RW (default RW when omitted).
        mode: ReadMode,
    },
    /// Any other kind of volume, as given.
    Other(serde_json::Value),
}

impl Serialize for Volume {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Volume::Host { container_path, host_path, mode } => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("containerPath", container_path)?;
                m.serialize_entry("hostPath", host_path)?;
                m.serialize_entry("mode", mode)?;
                m.end()
            }
            Volume::Other(v) => v.serialize(s),
        }
    }
}

/// `container`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// The engine (`type`; default DOCKER).
    #[serde(rename = "type")]
    pub kind: ContainerType,
    /// The Docker image section (required for DOCKER, optional for MESOS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerContainer>,
    /// Port mappings: `Some` for bridge/container networking after normalization (an explicit
    /// `[]` means none), `None` for host networking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Vec<PortMapping>>,
    /// Volumes.
    pub volumes: Vec<Volume>,
}

impl Container {
    /// A container of `kind` with nothing else set.
    pub fn of(kind: ContainerType) -> Self {
        Self { kind, docker: None, port_mappings: None, volumes: Vec::new() }
    }

    /// A DOCKER container running `image`.
    pub fn docker(image: impl Into<String>) -> Self {
        Self { docker: Some(DockerContainer::new(image)), ..Self::of(ContainerType::Docker) }
    }
}

/// `healthChecks[].command`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandCheck {
    /// The shell command; exit code 0 means healthy.
    pub value: String,
}

/// A `healthChecks` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// The kind of check (default HTTP).
    pub protocol: HealthCheckProtocol,
    /// The HTTP path; `None` means `/` (Marathon writes it only when given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Index into the app's ports; normalization sets 0 when neither this nor `port` is given
    /// (for non-COMMAND checks of apps with ports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_index: Option<u32>,
    /// A fixed port to check instead of `portIndex`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// The command of COMMAND checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandCheck>,
    /// Failures are ignored this long after start (default 300).
    pub grace_period_seconds: u32,
    /// Time between checks (default 60).
    pub interval_seconds: u32,
    /// Time after which a check counts as failed (default 20).
    pub timeout_seconds: u32,
    /// Failures in a row before the task is killed (default 3; 0 = never for scheduler checks).
    pub max_consecutive_failures: u32,
    /// Time before the first check (default 15; Mesos checks only).
    pub delay_seconds: u32,
    /// Ignore 1xx HTTP answers (default false).
    pub ignore_http1xx: bool,
    /// IPv4 or IPv6 (default IPv4).
    pub ip_protocol: IpProtocol,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            protocol: HealthCheckProtocol::Http,
            path: None,
            port_index: None,
            port: None,
            command: None,
            grace_period_seconds: 300,
            interval_seconds: 60,
            timeout_seconds: 20,
            max_consecutive_failures: 3,
            delay_seconds: 15,
            ignore_http1xx: false,
            ip_protocol: IpProtocol::IPv4,
        }
    }
}

impl HealthCheck {
    /// The HTTP path to request (`/` when not given).
    pub fn effective_path(&self) -> &str {
        self.path.as_deref().unwrap_or("/")
    }
}

/// A `readinessChecks` entry (at most one per app).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessCheck {
    /// An identifier (default `readinessCheck`).
    pub name: String,
    /// HTTP or HTTPS (default HTTP).
    pub protocol: HttpScheme,
    /// The path to request (default `/`).
    pub path: String,
    /// The name of the port (definition or mapping) to query (default `http-api`).
    pub port_name: String,
    /// Time between checks (default 30).
    pub interval_seconds: u32,
    /// Time after which a check fails; must be below the interval (default 10).
    pub timeout_seconds: u32,
    /// Statuses meaning ready (default `[200]`).
    pub http_status_codes_for_ready: Vec<u16>,
    /// Keep the last response for the deployment view (default false).
    pub preserve_last_response: bool,
}

impl Default for ReadinessCheck {
    fn default() -> Self {
        Self {
            name: "readinessCheck".to_string(),
            protocol: HttpScheme::Http,
            path: "/".to_string(),
            port_name: "http-api".to_string(),
            interval_seconds: 30,
            timeout_seconds: 10,
            http_status_codes_for_ready: vec![200],
            preserve_last_response: false,
        }
    }
}

/// `upgradeStrategy`: how a rolling restart trades capacity for speed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    /// Fraction of `instances` that must stay healthy (0..=1, default 1).
    pub minimum_health_capacity: f64,
    /// Fraction of `instances` that may be started on top (0..=1, default 1).
    pub maximum_over_capacity: f64,
}

impl Default for UpgradeStrategy {
    fn default() -> Self {
        Self { minimum_health_capacity: 1.0, maximum_over_capacity: 1.0 }
    }
}

/// `unreachableStrategy`: what to do with instances whose agent is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreachableStrategy {
    /// `"disabled"`: never replace, never expunge.
    Disabled,
    /// Replace after `inactive_after_seconds`, forget after `expunge_after_seconds`
    /// (Marathon 1.6+ default: 0 and 0).
    Enabled {
        /// Seconds until a replacement is launched.
        inactive_after_seconds: u64,
        /// Seconds until the instance is expunged (at least `inactive_after_seconds`).
        expunge_after_seconds: u64,
    },
}

impl Default for UnreachableStrategy {
    fn default() -> Self {
        UnreachableStrategy::Enabled { inactive_after_seconds: 0, expunge_after_seconds: 0 }
    }
}

impl Serialize for UnreachableStrategy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UnreachableStrategy::Disabled => s.serialize_str("disabled"),
            UnreachableStrategy::Enabled { inactive_after_seconds, expunge_after_seconds } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("inactiveAfterSeconds", inactive_after_seconds)?;
                m.serialize_entry("expungeAfterSeconds", expunge_after_seconds)?;
                m.end()
            }
        }
    }
}

/// `versionInfo` (read-only in Marathon's API; kept by the scheduler).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// The last scale or restart.
    pub last_scaling_at: Timestamp,
    /// The last change other than scaling or restarting.
    pub last_config_change_at: Timestamp,
}

/// A Marathon app definition (1.6–1.10 API), after defaults.
///
/// Values produced by [`super::parse_app`] are normalized (see [`super::normalize`]): the
/// deprecated fields `ports`, `uris`, `container.docker.network` and
/// `container.docker.portMappings` are empty, `networks` is never empty, `port_definitions` is
/// `Some` exactly for host networking and `container.port_mappings` is `Some` exactly for
/// other networking.
#[derive(Debug, Clone, PartialEq)]
pub struct AppDefinition {
    /// The absolute app id.
    pub id: AppId,
    /// Shell command (`/bin/sh -c`).
    pub cmd: Option<String>,
    /// Exec-form command (Marathon omits it when empty).
    pub args: Vec<String>,
    /// The user to run as.
    pub user: Option<String>,
    /// Environment variables.
    pub env: BTreeMap<String, EnvValue>,
    /// Instance count (default 1).
    pub instances: u32,
    /// CPU shares per instance (default 1).
    pub cpus: f64,
    /// Memory in MiB per instance (default 128).
    pub mem: f64,
    /// Disk in MiB per instance (default 0).
    pub disk: f64,
    /// GPUs per instance (default 0).
    pub gpus: u32,
    /// The executor: `""` (default), `//cmd` or a path.
    pub executor: String,
    /// Placement constraints as Marathon writes them: `[field, OPERATOR, value?]`.
    pub constraints: Vec<Vec<String>>,
    /// Deprecated plain URI list; moved into `fetch` by normalization.
    pub uris: Vec<String>,
    /// Artifacts to fetch into the sandbox.
    pub fetch: Vec<Artifact>,
    /// URLs to resolve before starting (kept, not acted upon).
    pub store_urls: Vec<String>,
    /// Initial launch delay after a failure (default 1).
    pub backoff_seconds: u32,
    /// Factor applied to the delay per failure (default 1.15).
    pub backoff_factor: f64,
    /// Cap of the launch delay (default 300 in 1.7+; 3600 before).
    pub max_launch_delay_seconds: u32,
    /// The container, if any.
    pub container: Option<Container>,
    /// Health checks.
    pub health_checks: Vec<HealthCheck>,
    /// Readiness checks (at most one).
    pub readiness_checks: Vec<ReadinessCheck>,
    /// Apps or groups this app depends on (absolute ids).
    pub dependencies: Vec<AppId>,
    /// Rolling-restart strategy.
    pub upgrade_strategy: UpgradeStrategy,
    /// Free-form labels.
    pub labels: BTreeMap<String, String>,
    /// Roles whose offers may be used; `None` means the scheduler's default.
    pub accepted_resource_roles: Option<Vec<String>>,
    /// The Mesos role; `None` means the scheduler's default role.
    pub role: Option<String>,
    /// Use the port definitions' numbers as the exact host ports (host networking only).
    pub require_ports: bool,
    /// Host ports to reserve (host networking); see the type docs for when this is `Some`.
    pub port_definitions: Option<Vec<PortDefinition>>,
    /// Deprecated port list; moved into `port_definitions` by normalization.
    pub ports: Option<Vec<u32>>,
    /// Networks to join; normalization makes this `[{mode: host}]` when empty.
    pub networks: Vec<Network>,
    /// Which instances to kill first when scaling down.
    pub kill_selection: KillSelection,
    /// What to do about unreachable instances.
    pub unreachable_strategy: UnreachableStrategy,
    /// Seconds between SIGTERM and SIGKILL.
    pub task_kill_grace_period_seconds: Option<u32>,
    /// Attach a TTY.
    pub tty: Option<bool>,
    /// Secret definitions (Marathon's `secrets` feature; refused by validation here).
    pub secrets: BTreeMap<String, SecretDef>,
    /// The version (set by the scheduler when deployed; a body may carry one).
    pub version: Option<Timestamp>,
    /// When the app was last scaled and last changed otherwise.
    pub version_info: Option<VersionInfo>,
}

impl AppDefinition {
    /// An app with every Marathon default, as `{"id": ...}` reads after normalization (it has
    /// no command, so it is not valid until one is set).
    pub fn new(id: AppId) -> Self {
        Self {
            id,
            cmd: None,
            args: Vec::new(),
            user: None,
            env: BTreeMap::new(),
            instances: 1,
            cpus: 1.0,
            mem: 128.0,
            disk: 0.0,
            gpus: 0,
            executor: String::new(),
            constraints: Vec::new(),
            uris: Vec::new(),
            fetch: Vec::new(),
            store_urls: Vec::new(),
            backoff_seconds: 1,
            backoff_factor: 1.15,
            max_launch_delay_seconds: 300,
            container: None,
            health_checks: Vec::new(),
            readiness_checks: Vec::new(),
            dependencies: Vec::new(),
            upgrade_strategy: UpgradeStrategy::default(),
            labels: BTreeMap::new(),
            accepted_resource_roles: None,
            role: None,
            require_ports: false,
            port_definitions: Some(vec![default_port_definition()]),
            ports: None,
            networks: vec![Network::host()],
            kill_selection: KillSelection::YoungestFirst,
            unreachable_strategy: UnreachableStrategy::default(),
            task_kill_grace_period_seconds: None,
            tty: None,
            secrets: BTreeMap::new(),
            version: None,
            version_info: None,
        }
    }

    /// Whether any network is not host networking.
    pub fn has_non_host_networking(&self) -> bool {
        self.networks.iter().any(|n| n.mode != NetworkMode::Host)
    }

    /// The ports health checks and readiness checks refer to by index: the container's port
    /// mappings when there are any, else the port definitions (Marathon's `portIndices`).
    pub fn port_count(&self) -> usize {
        match self.container.as_ref().and_then(|c| c.port_mappings.as_ref()) {
            Some(mappings) if !mappings.is_empty() => mappings.len(),
            _ => self.port_definitions.as_ref().map_or(0, Vec::len),
        }
    }

    /// The Docker image, if the app has one.
    pub fn docker_image(&self) -> Option<&str> {
        self.container.as_ref()?.docker.as_ref().map(|d| d.image.as_str())
    }
}

/// Marathon's default port definition for host networking: one dynamic port named `default`
/// (`Apps.DefaultPortDefinitions` in 1.10).
pub fn default_port_definition() -> PortDefinition {
    PortDefinition { name: Some("default".to_string()), ..PortDefinition::default() }
}

/// Marathon's default port mapping for bridge/container networking: container port 0 named
/// `default` (`Apps.DefaultPortMappings`).
pub fn default_port_mapping() -> PortMapping {
    PortMapping { name: Some("default".to_string()), ..PortMapping::default() }
}

impl Serialize for AppDefinition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let host = !self.has_non_host_networking();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.id)?;
        if let Some(roles) = self.accepted_resource_roles.as_ref().filter(|r| !r.is_empty()) {
            m.serialize_entry("acceptedResourceRoles", roles)?;
        }
        if !self.args.is_empty() {
            m.serialize_entry("args", &self.args)?;
        }
        m.serialize_entry("backoffFactor", &self.backoff_factor)?;
        m.serialize_entry("backoffSeconds", &self.backoff_seconds)?;
        if let Some(cmd) = &self.cmd {
            m.serialize_entry("cmd", cmd)?;
        }
        if !self.constraints.is_empty() {
            m.serialize_entry("constraints", &self.constraints)?;
        }
        if let Some(container) = &self.container {
            m.serialize_entry("container", container)?;
        }
        m.serialize_entry("cpus", &self.cpus)?;
        if !self.dependencies.is_empty() {
            m.serialize_entry("dependencies", &self.dependencies)?;
        }
        m.serialize_entry("disk", &self.disk)?;
        if !self.env.is_empty() {
            m.serialize_entry("env", &self.env)?;
        }
        m.serialize_entry("executor", &self.executor)?;
        if !self.fetch.is_empty() {
            m.serialize_entry("fetch", &self.fetch)?;
        }
        if !self.health_checks.is_empty() {
            m.serialize_entry("healthChecks", &self.health_checks)?;
        }
        m.serialize_entry("instances", &self.instances)?;
        m.serialize_entry("labels", &self.labels)?;
        m.serialize_entry("maxLaunchDelaySeconds", &self.max_launch_delay_seconds)?;
        m.serialize_entry("mem", &self.mem)?;
        m.serialize_entry("gpus", &self.gpus)?;
        m.serialize_entry("networks", &self.networks)?;
        if let Some(ports) = &self.ports {
            m.serialize_entry("ports", ports)?;
        }
        if let Some(defs) = self.port_definitions.as_ref().filter(|_| host) {
            m.serialize_entry("portDefinitions", defs)?;
        }
        if !self.readiness_checks.is_empty() {
            m.serialize_entry("readinessChecks", &self.readiness_checks)?;
        }
        m.serialize_entry("requirePorts", &self.require_ports)?;
        if let Some(role) = &self.role {
            m.serialize_entry("role", role)?;
        }
        if !self.secrets.is_empty() {
            m.serialize_entry("secrets", &self.secrets)?;
        }
        if !self.store_urls.is_empty() {
            m.serialize_entry("storeUrls", &self.store_urls)?;
        }
        if let Some(grace) = self.task_kill_grace_period_seconds {
            m.serialize_entry("taskKillGracePeriodSeconds", &grace)?;
        }
        if let Some(tty) = self.tty {
            m.serialize_entry("tty", &tty)?;
        }
        m.serialize_entry("upgradeStrategy", &self.upgrade_strategy)?;
        if !self.uris.is_empty() {
            m.serialize_entry("uris", &self.uris)?;
        }
        if let Some(user) = &self.user {
            m.serialize_entry("user", user)?;
        }
        if let Some(version) = &self.version {
            m.serialize_entry("version", version)?;
        }
        if let Some(info) = &self.version_info {
            m.serialize_entry("versionInfo", info)?;
        }
        m.serialize_entry("killSelection", &self.kill_selection)?;
        m.serialize_entry("unreachableStrategy", &self.unreachable_strategy)?;
        m.end()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ids::PathId;

    #[test]
    fn literals_read_case_insensitively_and_write_canonically() {
        assert_eq!(ContainerType::from_name("docker"), Some(ContainerType::Docker));
        assert_eq!(NetworkMode::from_name("CONTAINER/BRIDGE"), Some(NetworkMode::ContainerBridge));
        assert_eq!(Protocol::parse("udp,tcp"), Some(Protocol::TcpUdp));
        assert_eq!(KillSelection::from_name("nope"), None);
        assert_eq!(serde_json::to_value(HealthCheckProtocol::MesosHttp).unwrap(), "MESOS_HTTP");
        assert_eq!(serde_json::from_value::<IpProtocol>("ipv6".into()).unwrap(), IpProtocol::IPv6);
        assert!(HealthCheckProtocol::Command.is_mesos() && !HealthCheckProtocol::Tcp.is_mesos());
    }

    #[test]
    fn writes_marathon_1_10_shape() {
        let mut app = AppDefinition::new(PathId::parse("/web").unwrap());
        app.cmd = Some("sleep 1".into());
        let json = serde_json::to_value(&app).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "/web", "backoffFactor": 1.15, "backoffSeconds": 1, "cmd": "sleep 1",
                "cpus": 1.0, "disk": 0.0, "executor": "", "instances": 1, "labels": {},
                "maxLaunchDelaySeconds": 300, "mem": 128.0, "gpus": 0,
                "networks": [{"mode": "host"}],
                "portDefinitions": [{"port": 0, "protocol": "tcp", "name": "default"}],
                "requirePorts": false,
                "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0},
                "killSelection": "YOUNGEST_FIRST",
                "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}
            })
        );
        app.networks = vec![Network::of(NetworkMode::ContainerBridge)];
        app.unreachable_strategy = UnreachableStrategy::Disabled;
        let json = serde_json::to_value(&app).unwrap();
        assert!(json.get("portDefinitions").is_none(), "portDefinitions written for bridge networking");
        assert_eq!(json["unreachableStrategy"], "disabled");
    }

    #[test]
    fn helpers_describe_ports_and_images() {
        let mut app = AppDefinition::new(PathId::parse("/web").unwrap());
        assert_eq!(app.port_count(), 1);
        assert_eq!(app.docker_image(), None);
        let mut c = Container::docker("nginx");
        c.port_mappings = Some(vec![default_port_mapping(), PortMapping::default()]);
        app.container = Some(c);
        assert_eq!(app.port_count(), 2);
        assert_eq!(app.docker_image(), Some("nginx"));
        assert_eq!(HealthCheck::default().effective_path(), "/");
        let v = Volume::Host { container_path: "/data".into(), host_path: "/srv".into(), mode: ReadMode::Ro };
        assert_eq!(serde_json::to_value(&v).unwrap(), serde_json::json!({"containerPath": "/data", "hostPath": "/srv", "mode": "RO"}));
    }
}
