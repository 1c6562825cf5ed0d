//! A count of an app's placed instances per field value, so constraints need not scan them.
//!
//! [`Constraint::accepts`](super::Constraint::accepts) and [`match_offer`](super::match_offer)
//! take the placed instances as a slice and look at every one of them per constraint and per
//! offer. A caller that matches many offers against the same app keeps a [`PlacementIndex`]
//! instead ([`PlacementIndex::add`] as instances are placed) and calls
//! [`match_offer_indexed`](super::match_offer_indexed): UNIQUE, MAX_PER and CLUSTER then cost
//! one lookup, and GROUP_BY one pass over the distinct values, whatever the instance count.
//! Both ways give the same answers.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::constraint::Field;
use super::placement::Placement;

/// FNV-1a: for the short attribute values and hostnames constraints group by, several times
/// cheaper than the default SipHash. The values come from the agents' configuration, not from
/// users, so resistance to chosen collisions is not needed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A hash map keyed by field values, hashed with [`Fnv`].
pub(crate) type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// How many placed instances have each value of one field, and how many lack the field.
#[derive(Debug, Clone, Default)]
pub(crate) struct ValueCounts {
    /// Instances whose agent has no such field.
    pub(crate) missing: usize,
    /// Instances per value of the field.
    pub(crate) values: FnvMap<String, usize>,
}

impl ValueCounts {
    fn add(&mut self, value: Option<&str>) {
        match value {
            Some(v) => match self.values.get_mut(v) {
                Some(n) => *n += 1,
                None => {
                    self.values.insert(v.to_string(), 1);
                }
            },
            None => self.missing += 1,
        }
    }
}

/// The placed instances of one app, counted per value of every field constraints can read:
/// hostname, `@region`, `@zone` and each attribute name any of them has.
#[derive(Debug, Clone, Default)]
pub struct PlacementIndex {
    total: usize,
    first: Option<Placement>,
    hostname: ValueCounts,
    region: ValueCounts,
    zone: ValueCounts,
    /// Per attribute name; an instance lacking the attribute counts as `missing`.
    attributes: FnvMap<String, ValueCounts>,
}

impl PlacementIndex {
    /// An index of `placed`, in that order (the first one is what `CLUSTER` without a value
    /// follows).
    pub fn new(placed: &[Placement]) -> Self {
        let mut index = PlacementIndex::default();
        for p in placed {
            index.add(p);
        }
        index
    }

    /// Counts one more placed instance, after those already counted.
    pub fn add(&mut self, placement: &Placement) {
        let before = self.total;
        self.total += 1;
        if self.first.is_none() {
            self.first = Some(placement.clone());
        }
        self.hostname.add(Some(&placement.hostname));
        self.region.add(placement.region.as_deref());
        self.zone.add(placement.zone.as_deref());
        for (name, _) in &placement.attributes {
            if !self.attributes.contains_key(name) {
                // Every instance counted so far lacked this attribute.
                let counts = ValueCounts { missing: before, values: FnvMap::default() };
                self.attributes.insert(name.clone(), counts);
            }
        }
        for (name, counts) in &mut self.attributes {
            counts.add(placement.attribute(name));
        }
    }

    /// How many instances are counted.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether no instance is counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The first instance counted.
    pub(crate) fn first(&self) -> Option<&Placement> {
        self.first.as_ref()
    }

    /// The counts for `field`; `None` for an attribute no instance has (all are missing it).
    pub(crate) fn counts(&self, field: Field<'_>) -> Option<&ValueCounts> {
        match field {
            Field::Hostname => Some(&self.hostname),
            Field::Region => Some(&self.region),
            Field::Zone => Some(&self.zone),
            Field::Attribute(name) => self.attributes.get(name),
        }
    }

    /// How many instances have `value` in `field`.
    pub(crate) fn count(&self, field: Field<'_>, value: &str) -> usize {
        self.counts(field).and_then(|c| c.values.get(value)).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(host: &str, attrs: &[(&str, &str)]) -> Placement {
        Placement {
            hostname: host.to_string(),
            attributes: attrs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            region: None,
            zone: Some("z1".to_string()),
        }
    }

    #[test]
    fn counts_values_and_missing_fields_in_any_order() {
        let index = PlacementIndex::new(&[at("a", &[]), at("b", &[("rack", "r1"), ("rack", "r2")]), at("a", &[("rack", "r1")])]);
        assert_eq!(index.len(), 3);
        assert_eq!(index.count(Field::Hostname, "a"), 2);
        assert_eq!(index.count(Field::Attribute("rack"), "r1"), 2);
        assert_eq!(index.count(Field::Attribute("rack"), "r2"), 0, "first of repeated names");
        let rack = index.counts(Field::Attribute("rack")).expect("rack is counted");
        assert_eq!(rack.missing, 1);
        assert_eq!(index.counts(Field::Region).map(|c| c.missing), Some(3));
        assert_eq!(index.count(Field::Zone, "z1"), 3);
        assert!(index.counts(Field::Attribute("unknown")).is_none());
        assert_eq!(index.first().map(|p| p.hostname.as_str()), Some("a"));
        assert!(PlacementIndex::default().is_empty());
    }
}
