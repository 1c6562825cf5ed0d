//! Which offered resources a task may use (roles), and scalar amounts in Mesos's fixed point.
//!
//! Mesos compares scalars in thousandths (`llround(value * 1000)`), so this module does too:
//! `0.1 + 0.2` cpus fit into an offer of `0.3`, and "never more than offered" holds in the same
//! fixed point the master checks. Non-finite or negative amounts count as zero.
//!
//! This module knows nothing about constraints or ports; it only selects and measures.

#![allow(deprecated)] // `Resource.role` is deprecated but still how pre-refinement roles arrive.

use mesos_proto::v1::Resource;
use mesos_proto::v1::resource::disk_info::source;
use mesos_proto::v1::value::{Scalar, Type};

/// The role Mesos uses for unreserved resources.
pub const UNRESERVED_ROLE: &str = "*";

/// An amount in thousandths, the fixed point Mesos uses for scalar resources.
pub(crate) fn to_milli(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        // `as` saturates at u64::MAX; the value is finite and positive here.
        (value * 1000.0).round() as u64
    } else {
        0
    }
}

/// The scalar for an amount in thousandths.
pub(crate) fn from_milli(milli: u64) -> Scalar {
    Scalar { value: milli as f64 / 1000.0 }
}

/// The role a resource is reserved for: the innermost of its (refined) reservations, else its
/// legacy `role` field, else `"*"` (unreserved).
pub fn reservation_role(resource: &Resource) -> &str {
    if let Some(role) = resource.reservations.last().and_then(|r| r.role.as_deref()) {
        return role;
    }
    resource.role.as_deref().unwrap_or(UNRESERVED_ROLE)
}

/// The roles whose resources a task may use, and the role the framework launches it under.
#[derive(Debug, Clone)]
pub(crate) struct RoleFilter<'a> {
    accepted: Vec<&'a str>,
    framework_role: &'a str,
}

impl<'a> RoleFilter<'a> {
    /// `accepted` empty means Marathon's default: unreserved resources and the framework's role.
    pub(crate) fn new(accepted: &'a [String], framework_role: &'a str) -> Self {
        let accepted =
            if accepted.is_empty() { vec![UNRESERVED_ROLE, framework_role] } else { accepted.iter().map(String::as_str).collect() };
        RoleFilter { accepted, framework_role }
    }

    /// Whether a task may take from `resource`: its reservation role is accepted; it is
    /// allocated to the framework's role (when the offer says so); and it is a plain resource,
    /// not revocable and not a persistent volume or an unsplittable (mount, block, raw) disk,
    /// which Marathon leaves to its volume matchers.
    pub(crate) fn admits(&self, resource: &Resource) -> bool {
        let allocated_here =
            resource.allocation_info.as_ref().and_then(|a| a.role.as_deref()).is_none_or(|role| role == self.framework_role);
        let plain_disk = resource.disk.as_ref().is_none_or(|disk| {
            disk.persistence.is_none()
                && disk.volume.is_none()
                && disk.source.as_ref().is_none_or(|s| s.r#type == source::Type::Path as i32)
        });
        allocated_here && plain_disk && resource.revocable.is_none() && self.accepted.contains(&reservation_role(resource))
    }
}

/// The scalar amounts still free in an offer, per offered resource, in thousandths.
#[derive(Debug, Clone)]
pub(crate) struct ScalarPool<'a> {
    /// `(index into offer.resources, name, thousandths left)` for each admitted scalar resource,
    /// in offer order.
    free: Vec<(usize, &'a str, u64)>,
}

impl<'a> ScalarPool<'a> {
    /// The admitted scalar resources of `resources`.
    pub(crate) fn new(resources: &'a [Resource], roles: &RoleFilter<'_>) -> Self {
        let free = resources
            .iter()
            .enumerate()
            .filter(|(_, r)| r.r#type == Type::Scalar as i32 && roles.admits(r))
            .filter_map(|(i, r)| r.scalar.as_ref().map(|s| (i, r.name.as_str(), to_milli(s.value))))
            .collect();
        ScalarPool { free }
    }

    /// How to take `milli` thousandths of `name`: `(resource index, thousandths)` pieces taken in
    /// offer order, as Marathon does, splitting across resources (e.g. reserved then
    /// unreserved) when one is not enough. `None` if the pool holds too little. Takes nothing.
    pub(crate) fn plan(&self, name: &str, milli: u64) -> Option<Vec<(usize, u64)>> {
        let mut left = milli;
        let mut pieces = Vec::new();
        for (index, _, free) in self.free.iter().filter(|(_, n, _)| *n == name) {
            if left == 0 {
                break;
            }
            let take = left.min(*free);
            if take > 0 {
                pieces.push((*index, take));
                left -= take;
            }
        }
        (left == 0).then_some(pieces)
    }

    /// Removes planned pieces from the pool.
    pub(crate) fn take(&mut self, pieces: &[(usize, u64)]) {
        for (index, amount) in pieces {
            if let Some((_, _, free)) = self.free.iter_mut().find(|(i, _, _)| i == index) {
                *free = free.saturating_sub(*amount);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::resource::disk_info::Source;
    use mesos_proto::v1::resource::{AllocationInfo, DiskInfo, ReservationInfo, RevocableInfo};

    fn cpus(value: f64) -> Resource {
        Resource { name: "cpus".into(), r#type: Type::Scalar as i32, scalar: Some(Scalar { value }), ..Default::default() }
    }

    fn reserved(mut r: Resource, role: &str) -> Resource {
        r.reservations.push(ReservationInfo { role: Some(role.into()), ..Default::default() });
        r
    }

    #[test]
    fn milli_rounds_to_the_nearest_thousandth_and_ignores_nonsense() {
        assert_eq!(to_milli(0.1) + to_milli(0.2), to_milli(0.3));
        assert_eq!(to_milli(1.0004), 1000);
        assert_eq!(to_milli(1.0006), 1001);
        for nonsense in [f64::NAN, f64::NEG_INFINITY, -1.0, -0.0, 0.0] {
            assert_eq!(to_milli(nonsense), 0);
        }
        assert_eq!(to_milli(f64::INFINITY), 0);
        assert_eq!(to_milli(1e300), u64::MAX);
        assert_eq!(from_milli(300).value, 0.3);
    }

    #[test]
    fn reservation_role_prefers_refined_reservations() {
        assert_eq!(reservation_role(&cpus(1.0)), "*");
        assert_eq!(reservation_role(&reserved(cpus(1.0), "web")), "web");
        let refined = reserved(reserved(cpus(1.0), "eng"), "eng/web");
        assert_eq!(reservation_role(&refined), "eng/web");
        let legacy = Resource { role: Some("legacy".into()), ..cpus(1.0) };
        assert_eq!(reservation_role(&legacy), "legacy");
    }

    #[test]
    fn default_roles_are_unreserved_and_the_framework_role() {
        let roles = RoleFilter::new(&[], "marathon");
        assert!(roles.admits(&cpus(1.0)));
        assert!(roles.admits(&reserved(cpus(1.0), "marathon")));
        assert!(!roles.admits(&reserved(cpus(1.0), "other")));
        let only_reserved = ["marathon".to_string()];
        let roles = RoleFilter::new(&only_reserved, "marathon");
        assert!(!roles.admits(&cpus(1.0)));
        assert!(roles.admits(&reserved(cpus(1.0), "marathon")));
    }

    #[test]
    fn allocation_role_revocable_and_volumes_are_respected() {
        let roles = RoleFilter::new(&[], "marathon");
        let allocated = |role: &str| Resource { allocation_info: Some(AllocationInfo { role: Some(role.into()) }), ..cpus(1.0) };
        assert!(roles.admits(&allocated("marathon")));
        assert!(!roles.admits(&allocated("other")));
        assert!(!roles.admits(&Resource { revocable: Some(RevocableInfo {}), ..cpus(1.0) }));
        let mount = DiskInfo { source: Some(Source { r#type: source::Type::Mount as i32, ..Default::default() }), ..Default::default() };
        assert!(!roles.admits(&Resource { disk: Some(mount), ..cpus(1.0) }));
        let path = DiskInfo { source: Some(Source { r#type: source::Type::Path as i32, ..Default::default() }), ..Default::default() };
        assert!(roles.admits(&Resource { disk: Some(path), ..cpus(1.0) }));
    }

    #[test]
    fn plans_split_across_resources_in_offer_order() {
        let offered = [reserved(cpus(0.5), "marathon"), cpus(1.0), reserved(cpus(4.0), "other")];
        let mut pool = ScalarPool::new(&offered, &RoleFilter::new(&[], "marathon"));
        assert_eq!(pool.plan("cpus", 1200), Some(vec![(0, 500), (1, 700)]));
        assert_eq!(pool.plan("cpus", 1600), None);
        assert_eq!(pool.plan("mem", 1), None);
        assert_eq!(pool.plan("mem", 0), Some(vec![]));
        pool.take(&[(0, 500), (1, 700)]);
        assert_eq!(pool.plan("cpus", 300), Some(vec![(1, 300)]));
        assert_eq!(pool.plan("cpus", 301), None);
    }
}
