//! Change classification for deployment planning: does going from one app version to another
//! need a rolling restart, or only scaling?
//!
//! Marathon (`AppDefinition.isUpgrade`/`isOnlyScaleChange`) compares whole definitions except
//! `instances` and the version; so does [`AppDefinition::config_key`], on the written JSON form,
//! with set-like lists (constraints, health checks, dependencies, accepted roles — sets in
//! Marathon's model) sorted and deduplicated so that reordering them is not a change.

use serde_json::Value;

use super::definition::AppDefinition;

/// JSON fields Marathon keeps as sets.
const SET_FIELDS: &[&str] = &["constraints", "healthChecks", "dependencies", "acceptedResourceRoles"];

impl AppDefinition {
    /// A canonical string of this app's configuration, without `instances`, `version` and
    /// `versionInfo`: two apps with different keys need a restart to go from one to the other.
    pub fn config_key(&self) -> String {
        let mut config = self.clone();
        config.instances = 0;
        config.version = None;
        config.version_info = None;
        let mut value = serde_json::to_value(&config).unwrap_or(Value::Null);
        if let Some(fields) = value.as_object_mut() {
            for key in SET_FIELDS {
                if let Some(Value::Array(items)) = fields.get_mut(*key) {
                    items.sort_by_cached_key(Value::to_string);
                    items.dedup();
                }
            }
        }
        value.to_string()
    }

    /// Whether going from `self` to `other` only changes the instance count.
    pub fn is_only_scale_change(&self, other: &AppDefinition) -> bool {
        self.instances != other.instances && self.config_key() == other.config_key()
    }

    /// Whether going from `self` to `other` changes the configuration (needs a restart).
    pub fn needs_restart(&self, other: &AppDefinition) -> bool {
        self.config_key() != other.config_key()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::app::definition::*;
    use crate::ids::{PathId, Timestamp};

    fn app() -> AppDefinition {
        AppDefinition { cmd: Some("run".into()), ..AppDefinition::new(PathId::parse("/a").unwrap()) }
    }

    #[test]
    fn scale_only_versus_restart() {
        let a = app();
        let mut b = a.clone();
        b.instances = 5;
        b.version = Some(Timestamp(1));
        b.version_info = Some(VersionInfo { last_scaling_at: Timestamp(1), last_config_change_at: Timestamp(0) });
        assert!(a.is_only_scale_change(&b));
        assert!(!a.needs_restart(&b));
        assert!(!a.is_only_scale_change(&a), "no change at all is not a scale change");

        let mut c = b.clone();
        c.cmd = Some("run --fast".into());
        assert!(!a.is_only_scale_change(&c));
        assert!(a.needs_restart(&c));
        let mut d = a.clone();
        d.labels.insert("x".into(), "y".into());
        assert_ne!(a.config_key(), d.config_key());
    }

    #[test]
    fn set_like_fields_ignore_order() {
        let mut a = app();
        a.constraints = vec![vec!["hostname".into(), "UNIQUE".into()], vec!["rack".into(), "GROUP_BY".into()]];
        a.dependencies = vec![PathId::parse("/x").unwrap(), PathId::parse("/y").unwrap()];
        let mut b = a.clone();
        b.constraints.reverse();
        b.dependencies.reverse();
        assert_eq!(a.config_key(), b.config_key());
        b.readiness_checks = vec![ReadinessCheck::default()];
        assert_ne!(a.config_key(), b.config_key());
    }
}
