//! Group bodies (`/v2/groups`): a tree of apps and groups, each id relative to its enclosing
//! group, and the special bodies `{"scaleBy": f}` and `{"version": ts}`.
//!
//! A group body is an *update*: as in Marathon 1.10 (`GroupConversion`), a field that is absent
//! keeps what the group has (`apps`, `groups`, `dependencies`, `enforceRole`), so each of those is
//! an `Option` here; what an update does to a tree is decided in [`crate::tree`].
//!
//! As in Marathon 1.10, every app and group must be an *immediate* child of its enclosing group
//! (`Identifier is not child of /g. Hint: use relative paths.`), and an app and a group may not
//! share an id (`Groups and Applications may not have the same identifier.`). Duplicate app ids
//! or duplicate group ids (which Marathon silently collapses) are refused here. An app's
//! dependencies are resolved relative to its enclosing group, a group's relative to the group
//! itself (Marathon's `canonicalPath(group.id)`). Cycles
//! across the whole dependency graph need the root group and are left to deployment planning.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::definition::AppDefinition;
use super::error::{AppError, Violation, Violations, prefixed};
use super::parse::{check_app, parse_json};
use super::read::{Obj, at, boolean, list, nth, read_app, string, timestamp};
use super::validate::{MAX_ID_LENGTH, id_too_long};
use crate::ids::{PathId, Timestamp};

/// A group as given in a request body. `None` means the body did not give the field, and the
/// group keeps what it has.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDefinition {
    /// The absolute group id.
    pub id: PathId,
    /// The apps directly in this group (normalized and validated): all of them when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<AppDefinition>>,
    /// The subgroups: all of them when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupDefinition>>,
    /// Apps or groups this group depends on (absolute ids).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<Vec<PathId>>,
    /// Whether apps of this group must use the group's role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforce_role: Option<bool>,
    /// The version, if the body gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Timestamp>,
}

impl GroupDefinition {
    /// A group body that gives nothing but the id (it changes nothing of an existing group and
    /// creates an empty one).
    pub fn new(id: PathId) -> Self {
        Self { id, apps: None, groups: None, dependencies: None, enforce_role: None, version: None }
    }

    /// Every app this body gives, in this group and its subgroups, depth first.
    pub fn all_apps(&self) -> Vec<&AppDefinition> {
        let mut out: Vec<&AppDefinition> = self.apps.iter().flatten().collect();
        for g in self.groups.iter().flatten() {
            out.extend(g.all_apps());
        }
        out
    }
}

/// What a group request body asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupRequest {
    /// Create or change the group's tree.
    Update(GroupDefinition),
    /// `{"scaleBy": f}`: multiply every app's instances by `f` (at least 0).
    ScaleBy(f64),
    /// `{"version": ts}`: roll the group back to an earlier version.
    Rollback(Timestamp),
}

/// Marathon's message for a special field mixed with others.
const ALONE: &str = "not allowed in conjunction with other properties.";

/// Parses a group body: ids relative to `base` (the group id of the URL, or the root); a body
/// without `id` is the group `base` itself.
pub fn parse_group(body: &[u8], base: &PathId) -> Result<GroupDefinition, AppError> {
    let value = parse_json(body)?;
    group_from_value(&value, base)
}

/// Parses a group request body, recognizing `{"scaleBy": f}` and `{"version": ts}` (each
/// allowed only alone, or with `id`) before falling back to [`parse_group`].
pub fn parse_group_request(body: &[u8], base: &PathId) -> Result<GroupRequest, AppError> {
    let value = parse_json(body)?;
    let mut e = Violations::default();
    let Some(o) = Obj::new(&value, "", &mut e) else {
        return Err(AppError::malformed(e.into_vec()));
    };
    for special in ["version", "scaleBy"] {
        let Some((v, p)) = o.field(special) else { continue };
        let others = value.as_object().is_some_and(|fields| fields.iter().any(|(k, x)| !x.is_null() && k != "id" && k != special));
        if others {
            return Err(AppError::Invalid(vec![Violation::new(p, ALONE)]));
        }
        let request = if special == "version" {
            timestamp(v, &p, &mut e).map(GroupRequest::Rollback)
        } else {
            match v.as_f64() {
                Some(f) if f >= 0.0 => Some(GroupRequest::ScaleBy(f)),
                Some(_) => {
                    e.add(&p, "error.min");
                    None
                }
                None => {
                    e.add(&p, "error.expected.jsnumber");
                    None
                }
            }
        };
        return request.ok_or_else(|| AppError::malformed(e.into_vec()));
    }
    group_from_value(&value, base).map(GroupRequest::Update)
}

/// Reads and checks a whole group tree: shape errors first (422 "Invalid JSON"), then rules.
fn group_from_value(value: &Value, base: &PathId) -> Result<GroupDefinition, AppError> {
    let mut shape = Violations::default();
    let mut rules = Violations::default();
    let group = read_group(value, "", base, true, &mut shape, &mut rules);
    match group {
        Some(g) if shape.is_empty() && rules.is_empty() => Ok(g),
        _ if !shape.is_empty() => Err(AppError::malformed(shape.into_vec())),
        _ => Err(AppError::Invalid(rules.into_vec())),
    }
}

/// Reads the group at `path`, its id relative to `base`.
fn read_group(
    value: &Value,
    path: &str,
    base: &PathId,
    top: bool,
    shape: &mut Violations,
    rules: &mut Violations,
) -> Option<GroupDefinition> {
    let o = Obj::new(value, path, shape)?;
    let id = if top {
        o.opt("id", shape, |v, p, e| group_id(v, p, e, base)).unwrap_or_else(|| base.clone())
    } else {
        o.req("id", shape, |v, p, e| group_id(v, p, e, base)).unwrap_or_else(|| base.clone())
    };
    let written = id.to_string().len();
    if written > MAX_ID_LENGTH {
        rules.add(&at(path, "id"), id_too_long(written));
    }
    let mut group = GroupDefinition::new(id.clone());
    group.version = o.opt("version", shape, timestamp);
    // Dependencies are relative to the group itself, as Marathon resolves them.
    group.dependencies = o.opt("dependencies", shape, |v, p, e| list(v, p, e, |v, p, e| group_id(v, p, e, &id)));
    group.enforce_role = o.opt("enforceRole", shape, boolean);

    let apps_path = at(path, "apps");
    if let Some((apps, _)) = o.field("apps") {
        let items = list(apps, &apps_path, shape, |v, p, _| Some((v, p.to_string()))).unwrap_or_default();
        let mut read = Vec::new();
        for (v, p) in items {
            match read_app(v, &p, &id) {
                Err(found) => shape.extend(found),
                Ok(raw) => match check_app(raw, v) {
                    Ok(app) => read.push(app),
                    Err(found) => rules.extend(prefixed(&p, found)),
                },
            }
        }
        group.apps = Some(read);
    }
    let groups_path = at(path, "groups");
    if let Some((groups, _)) = o.field("groups") {
        let items = list(groups, &groups_path, shape, |v, p, _| Some((v, p.to_string()))).unwrap_or_default();
        let mut read = Vec::new();
        for (v, p) in items {
            if let Some(g) = read_group(v, &p, &id, false, shape, rules) {
                read.push(g);
            }
        }
        group.groups = Some(read);
    }

    // Tree rules: immediate children, no duplicate ids, no app/group clash.
    let hint = format!("Identifier is not child of {id}. Hint: use relative paths.");
    let mut app_ids = BTreeSet::new();
    for (i, app) in group.apps.iter().flatten().enumerate() {
        let p = at(&nth(&apps_path, i), "id");
        if app.id.parent() != id || app.id.is_root() {
            rules.add(&p, hint.clone());
        }
        if !app_ids.insert(&app.id) {
            rules.add(&p, format!("Duplicate app id {}", app.id));
        }
    }
    let mut group_ids = BTreeSet::new();
    for (i, sub) in group.groups.iter().flatten().enumerate() {
        let p = at(&nth(&groups_path, i), "id");
        if sub.id.parent() != id || sub.id.is_root() {
            rules.add(&p, hint.clone());
        }
        if !group_ids.insert(&sub.id) {
            rules.add(&p, format!("Duplicate group id {}", sub.id));
        }
    }
    if !app_ids.is_disjoint(&group_ids) {
        rules.add(path, "Groups and Applications may not have the same identifier.");
    }
    Some(group)
}

/// A group id relative to `base`.
fn group_id(v: &Value, p: &str, e: &mut Violations, base: &PathId) -> Option<PathId> {
    let raw = string(v, p, e)?;
    match PathId::parse_relative(&raw, base) {
        Ok(id) => Some(id),
        Err(_) => {
            e.add(p, "error.pattern");
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(v: Value, base: &str) -> Result<GroupDefinition, AppError> {
        parse_group(v.to_string().as_bytes(), &PathId::parse(base).unwrap())
    }

    #[test]
    fn nested_ids_are_relative_to_their_group() {
        let g = parse(
            json!({"id": "prod", "dependencies": ["db"], "apps": [{"id": "web", "cmd": "run", "dependencies": ["../db"]}],
                "groups": [{"id": "back", "apps": [{"id": "/prod/back/api", "cmd": "run"}], "groups": []}]}),
            "/",
        )
        .unwrap();
        assert_eq!(g.id.to_string(), "/prod");
        assert_eq!(g.dependencies.as_ref().unwrap()[0].to_string(), "/prod/db");
        let apps = g.apps.as_ref().unwrap();
        assert_eq!(apps[0].id.to_string(), "/prod/web");
        assert_eq!(apps[0].dependencies[0].to_string(), "/db");
        assert_eq!(g.groups.as_ref().unwrap()[0].id.to_string(), "/prod/back");
        let ids: Vec<String> = g.all_apps().iter().map(|a| a.id.to_string()).collect();
        assert_eq!(ids, ["/prod/web", "/prod/back/api"]);
    }

    #[test]
    fn body_without_id_is_the_base_group() {
        let g = parse(json!({"apps": [{"id": "a", "cmd": "run"}]}), "/team").unwrap();
        assert_eq!(g.id.to_string(), "/team");
        assert_eq!(g.apps.as_ref().unwrap()[0].id.to_string(), "/team/a");
        assert_eq!((g.groups.as_ref(), g.dependencies.as_ref(), g.enforce_role), (None, None, None));
    }

    #[test]
    fn children_must_be_immediate() {
        let e = parse(json!({"id": "/g", "apps": [{"id": "/app", "cmd": "run"}, {"id": "x/y", "cmd": "run"}]}), "/").unwrap_err();
        assert_eq!(e.status(), 422);
        assert_eq!(
            e.details(),
            [
                Violation::new("/apps(0)/id", "Identifier is not child of /g. Hint: use relative paths."),
                Violation::new("/apps(1)/id", "Identifier is not child of /g. Hint: use relative paths."),
            ]
        );
    }

    #[test]
    fn duplicates_and_clashes() {
        let e = parse(
            json!({"id": "/g", "apps": [{"id": "a", "cmd": "run"}, {"id": "a", "cmd": "run"}, {"id": "b", "cmd": "run"}],
                "groups": [{"id": "b"}, {"id": "c"}, {"id": "c"}]}),
            "/",
        )
        .unwrap_err();
        let d = e.details();
        assert!(d.contains(&Violation::new("/apps(1)/id", "Duplicate app id /g/a")), "{d:?}");
        assert!(d.contains(&Violation::new("/groups(2)/id", "Duplicate group id /g/c")), "{d:?}");
        assert!(d.contains(&Violation::new("/", "Groups and Applications may not have the same identifier.")), "{d:?}");
    }

    #[test]
    fn app_errors_carry_their_position() {
        let e = parse(json!({"id": "/g", "groups": [{"id": "s", "apps": [{"id": "a", "instances": "x"}]}]}), "/").unwrap_err();
        assert_eq!(e, AppError::malformed(vec![Violation::new("/groups(0)/apps(0)/instances", "error.expected.jsnumber")]));
        let e = parse(json!({"id": "/g", "apps": [{"id": "a"}]}), "/").unwrap_err();
        assert_eq!(e.details()[0].path, "/apps(0)");
        assert_eq!(e.to_json()["message"], "Object is not valid");
        let e = parse(json!({"id": "/g", "groups": [{"apps": []}]}), "/").unwrap_err();
        assert_eq!(e.details()[0], Violation::new("/groups(0)/id", "error.path.missing"));
    }

    #[test]
    fn special_bodies() {
        let root = PathId::root();
        assert_eq!(parse_group_request(br#"{"scaleBy": 1.5}"#, &root).unwrap(), GroupRequest::ScaleBy(1.5));
        assert_eq!(
            parse_group_request(br#"{"id": "/g", "version": "2020-01-01T00:00:00Z"}"#, &root).unwrap(),
            GroupRequest::Rollback("2020-01-01T00:00:00Z".parse().unwrap())
        );
        let e = parse_group_request(br#"{"scaleBy": 2, "apps": []}"#, &root).unwrap_err();
        assert_eq!(e, AppError::Invalid(vec![Violation::new("/scaleBy", ALONE)]));
        let e = parse_group_request(br#"{"scaleBy": -1}"#, &root).unwrap_err();
        assert_eq!(e.details()[0].errors, ["error.min"]);
        let e = parse_group_request(br#"{"version": 3}"#, &root).unwrap_err();
        assert_eq!(e.details()[0].path, "/version");
        assert!(matches!(parse_group_request(br#"{"id": "/g"}"#, &root).unwrap(), GroupRequest::Update(_)));
        assert_eq!(parse_group_request(b"nope", &root).unwrap_err().status(), 400);
    }

    #[test]
    fn long_ids_are_refused_with_their_path() {
        let long = "a".repeat(MAX_ID_LENGTH);
        let e = parse(json!({"id": format!("/{long}")}), "/").unwrap_err();
        assert_eq!(e.status(), 422);
        assert_eq!(e.details()[0].path, "/id");
        assert!(e.details()[0].errors[0].contains("expected 190 or less"), "{e:?}");
        let e = parse(json!({"id": "/g", "apps": [{"id": long, "cmd": "run"}]}), "/").unwrap_err();
        assert_eq!(e.to_json()["message"], "Object is not valid");
        assert_eq!(e.details()[0].path, "/apps(0)/id");
        let short = "a".repeat(MAX_ID_LENGTH - 3);
        assert!(parse(json!({"id": "/g", "apps": [{"id": short, "cmd": "run"}]}), "/").is_ok());
    }

    /// Arbitrary JSON, with the field names of groups and apps so that values reach the readers.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            "[a-z0-9/._ -]{0,10}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 96, 8, |inner| {
            let key = prop_oneof![
                prop::sample::select(vec![
                    "id",
                    "apps",
                    "groups",
                    "dependencies",
                    "version",
                    "scaleBy",
                    "cmd",
                    "instances",
                    "container",
                    "docker",
                    "image",
                    "parameters",
                    "privileged",
                    "labels",
                    "env",
                    "portDefinitions",
                ])
                .prop_map(str::to_string),
                "[a-z]{1,5}",
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(key, inner, 0..7).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Group bodies of plausible parts: nested groups of small apps, some of them broken.
    fn group_body() -> impl Strategy<Value = Value> {
        let app = ("[a-z][a-z0-9]{0,3}", prop::option::of("[a-z ]{2,8}"), 0u32..5)
            .prop_map(|(id, cmd, n)| json!({"id": id, "cmd": cmd, "instances": n}));
        let leaf = ("[a-z][a-z0-9]{0,3}", prop::collection::vec(app.clone(), 0..3)).prop_map(|(id, apps)| json!({"id": id, "apps": apps}));
        leaf.prop_recursive(3, 12, 3, move |inner| {
            ("[a-z][a-z0-9]{0,3}", prop::collection::vec(app.clone(), 0..3), prop::collection::vec(inner, 0..3))
                .prop_map(|(id, apps, groups)| json!({"id": id, "apps": apps, "groups": groups}))
        })
    }

    proptest! {
        #[test]
        fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_group(&bytes, &PathId::root());
            let _ = parse_group_request(&bytes, &PathId::root());
        }

        #[test]
        fn never_panics_on_json(v in json_value()) {
            let body = v.to_string();
            let base = PathId::parse("/base").unwrap();
            for result in [parse_group(body.as_bytes(), &base).map(|_| ()), parse_group_request(body.as_bytes(), &base).map(|_| ())] {
                if let Err(e) = result {
                    prop_assert!(matches!(e.status(), 400 | 422));
                }
            }
        }

        #[test]
        fn valid_groups_round_trip(body in group_body()) {
            if let Ok(group) = parse_group(body.to_string().as_bytes(), &PathId::root()) {
                let written = serde_json::to_vec(&group).unwrap();
                let again = parse_group(&written, &PathId::root());
                prop_assert_eq!(again.as_ref(), Ok(&group), "{}", String::from_utf8_lossy(&written));
            }
        }
    }

    #[test]
    fn serializes_like_marathon() {
        let g = parse(json!({"id": "/g", "apps": [{"id": "a", "cmd": "run"}]}), "/").unwrap();
        let v = serde_json::to_value(&g).unwrap();
        assert_eq!(v["id"], "/g");
        assert_eq!(v["apps"][0]["id"], "/g/a");
        assert_eq!(v.get("groups"), None, "absent stays absent: {v}");
        let g = parse(json!({"id": "/g", "groups": [], "enforceRole": true}), "/").unwrap();
        let v = serde_json::to_value(&g).unwrap();
        assert_eq!((v["groups"].clone(), v["enforceRole"].clone()), (json!([]), json!(true)));
    }
}
