//! Identifiers and timestamps: Marathon path ids (`/group/app`), task and instance ids in
//! Marathon's form, deployment ids and millisecond timestamps printed as ISO-8601.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Why a path id was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    /// A segment breaks Marathon's id rules.
    #[error(
        "'{segment}' is not a valid path segment: use lowercase letters, digits, dashes and dots, \
         starting and ending with a letter or digit"
    )]
    BadSegment {
        /// The offending segment.
        segment: String,
    },
    /// `..` climbs above the root.
    #[error("path '{0}' climbs above the root")]
    AboveRoot(String),
    /// A timestamp is not ISO-8601.
    #[error("'{0}' is not an ISO-8601 timestamp such as 2014-03-01T23:29:30.158Z")]
    BadTimestamp(String),
    /// A task id does not have Marathon's form.
    #[error("'{0}' is not a task id of this framework (expected <app>.instance-<uuid>._app.<n>)")]
    BadTaskId(String),
}

/// An absolute Marathon path id such as `/prod/web`; the root is `/`. Copies share the segments:
/// app ids key every per-app map, and a persistent map copies a node's keys whenever it changes
/// a node that a published snapshot shares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PathId {
    segments: std::sync::Arc<[String]>,
}

/// App ids are path ids.
pub type AppId = PathId;

/// Whether `s` is a valid path segment: `[a-z0-9]` or `[a-z0-9][a-z0-9.-]*[a-z0-9]`.
fn valid_segment(s: &str) -> bool {
    let bytes = s.as_bytes();
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match bytes {
        [] => false,
        [only] => edge(*only),
        [first, middle @ .., last] => edge(*first) && edge(*last) && middle.iter().all(|&b| edge(b) || b == b'-' || b == b'.'),
    }
}

impl PathId {
    /// The root group `/`.
    pub fn root() -> Self {
        Self::default()
    }

    /// Parses `raw` relative to `base` (absolute when it starts with `/`), resolving `.` and `..`.
    pub fn parse_relative(raw: &str, base: &PathId) -> Result<Self, IdError> {
        let mut segments = if raw.starts_with('/') { Vec::new() } else { base.segments.to_vec() };
        for part in raw.split('/').filter(|p| !p.is_empty()) {
            match part {
                "." => {}
                ".." => {
                    if segments.pop().is_none() {
                        return Err(IdError::AboveRoot(raw.to_string()));
                    }
                }
                seg if valid_segment(seg) => segments.push(seg.to_string()),
                seg => return Err(IdError::BadSegment { segment: seg.to_string() }),
            }
        }
        Ok(Self { segments: segments.into() })
    }

    /// Parses an id relative to the root.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        Self::parse_relative(raw, &Self::root())
    }

    /// Whether this is the root `/`.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The path segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The enclosing group (the root's parent is the root).
    pub fn parent(&self) -> PathId {
        let parent = self.segments.len().saturating_sub(1);
        Self { segments: self.segments[..parent].into() }
    }

    /// Whether `self` is `other` or lies below it.
    pub fn is_within(&self, other: &PathId) -> bool {
        self.segments.starts_with(&other.segments)
    }

    /// This id with `child` appended (which must be a valid segment).
    pub fn child(&self, child: &str) -> Result<PathId, IdError> {
        if !valid_segment(child) {
            return Err(IdError::BadSegment { segment: child.to_string() });
        }
        let mut segments = self.segments.to_vec();
        segments.push(child.to_string());
        Ok(Self { segments: segments.into() })
    }

    /// The id as Marathon writes it into task ids: segments joined by `_` (`/a/b` → `a_b`).
    pub fn safe_name(&self) -> String {
        self.segments.join("_")
    }
}

impl fmt::Display for PathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for seg in self.segments.iter() {
            write!(f, "/{seg}")?;
        }
        Ok(())
    }
}

impl FromStr for PathId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for PathId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PathId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        PathId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A Marathon instance id: `<app safe name>.instance-<uuid>`. Copies share the text (the id is
/// both a map key and a field of every instance).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(std::sync::Arc<str>);

impl InstanceId {
    /// A new instance id of `app` from a fresh `uuid` (the caller generates it).
    pub fn new(app: &AppId, uuid: &str) -> Self {
        Self(format!("{}.instance-{uuid}", app.safe_name()).into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The task id of this instance's `incarnation`-th task (Marathon: `<instance>._app.<n>`).
    pub fn task_id(&self, incarnation: u32) -> TaskId {
        TaskId(format!("{}._app.{incarnation}", self.0))
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Mesos task id in Marathon's form: `<app safe name>.instance-<uuid>._app.<n>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    /// Checks that `raw` has Marathon's task id form.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let id = Self(raw.to_string());
        id.instance_id().ok_or_else(|| IdError::BadTaskId(raw.to_string()))?;
        Ok(id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The instance this task belongs to.
    pub fn instance_id(&self) -> Option<InstanceId> {
        let (instance, n) = self.0.rsplit_once("._app.")?;
        let (prefix, uuid) = instance.rsplit_once(".instance-")?;
        let ok = !prefix.is_empty() && !uuid.is_empty() && !uuid.contains('.') && n.parse::<u32>().is_ok();
        ok.then(|| InstanceId(instance.into()))
    }

    /// The `_`-joined app name the id starts with (`a_b` for app `/a/b`).
    pub fn app_safe_name(&self) -> Option<&str> {
        self.0.rsplit_once(".instance-").map(|(prefix, _)| prefix)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A deployment plan id (a UUID chosen by the caller).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeploymentId(pub String);

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Milliseconds since the Unix epoch, written as ISO-8601 UTC with milliseconds
/// (`2014-03-01T23:29:30.158Z`), as Marathon writes versions and event timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl Timestamp {
    /// The instant as a date and time (clamped to years 1–9999, all a timestamp can be written
    /// in; only a crafted millisecond count lies outside).
    fn datetime(self) -> time::OffsetDateTime {
        const MIN: i64 = -62_135_596_800_000; // 0001-01-01T00:00:00Z
        const MAX: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
        let ms = i128::from(self.0.clamp(MIN, MAX));
        time::OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.datetime();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        )
    }
}

impl FromStr for Timestamp {
    type Err = IdError;
    /// Reads an RFC 3339 date and time (`2014-03-01T23:29:30.158Z`, any offset, fractions of a
    /// second to the millisecond), checked against the calendar: `2021-02-31` is refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|_| IdError::BadTimestamp(s.to_string()))?;
        i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).map(Timestamp).map_err(|_| IdError::BadTimestamp(s.to_string()))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn path_ids_follow_marathon_rules() {
        assert_eq!(PathId::parse("/prod/web").unwrap().to_string(), "/prod/web");
        assert_eq!(PathId::parse("web").unwrap().to_string(), "/web");
        assert_eq!(PathId::parse("/").unwrap(), PathId::root());
        let base = PathId::parse("/a/b").unwrap();
        assert_eq!(PathId::parse_relative("../c", &base).unwrap().to_string(), "/a/c");
        assert_eq!(PathId::parse_relative("/x", &base).unwrap().to_string(), "/x");
        assert_eq!(PathId::parse("/a.b-1/c").unwrap().segments().len(), 2);
        for bad in ["/Web", "/-a", "/a-", "/a_b", "/a b", "/ä"] {
            assert!(PathId::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(matches!(PathId::parse("/.."), Err(IdError::AboveRoot(_))));
        assert!(PathId::parse("/a/b/c").unwrap().is_within(&base));
        assert_eq!(base.safe_name(), "a_b");
        for hostile in ["/a/../../etc", "/%2e%2e/x", "/a/.hidden", "/a\\b", "/a/b\0", "..", "/a/./../.."] {
            assert!(PathId::parse(hostile).is_err(), "{hostile} accepted");
        }
    }

    #[test]
    fn task_ids_have_marathons_form() {
        let app = PathId::parse("/shop/web").unwrap();
        let instance = InstanceId::new(&app, "4b2d1e6a-0f3c-11ee-9f1a-0242ac120002");
        let task = instance.task_id(1);
        assert_eq!(task.as_str(), "shop_web.instance-4b2d1e6a-0f3c-11ee-9f1a-0242ac120002._app.1");
        assert_eq!(task.instance_id(), Some(instance));
        assert_eq!(task.app_safe_name(), Some("shop_web"));
        assert!(TaskId::parse(task.as_str()).is_ok());
        for bad in ["nonsense", "a.instance-._app.1", "a.instance-x._app.z", ".instance-x._app.1"] {
            assert!(TaskId::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn timestamps_print_and_parse_iso() {
        let t: Timestamp = "2014-03-01T23:29:30.158Z".parse().unwrap();
        assert_eq!(t.to_string(), "2014-03-01T23:29:30.158Z");
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!("2014-03-01T23:29:30Z".parse::<Timestamp>().unwrap().to_string(), "2014-03-01T23:29:30.000Z");
        // Other offsets are read as the same instant in UTC.
        assert_eq!("2014-03-02T01:29:30.158+02:00".parse::<Timestamp>().unwrap(), t);
        for bad in [
            "",
            "2014-03-01",
            "2014-13-01T00:00:00Z",
            "9223372036854775807-01-01T00:00:00Z",
            "x2014-03-01T00:00:00Z",
            "2014-03-01T00:00:00.1a2Z",
            // Days the calendar does not have.
            "2021-02-31T00:00:00Z",
            "2021-02-29T00:00:00Z",
            "2021-04-31T00:00:00.000Z",
            "2021-01-01T24:00:00Z",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad} accepted");
        }
    }

    proptest! {
        #[test]
        fn timestamps_round_trip(ms in -62_135_596_800_000i64..253_402_300_799_999i64) {
            let t = Timestamp(ms);
            prop_assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
        }

        /// Ids become file names (`apps/<safe name>`, `instances/<instance id>`) and Docker
        /// names: whatever hostile text is given, an accepted id is made of plain names.
        #[test]
        fn accepted_ids_cannot_escape_a_directory(raw in "[a-z0-9./_%\\-]{0,24}|.{0,16}", base in prop::sample::select(vec!["/", "/a", "/a/b"])) {
            let base = PathId::parse(base).unwrap();
            if let Ok(id) = PathId::parse_relative(&raw, &base) {
                let name = id.safe_name();
                prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)), "{name}");
                prop_assert!(id.is_root() || name.starts_with(|c: char| c.is_ascii_alphanumeric()), "{name}");
                for seg in id.segments() {
                    prop_assert!(seg != "." && seg != ".." && !seg.contains('/'), "{seg}");
                }
                let instance = InstanceId::new(&id, "u");
                prop_assert!(!instance.as_str().contains('/'));
            }
        }

        #[test]
        fn path_ids_round_trip(segs in proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", 0..5)) {
            let raw = format!("/{}", segs.join("/"));
            let id = PathId::parse(&raw).unwrap();
            prop_assert_eq!(PathId::parse(&id.to_string()).unwrap(), id);
        }
    }
}
