//! Marathon placement constraints: `[field, OPERATOR, value?]`, parsed and evaluated.
//!
//! Evaluation follows Marathon's `Constraints.meetsConstraint`: a constraint looks at one field
//! of the candidate agent and at the same field of the agents where the app's active instances
//! already run ([`Placement`]s). The field is `hostname` (or `@hostname`), `@region`, `@zone`
//! or an agent attribute compared by its formatted value (see [`super::placement`]).
//!
//! An agent without the field is accepted by `UNLIKE` only; every other operator refuses it.
//!
//! `GROUP_BY` needs no knowledge of the values seen in other offers: like Marathon, it groups
//! the already placed instances by value and accepts a candidate whose value is new, or whose
//! group is among the smallest once at least the expected number of groups exists. Without an
//! expected count, instances therefore spread only over the values that offers happen to bring
//! first; the count (`["rack", "GROUP_BY", "3"]`) is how users make the spread wait for every
//! value. This module never fails: a constraint built by hand with odd fields still evaluates.

use std::fmt;

use regex::Regex;

use super::index::{FnvMap, PlacementIndex, ValueCounts};
use super::placement::{Placement, format_scalar, parse_scalar_literal};

/// A constraint operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// At most one instance per distinct value of the field.
    Unique,
    /// All instances on agents whose field equals the value (or the first placement's value).
    Cluster,
    /// Spread evenly over the distinct values (optionally: expected number of values).
    GroupBy,
    /// The field matches a regular expression (whole value).
    Like,
    /// The field does not match a regular expression; agents lacking the field are accepted.
    Unlike,
    /// At most N instances per distinct value.
    MaxPer,
    /// The field equals the value (a scalar attribute to the nearest thousandth).
    Is,
}

impl Operator {
    /// Marathon's name of the operator.
    pub fn name(self) -> &'static str {
        match self {
            Operator::Unique => "UNIQUE",
            Operator::Cluster => "CLUSTER",
            Operator::GroupBy => "GROUP_BY",
            Operator::Like => "LIKE",
            Operator::Unlike => "UNLIKE",
            Operator::MaxPer => "MAX_PER",
            Operator::Is => "IS",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "UNIQUE" => Operator::Unique,
            "CLUSTER" => Operator::Cluster,
            "GROUP_BY" => Operator::GroupBy,
            "LIKE" => Operator::Like,
            "UNLIKE" => Operator::Unlike,
            "MAX_PER" => Operator::MaxPer,
            "IS" => Operator::Is,
            _ => return None,
        })
    }
}

/// A parsed, checked constraint.
#[derive(Debug, Clone)]
pub struct Constraint {
    /// `hostname` (also `@hostname`), `@region`, `@zone` or an agent attribute name.
    pub field: String,
    /// The operator.
    pub operator: Operator,
    /// The value, if given.
    pub value: Option<String>,
    /// For LIKE/UNLIKE: the value compiled as a whole-value regular expression.
    pub regex: Option<Regex>,
    /// For MAX_PER (required) and GROUP_BY (optional): the value as a number.
    pub count: Option<u32>,
}

impl PartialEq for Constraint {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field && self.operator == other.operator && self.value == other.value
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.field, self.operator.name())?;
        if let Some(v) = &self.value {
            write!(f, ":{v}")?;
        }
        Ok(())
    }
}

impl Constraint {
    /// Parses Marathon's JSON form `[field, OPERATOR]` or `[field, OPERATOR, value]`; the error
    /// is the message Marathon's validator gives.
    pub fn parse(parts: &[String]) -> Result<Constraint, String> {
        let (field, op, value) = match parts {
            [field, op] => (field, op, None),
            [field, op, value] => (field, op, Some(value.clone())),
            _ => return Err("Each constraint must have either 2 or 3 fields".to_string()),
        };
        if field.is_empty() {
            return Err("Missing field and operator".to_string());
        }
        let operator = Operator::from_name(op).ok_or_else(|| {
            format!("Constraint operator must be one of the following: [UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS], not '{op}'")
        })?;
        let mut regex = None;
        let mut count = None;
        match (operator, value.as_deref()) {
            (Operator::Unique, Some(_)) => return Err("Value specified but not used".to_string()),
            (Operator::Like | Operator::Unlike, None) => {
                return Err("A regular expression value must be provided".to_string());
            }
            (Operator::Like | Operator::Unlike, Some(v)) => {
                regex = Some(Regex::new(&format!("^(?:{v})$")).map_err(|_| format!("'{v}' is not a valid regular expression"))?);
            }
            (Operator::MaxPer, None) => return Err("Value was not specified".to_string()),
            (Operator::MaxPer, Some(v)) => {
                count = Some(v.parse::<u32>().map_err(|_| "Value was not an integer".to_string())?);
            }
            (Operator::GroupBy, Some(v)) => {
                count = Some(v.parse::<u32>().map_err(|_| "Value was not an integer".to_string())?);
            }
            (Operator::Is, None) => return Err("Value was not specified".to_string()),
            _ => {}
        }
        Ok(Constraint { field: field.clone(), operator, value, regex, count })
    }
}

/// Which property of an agent a constraint reads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    Hostname,
    Region,
    Zone,
    Attribute(&'a str),
}

impl<'a> Field<'a> {
    pub(crate) fn of(name: &'a str) -> Self {
        match name {
            "hostname" | "@hostname" => Field::Hostname,
            "@region" => Field::Region,
            "@zone" => Field::Zone,
            other => Field::Attribute(other),
        }
    }

    pub(crate) fn read(self, placement: &Placement) -> Option<&str> {
        match self {
            Field::Hostname => Some(placement.hostname.as_str()),
            Field::Region => placement.region.as_deref(),
            Field::Zone => placement.zone.as_deref(),
            Field::Attribute(name) => placement.attribute(name),
        }
    }
}

impl Constraint {
    /// Whether an instance may be placed at `candidate`, given where the app's active instances
    /// already are (`placed`; callers include only instances of the current app version that
    /// count for placement, as Marathon does).
    ///
    /// - `UNIQUE`: no placed instance has the candidate's value;
    /// - `CLUSTER` with a value: the candidate's value equals it; without one (or with an empty
    ///   one): the candidate's value equals the first placed instance's (anything goes if none);
    /// - `GROUP_BY [n]`: see the module docs;
    /// - `LIKE` / `UNLIKE`: the whole value matches / does not match the regular expression (an
    ///   empty expression accepts nothing, as in Marathon);
    /// - `MAX_PER n`: fewer than `n` placed instances share the candidate's value;
    /// - `IS`: the value equals the constraint's; for attributes, a value written as a Mesos
    ///   scalar literal also matches a scalar attribute equal to the nearest thousandth
    ///   (`IS 0.80` matches an agent with `level:0.8`).
    pub fn accepts(&self, candidate: &Placement, placed: &[Placement]) -> bool {
        self.accepts_in(candidate, Placed::Slice(placed), 0)
    }

    /// [`Self::accepts`] against `placed` followed by `extra` more instances at `candidate`
    /// itself (the tasks matched earlier in the same offer), without building that list.
    pub(crate) fn accepts_in(&self, candidate: &Placement, placed: Placed<'_>, extra: usize) -> bool {
        let field = Field::of(&self.field);
        let Some(value) = field.read(candidate) else {
            return self.operator == Operator::Unlike;
        };
        let given = self.value.as_deref().filter(|v| !v.is_empty());
        match self.operator {
            Operator::Unique => extra == 0 && !placed.has(field, value),
            Operator::Cluster => match given {
                Some(expected) => value == expected,
                // The first of placed-then-extra: an extra one is at the candidate.
                None => placed.first().is_none_or(|p| field.read(p) == Some(value)),
            },
            Operator::GroupBy => {
                let expected = self.count.unwrap_or(0);
                match placed {
                    Placed::Slice(placed) => group_by_accepts(value, placed.iter().map(|p| field.read(p)), extra, expected),
                    Placed::Index(index) => indexed_group_by_accepts(value, index, field, extra, expected),
                }
            }
            Operator::Like => self.regex_matches(value) == Some(true),
            Operator::Unlike => self.regex_matches(value) == Some(false),
            Operator::MaxPer => {
                let limit = usize::try_from(self.count.unwrap_or(0)).unwrap_or(usize::MAX);
                placed.count(field, value).saturating_add(extra) < limit
            }
            Operator::Is => match given {
                None => false,
                Some(expected) if value == expected => true,
                Some(expected) => {
                    matches!(field, Field::Attribute(_)) && parse_scalar_literal(expected).is_some_and(|x| format_scalar(x) == value)
                }
            },
        }
    }

    /// Whether the whole of `value` matches the constraint's expression; `None` if there is no
    /// usable expression (missing, empty or invalid), which both LIKE and UNLIKE refuse.
    fn regex_matches(&self, value: &str) -> Option<bool> {
        let pattern = self.value.as_deref().filter(|v| !v.is_empty())?;
        match &self.regex {
            Some(regex) => Some(regex.is_match(value)),
            None => Regex::new(&format!("^(?:{pattern})$")).ok().map(|r| r.is_match(value)),
        }
    }
}

/// The placed instances a constraint is evaluated against: as a slice, scanned, or counted in
/// a [`PlacementIndex`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Placed<'a> {
    /// Every placed instance, in placement order.
    Slice(&'a [Placement]),
    /// The placed instances counted per field value.
    Index(&'a PlacementIndex),
}

impl<'a> Placed<'a> {
    fn first(self) -> Option<&'a Placement> {
        match self {
            Placed::Slice(placed) => placed.first(),
            Placed::Index(index) => index.first(),
        }
    }

    fn has(self, field: Field<'_>, value: &str) -> bool {
        match self {
            Placed::Slice(placed) => placed.iter().any(|p| field.read(p) == Some(value)),
            Placed::Index(index) => index.count(field, value) > 0,
        }
    }

    fn count(self, field: Field<'_>, value: &str) -> usize {
        match self {
            Placed::Slice(placed) => placed.iter().filter(|p| field.read(p) == Some(value)).count(),
            Placed::Index(index) => index.count(field, value),
        }
    }
}

/// Marathon's `checkGroupBy`: group the placed instances (plus `extra` at the candidate) by
/// value (instances lacking the field form a group of their own); accept a value with no group
/// yet, or a value whose group is a smallest one when there are at least `expected_groups`
/// groups.
fn group_by_accepts<'p>(value: &str, placed_values: impl Iterator<Item = Option<&'p str>>, extra: usize, expected_groups: u32) -> bool {
    let mut groups: FnvMap<Option<&str>, usize> = FnvMap::default();
    for v in placed_values {
        *groups.entry(v).or_default() += 1;
    }
    if extra > 0 {
        *groups.entry(Some(value)).or_default() += extra;
    }
    let smallest = groups.values().copied().min().unwrap_or(0);
    let enough_groups = u32::try_from(groups.len()).unwrap_or(u32::MAX) >= expected_groups;
    groups.get(&Some(value)).is_none_or(|&count| enough_groups && count == smallest)
}

/// [`group_by_accepts`] from an index's counts: one pass over the distinct values.
fn indexed_group_by_accepts(value: &str, index: &PlacementIndex, field: Field<'_>, extra: usize, expected_groups: u32) -> bool {
    let all_missing;
    let counts = match index.counts(field) {
        Some(counts) => counts,
        None => {
            all_missing = ValueCounts { missing: index.len(), ..ValueCounts::default() };
            &all_missing
        }
    };
    let placed_here = counts.values.get(value).copied().unwrap_or(0);
    let mine = placed_here.saturating_add(extra);
    if mine == 0 {
        return true;
    }
    let missing = (counts.missing > 0).then_some(counts.missing);
    let (smallest, groups) = counts
        .values
        .iter()
        .filter(|(v, _)| v.as_str() != value)
        .map(|(_, n)| *n)
        .chain(missing)
        .fold((mine, 1usize), |(smallest, groups), n| (smallest.min(n), groups + 1));
    u32::try_from(groups).unwrap_or(u32::MAX) >= expected_groups && mine == smallest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_every_operator_and_refuses_bad_ones() {
        for ok in [
            vec!["hostname", "UNIQUE"],
            vec!["rack", "CLUSTER", "r1"],
            vec!["rack", "CLUSTER"],
            vec!["rack", "GROUP_BY"],
            vec!["rack", "GROUP_BY", "3"],
            vec!["hostname", "LIKE", "agent-[0-9]+"],
            vec!["hostname", "UNLIKE", "bad.*"],
            vec!["zone", "MAX_PER", "2"],
            vec!["zone", "IS", "a"],
        ] {
            assert!(Constraint::parse(&parts(&ok)).is_ok(), "{ok:?} refused");
        }
        for bad in [
            vec!["hostname"],
            vec!["hostname", "NEAR"],
            vec!["hostname", "LIKE"],
            vec!["hostname", "LIKE", "("],
            vec!["zone", "MAX_PER", "two"],
            vec!["zone", "IS"],
            vec!["hostname", "UNIQUE", "x"],
        ] {
            assert!(Constraint::parse(&parts(&bad)).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn like_matches_whole_values() {
        let c = Constraint::parse(&parts(&["hostname", "LIKE", "agent-[0-9]"])).expect("valid");
        let re = c.regex.expect("LIKE compiles its expression");
        assert!(re.is_match("agent-1"));
        assert!(!re.is_match("xagent-1"));
        assert!(!re.is_match("agent-12"));
    }

    fn c(p: &[&str]) -> Constraint {
        crate::matching::fixtures::constraint(p)
    }

    fn at(host: &str, attrs: &[(&str, &str)]) -> Placement {
        Placement {
            hostname: host.to_string(),
            attributes: attrs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            region: None,
            zone: None,
        }
    }

    fn rack(host: &str, rack: &str) -> Placement {
        at(host, &[("rack", rack)])
    }

    #[test]
    fn unique_refuses_a_value_already_used() {
        let unique_host = c(&["hostname", "UNIQUE"]);
        let placed = [at("a", &[]), at("b", &[])];
        assert!(unique_host.accepts(&at("c", &[]), &placed));
        assert!(!unique_host.accepts(&at("a", &[]), &placed));
        assert!(unique_host.accepts(&at("a", &[]), &[]));
        let unique_rack = c(&["rack", "UNIQUE"]);
        assert!(unique_rack.accepts(&rack("x", "r2"), &[rack("a", "r1"), at("b", &[])]));
        assert!(!unique_rack.accepts(&rack("x", "r1"), &[rack("a", "r1")]));
        assert!(!unique_rack.accepts(&at("x", &[]), &[]), "missing attribute");
        assert!(c(&["@hostname", "UNIQUE"]).accepts(&at("c", &[]), &placed));
        assert!(!c(&["@hostname", "UNIQUE"]).accepts(&at("b", &[]), &placed));
    }

    #[test]
    fn cluster_with_a_value_requires_it() {
        let cluster = c(&["rack", "CLUSTER", "r1"]);
        assert!(cluster.accepts(&rack("a", "r1"), &[]));
        assert!(!cluster.accepts(&rack("a", "r2"), &[]));
        assert!(!cluster.accepts(&at("a", &[]), &[]));
        let host = c(&["hostname", "CLUSTER", "a.example"]);
        assert!(host.accepts(&at("a.example", &[]), &[]));
        assert!(!host.accepts(&at("b.example", &[]), &[]));
    }

    #[test]
    fn cluster_without_a_value_follows_the_first_placement() {
        for cluster in [c(&["rack", "CLUSTER"]), c(&["rack", "CLUSTER", ""])] {
            assert!(cluster.accepts(&rack("a", "r2"), &[]));
            assert!(cluster.accepts(&rack("b", "r2"), &[rack("a", "r2")]));
            assert!(!cluster.accepts(&rack("b", "r1"), &[rack("a", "r2")]));
            assert!(!cluster.accepts(&at("b", &[]), &[]));
        }
        let host = c(&["hostname", "CLUSTER"]);
        assert!(host.accepts(&at("a", &[]), &[at("a", &[])]));
        assert!(!host.accepts(&at("b", &[]), &[at("a", &[])]));
    }

    #[test]
    fn group_by_without_count_fills_new_values_and_smallest_groups() {
        let group_by = c(&["rack", "GROUP_BY"]);
        assert!(group_by.accepts(&rack("a", "r1"), &[]));
        // A new value is always welcome.
        assert!(group_by.accepts(&rack("x", "r3"), &[rack("a", "r1"), rack("b", "r1")]));
        // An existing value only if its group is a smallest one.
        let placed = [rack("a", "r1"), rack("b", "r1"), rack("c", "r2")];
        assert!(!group_by.accepts(&rack("x", "r1"), &placed));
        assert!(group_by.accepts(&rack("x", "r2"), &placed));
        // With one value seen so far, stacking on it is allowed (Marathon cannot know of others).
        assert!(group_by.accepts(&rack("x", "r1"), &[rack("a", "r1")]));
        assert!(!group_by.accepts(&at("x", &[]), &[]));
    }

    #[test]
    fn group_by_with_count_waits_for_enough_values() {
        let group_by = c(&["rack", "GROUP_BY", "3"]);
        let two_racks = [rack("a", "r1"), rack("b", "r2")];
        assert!(!group_by.accepts(&rack("x", "r1"), &two_racks));
        assert!(group_by.accepts(&rack("x", "r3"), &two_racks));
        let three_racks = [rack("a", "r1"), rack("b", "r2"), rack("c", "r3")];
        assert!(group_by.accepts(&rack("x", "r1"), &three_racks));
        let uneven = [rack("a", "r1"), rack("b", "r2"), rack("c", "r3"), rack("d", "r1")];
        assert!(!group_by.accepts(&rack("x", "r1"), &uneven));
        assert!(group_by.accepts(&rack("x", "r2"), &uneven));
        // Instances on agents lacking the attribute form a group of their own.
        let with_missing = [rack("a", "r1"), at("b", &[]), at("c", &[])];
        assert!(c(&["rack", "GROUP_BY"]).accepts(&rack("x", "r1"), &with_missing));
    }

    #[test]
    fn group_by_hostname() {
        let group_by = c(&["hostname", "GROUP_BY", "2"]);
        assert!(group_by.accepts(&at("b", &[]), &[at("a", &[])]));
        assert!(!group_by.accepts(&at("a", &[]), &[at("a", &[])]));
        assert!(group_by.accepts(&at("a", &[]), &[at("a", &[]), at("b", &[])]));
    }

    #[test]
    fn like_and_unlike_match_whole_values() {
        let like = c(&["rack", "LIKE", "r[12]"]);
        assert!(like.accepts(&rack("a", "r1"), &[]));
        assert!(!like.accepts(&rack("a", "r3"), &[]));
        assert!(!like.accepts(&rack("a", "xr1"), &[]));
        assert!(!like.accepts(&at("a", &[]), &[]));
        let unlike = c(&["rack", "UNLIKE", "r[12]"]);
        assert!(!unlike.accepts(&rack("a", "r1"), &[]));
        assert!(unlike.accepts(&rack("a", "r3"), &[]));
        assert!(unlike.accepts(&rack("a", "r10"), &[]));
        assert!(unlike.accepts(&at("a", &[]), &[]), "UNLIKE accepts a missing attribute");
        let host = c(&["hostname", "LIKE", "web-.*"]);
        assert!(host.accepts(&at("web-1", &[]), &[]));
        assert!(!host.accepts(&at("db-1", &[]), &[]));
        // Formatted values are what the expression sees.
        assert!(c(&["ports", "LIKE", "\\[100-200.*"]).accepts(&at("a", &[("ports", "[100-200,300-400]")]), &[]));
    }

    #[test]
    fn like_and_unlike_with_odd_hand_built_values_refuse() {
        let mut like = c(&["rack", "LIKE", "r1"]);
        like.regex = None;
        assert!(like.accepts(&rack("a", "r1"), &[]), "compiled on the fly");
        like.value = Some("(".to_string());
        assert!(!like.accepts(&rack("a", "r1"), &[]));
        let mut unlike = c(&["rack", "UNLIKE", "r1"]);
        unlike.value = Some(String::new());
        assert!(!unlike.accepts(&rack("a", "r2"), &[]));
    }

    #[test]
    fn max_per_caps_each_value() {
        let max_per = c(&["rack", "MAX_PER", "2"]);
        let placed = [rack("a", "r1"), rack("b", "r1"), rack("c", "r2")];
        assert!(!max_per.accepts(&rack("x", "r1"), &placed));
        assert!(max_per.accepts(&rack("x", "r2"), &placed));
        assert!(max_per.accepts(&rack("x", "r3"), &placed));
        assert!(!max_per.accepts(&at("x", &[]), &placed));
        let zero = c(&["hostname", "MAX_PER", "0"]);
        assert!(!zero.accepts(&at("a", &[]), &[]));
        let one_per_host = c(&["hostname", "MAX_PER", "1"]);
        assert!(one_per_host.accepts(&at("a", &[]), &[at("b", &[])]));
        assert!(!one_per_host.accepts(&at("a", &[]), &[at("a", &[])]));
    }

    #[test]
    fn is_compares_text_exactly_and_scalars_to_the_thousandth() {
        let is = c(&["rack", "IS", "r1"]);
        assert!(is.accepts(&rack("a", "r1"), &[]));
        assert!(!is.accepts(&rack("a", "r10"), &[]));
        assert!(!is.accepts(&at("a", &[]), &[]));
        let level = at("a", &[("level", "0.8")]);
        for value in ["0.8", "0.80", "0.8000", "0.8001"] {
            assert!(c(&["level", "IS", value]).accepts(&level, &[]), "{value}");
        }
        assert!(!c(&["level", "IS", "0.81"]).accepts(&level, &[]));
        let big = at("a", &[("mem", "1,234.5")]);
        assert!(c(&["mem", "IS", "1234.5"]).accepts(&big, &[]));
        assert!(c(&["hostname", "IS", "a"]).accepts(&level, &[]));
        assert!(!c(&["hostname", "IS", "b"]).accepts(&level, &[]));
    }

    #[test]
    fn region_and_zone_fields_read_the_fault_domain() {
        let mut eu = at("a", &[]);
        eu.region = Some("eu".into());
        eu.zone = Some("eu-1".into());
        let mut us = at("b", &[]);
        us.region = Some("us".into());
        us.zone = Some("us-1".into());
        assert!(c(&["@region", "IS", "eu"]).accepts(&eu, &[]));
        assert!(!c(&["@region", "IS", "eu"]).accepts(&us, &[]));
        assert!(!c(&["@zone", "UNIQUE"]).accepts(&eu, &[eu.clone()]));
        assert!(c(&["@zone", "UNIQUE"]).accepts(&us, &[eu.clone()]));
        assert!(!c(&["@zone", "LIKE", ".*"]).accepts(&at("c", &[]), &[]), "no fault domain");
        assert!(c(&["@zone", "UNLIKE", "eu-.*"]).accepts(&at("c", &[]), &[]));
        // An attribute literally named "region" is an attribute, not the fault domain.
        assert!(c(&["region", "IS", "r"]).accepts(&at("c", &[("region", "r")]), &[]));
    }

    #[test]
    fn first_of_repeated_attributes_counts() {
        let twice = at("a", &[("rack", "r1"), ("rack", "r2")]);
        assert!(c(&["rack", "IS", "r1"]).accepts(&twice, &[]));
        assert!(!c(&["rack", "IS", "r2"]).accepts(&twice, &[]));
    }
}
