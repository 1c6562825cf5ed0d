//! Resource arithmetic for the local cluster: unreserved scalars (kept in thousandths, the
//! precision Mesos rounds to) and ranges, converted from and to Mesos `Resource` lists.

use std::collections::BTreeMap;
use std::fmt;

use mesos_proto::v1::{Resource, value};

/// Thousandths per unit: Mesos rounds scalars to three decimal places.
const MILLI: f64 = 1000.0;

/// A multiset of unreserved resources: named scalars and named sets of integer ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    scalars: BTreeMap<String, i64>,
    ranges: BTreeMap<String, RangeSet>,
}

/// Disjoint, sorted, inclusive integer ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet(Vec<(u64, u64)>);

impl RangeSet {
    /// Builds a normalised set from arbitrary inclusive ranges (ranges with begin > end are dropped).
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut v: Vec<(u64, u64)> = ranges.into_iter().filter(|(b, e)| b <= e).collect();
        v.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for (b, e) in v {
            match out.last_mut() {
                Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => out.push((b, e)),
            }
        }
        RangeSet(out)
    }

    /// The ranges, sorted and disjoint.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.0
    }

    /// Whether there is no value in the set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every value of `other` is in `self`.
    pub fn contains(&self, other: &RangeSet) -> bool {
        other.0.iter().all(|(b, e)| self.0.iter().any(|(sb, se)| sb <= b && e <= se))
    }

    /// The union of both sets.
    pub fn union(&self, other: &RangeSet) -> RangeSet {
        RangeSet::from_ranges(self.0.iter().chain(other.0.iter()).copied())
    }

    /// The values of `self` that are not in `other`.
    pub fn difference(&self, other: &RangeSet) -> RangeSet {
        let mut out = Vec::new();
        for &(mut b, e) in &self.0 {
            let mut keep = true;
            for &(ob, oe) in &other.0 {
                if oe < b || ob > e {
                    continue;
                }
                if ob > b {
                    out.push((b, ob - 1));
                }
                if oe >= e {
                    keep = false;
                    break;
                }
                b = oe + 1;
            }
            if keep {
                out.push((b, e));
            }
        }
        RangeSet::from_ranges(out)
    }
}

/// A resource list that the local cluster cannot account for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResourceError {
    /// Reserved, shared, revocable or provider resources are not offered by the local cluster.
    #[error("resource {0:?} is reserved, shared, revocable or from a resource provider, which the local cluster does not offer")]
    Unsupported(String),
    /// A SET or TEXT resource, or a scalar/ranges resource without its value.
    #[error("resource {0:?} has a type or value the local cluster does not support")]
    BadValue(String),
    /// A negative or non-finite scalar.
    #[error("resource {name:?} has an invalid scalar value {value}")]
    BadScalar {
        /// Resource name.
        name: String,
        /// The value given.
        value: f64,
    },
}

impl Resources {
    /// Parses a Mesos resource list. Roles other than `*` and reservations are refused.
    pub fn from_proto(list: &[Resource]) -> Result<Self, ResourceError> {
        let mut out = Resources::default();
        for r in list {
            let reserved = r.role.as_deref().is_some_and(|role| role != "*")
                || r.reservation.is_some()
                || !r.reservations.is_empty()
                || r.shared.is_some()
                || r.revocable.is_some()
                || r.provider_id.is_some();
            if reserved {
                return Err(ResourceError::Unsupported(r.name.clone()));
            }
            match value::Type::try_from(r.r#type) {
                Ok(value::Type::Scalar) => {
                    let v = r.scalar.as_ref().ok_or_else(|| ResourceError::BadValue(r.name.clone()))?.value;
                    if !v.is_finite() || v < 0.0 {
                        return Err(ResourceError::BadScalar { name: r.name.clone(), value: v });
                    }
                    *out.scalars.entry(r.name.clone()).or_default() += (v * MILLI).round() as i64;
                }
                Ok(value::Type::Ranges) => {
                    let rs = r.ranges.as_ref().ok_or_else(|| ResourceError::BadValue(r.name.clone()))?;
                    let set = RangeSet::from_ranges(rs.range.iter().map(|x| (x.begin, x.end)));
                    let entry = out.ranges.entry(r.name.clone()).or_default();
                    *entry = entry.union(&set);
                }
                _ => return Err(ResourceError::BadValue(r.name.clone())),
            }
        }
        out.scalars.retain(|_, v| *v != 0);
        out.ranges.retain(|_, v| !v.is_empty());
        Ok(out)
    }

    /// Writes the resources as an unreserved Mesos resource list (role `*`), optionally with an
    /// `allocation_info` role (for MULTI_ROLE frameworks).
    pub fn to_proto(&self, allocation_role: Option<&str>) -> Vec<Resource> {
        let allocation_info = allocation_role.map(|role| mesos_proto::v1::resource::AllocationInfo { role: Some(role.to_owned()) });
        let base = |name: &str, ty: value::Type| Resource {
            name: name.to_owned(),
            r#type: ty as i32,
            role: Some("*".to_owned()),
            allocation_info: allocation_info.clone(),
            ..Default::default()
        };
        let mut out = Vec::new();
        for (name, v) in &self.scalars {
            out.push(Resource { scalar: Some(value::Scalar { value: *v as f64 / MILLI }), ..base(name, value::Type::Scalar) });
        }
        for (name, set) in &self.ranges {
            let range = set.0.iter().map(|&(begin, end)| value::Range { begin, end }).collect();
            out.push(Resource { ranges: Some(value::Ranges { range }), ..base(name, value::Type::Ranges) });
        }
        out
    }

    /// Builds resources from named scalar amounts and named ranges.
    pub fn new(scalars: &[(&str, f64)], ranges: &[(&str, &[(u64, u64)])]) -> Self {
        let mut out = Resources::default();
        for (name, v) in scalars {
            if *v > 0.0 {
                out.scalars.insert((*name).to_owned(), (v * MILLI).round() as i64);
            }
        }
        for (name, rs) in ranges {
            let set = RangeSet::from_ranges(rs.iter().copied());
            if !set.is_empty() {
                out.ranges.insert((*name).to_owned(), set);
            }
        }
        out
    }

    /// The amount of a scalar resource (0 when absent).
    pub fn scalar(&self, name: &str) -> f64 {
        self.scalars.get(name).map_or(0.0, |v| *v as f64 / MILLI)
    }

    /// The ranges of a ranges resource (empty when absent).
    pub fn ranges(&self, name: &str) -> RangeSet {
        self.ranges.get(name).cloned().unwrap_or_default()
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.scalars.is_empty() && self.ranges.is_empty()
    }

    /// Whether `other` fits inside `self`.
    pub fn contains(&self, other: &Resources) -> bool {
        other.scalars.iter().all(|(k, v)| self.scalars.get(k).copied().unwrap_or(0) >= *v)
            && other.ranges.iter().all(|(k, v)| self.ranges.get(k).is_some_and(|s| s.contains(v)))
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Resources) {
        for (k, v) in &other.scalars {
            *self.scalars.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.ranges {
            let entry = self.ranges.entry(k.clone()).or_default();
            *entry = entry.union(v);
        }
    }

    /// Removes `other` from `self`; amounts that `self` does not have are ignored.
    pub fn subtract(&mut self, other: &Resources) {
        for (k, v) in &other.scalars {
            if let Some(mine) = self.scalars.get_mut(k) {
                *mine = (*mine - v).max(0);
            }
        }
        for (k, v) in &other.ranges {
            if let Some(mine) = self.ranges.get_mut(k) {
                *mine = mine.difference(v);
            }
        }
        self.scalars.retain(|_, v| *v != 0);
        self.ranges.retain(|_, v| !v.is_empty());
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.scalars.iter().map(|(k, v)| format!("{k}:{}", *v as f64 / MILLI)).collect();
        for (k, set) in &self.ranges {
            let rs: Vec<String> = set.0.iter().map(|(b, e)| format!("{b}-{e}")).collect();
            parts.push(format!("{k}:[{}]", rs.join(",")));
        }
        if parts.is_empty() { f.write_str("{}") } else { f.write_str(&parts.join("; ")) }
    }
}

/// A text attribute, as agents advertise them (`rack:r1`).
pub fn text_attribute(name: &str, text: &str) -> mesos_proto::v1::Attribute {
    mesos_proto::v1::Attribute {
        name: name.to_owned(),
        r#type: value::Type::Text as i32,
        text: Some(value::Text { value: text.to_owned() }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_subtract_and_merge() {
        let a = RangeSet::from_ranges([(31000, 32000)]);
        let b = RangeSet::from_ranges([(31000, 31000), (31500, 31600)]);
        assert_eq!(a.difference(&b).ranges(), &[(31001, 31499), (31601, 32000)]);
        assert_eq!(RangeSet::from_ranges([(1, 2), (3, 5), (9, 9)]).ranges(), &[(1, 5), (9, 9)]);
        assert!(a.contains(&b));
        assert!(!b.contains(&a));
    }

    #[test]
    fn scalars_use_mesos_precision() {
        let mut total = Resources::new(&[("cpus", 1.0)], &[]);
        for _ in 0..10 {
            total.subtract(&Resources::new(&[("cpus", 0.1)], &[]));
        }
        assert!(total.is_empty(), "ten tenths use up one cpu exactly: {total}");
    }

    #[test]
    fn proto_round_trip_and_refusals() {
        let r = Resources::new(&[("cpus", 2.5), ("mem", 1024.0)], &[("ports", &[(31000, 31010)])]);
        assert_eq!(Resources::from_proto(&r.to_proto(Some("web"))).expect("valid"), r);
        let mut reserved = r.to_proto(None);
        reserved[0].role = Some("web".into());
        assert!(matches!(Resources::from_proto(&reserved), Err(ResourceError::Unsupported(_))));
        let mut negative = r.to_proto(None);
        negative[0].scalar = Some(value::Scalar { value: -1.0 });
        assert!(matches!(Resources::from_proto(&negative), Err(ResourceError::BadScalar { .. })));
    }

    proptest! {
        #[test]
        fn difference_then_union_restores_subset(a in proptest::collection::vec((0u64..200, 0u64..20), 0..8),
                                                 b in proptest::collection::vec((0u64..200, 0u64..20), 0..8)) {
            let a = RangeSet::from_ranges(a.into_iter().map(|(s, l)| (s, s + l)));
            let b = RangeSet::from_ranges(b.into_iter().map(|(s, l)| (s, s + l)));
            let d = a.difference(&b);
            prop_assert!(a.contains(&d));
            for (s, e) in d.ranges() {
                for x in *s..=*e {
                    prop_assert!(!b.contains(&RangeSet::from_ranges([(x, x)])));
                }
            }
            prop_assert_eq!(d.union(&a.difference(&d)), a.clone());
        }
    }
}
