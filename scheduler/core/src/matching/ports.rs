//! Host ports: picking them from the offered `ports` ranges and describing the pick as resources.
//!
//! Marathon picks dynamic ports at random; we pick deterministically, which keeps tests and
//! simulations reproducible: exact ports first, then each dynamic port is the lowest free port
//! of the first admitted `ports` resource (in offer order) that has one. A port is never handed
//! out twice within one offer, and port 0 is never handed out.

use std::collections::BTreeSet;

use mesos_proto::v1::Resource;
use mesos_proto::v1::value::{Range, Ranges, Type};

use super::resources::RoleFilter;

/// One host port a task needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortRequest {
    /// Any free port from the offered ranges (a dynamic host port).
    Any,
    /// Exactly this port (`requirePorts`, or a fixed `hostPort`); `Exact(0)` means [`Self::Any`].
    Exact(u32),
}

/// The admitted `ports` resources of an offer and the ports already handed out from them.
#[derive(Debug, Clone)]
pub(crate) struct PortPool {
    /// `(index into offer.resources, ranges sorted by begin and clamped to 1..=u32::MAX)`.
    offered: Vec<(usize, Vec<(u64, u64)>)>,
    /// Ports already given to earlier tasks matched in the same offer.
    taken: BTreeSet<u64>,
}

impl PortPool {
    /// The admitted `ports` resources of `resources`.
    pub(crate) fn new(resources: &[Resource], roles: &RoleFilter<'_>) -> Self {
        let offered = resources
            .iter()
            .enumerate()
            .filter(|(_, r)| r.name == "ports" && r.r#type == Type::Ranges as i32 && roles.admits(r))
            .map(|(i, r)| {
                let mut ranges: Vec<(u64, u64)> = r
                    .ranges
                    .iter()
                    .flat_map(|rs| rs.range.iter())
                    .map(|range| (range.begin.max(1), range.end.min(u64::from(u32::MAX))))
                    .filter(|(begin, end)| begin <= end)
                    .collect();
                ranges.sort_unstable();
                (i, ranges)
            })
            .collect();
        PortPool { offered, taken: BTreeSet::new() }
    }

    /// Picks a port for each request, as `(port, index of the resource it comes from)` in
    /// request order; `None` if some request cannot be met. Takes nothing.
    pub(crate) fn plan(&self, requests: &[PortRequest]) -> Option<Vec<(u32, usize)>> {
        let mut taken = self.taken.clone();
        let mut picks: Vec<Option<(u32, usize)>> = vec![None; requests.len()];
        for (slot, request) in picks.iter_mut().zip(requests) {
            if let PortRequest::Exact(port) = *request
                && port != 0
            {
                let wanted = u64::from(port);
                let index = self.holder_of(wanted)?;
                if !taken.insert(wanted) {
                    return None;
                }
                *slot = Some((port, index));
            }
        }
        for slot in picks.iter_mut().filter(|slot| slot.is_none()) {
            let (port, index) = self.lowest_free(&taken)?;
            taken.insert(u64::from(port));
            *slot = Some((port, index));
        }
        picks.into_iter().collect()
    }

    /// Marks planned ports as handed out.
    pub(crate) fn take(&mut self, picks: &[(u32, usize)]) {
        self.taken.extend(picks.iter().map(|(port, _)| u64::from(*port)));
    }

    /// The first admitted resource whose ranges hold `port`.
    fn holder_of(&self, port: u64) -> Option<usize> {
        self.offered.iter().find(|(_, ranges)| ranges.iter().any(|&(begin, end)| begin <= port && port <= end)).map(|(index, _)| *index)
    }

    /// The lowest port not in `taken` of the first resource that has one.
    fn lowest_free(&self, taken: &BTreeSet<u64>) -> Option<(u32, usize)> {
        for (index, ranges) in &self.offered {
            for &(begin, end) in ranges {
                let mut candidate = begin;
                for &used in taken.range(begin..=end) {
                    if used != candidate {
                        break;
                    }
                    candidate += 1; // used <= end <= u32::MAX: no overflow.
                }
                if candidate <= end {
                    return u32::try_from(candidate).ok().map(|port| (port, *index));
                }
            }
        }
        None
    }
}

/// The `ports` resources for a pick: one per source resource (a copy of it, keeping its role,
/// allocation and reservations) holding just the picked ports as merged ranges.
pub(crate) fn port_resources(offered: &[Resource], picks: &[(u32, usize)]) -> Vec<Resource> {
    let mut sources: Vec<usize> = picks.iter().map(|(_, index)| *index).collect();
    sources.sort_unstable();
    sources.dedup();
    sources
        .into_iter()
        .filter_map(|index| {
            let source = offered.get(index)?;
            let mut ports: Vec<u64> = picks.iter().filter(|(_, i)| *i == index).map(|(p, _)| u64::from(*p)).collect();
            ports.sort_unstable();
            let mut ranges: Vec<Range> = Vec::new();
            for port in ports {
                match ranges.last_mut() {
                    Some(last) if last.end + 1 == port => last.end = port,
                    _ => ranges.push(Range { begin: port, end: port }),
                }
            }
            Some(Resource { scalar: None, set: None, ranges: Some(Ranges { range: ranges }), ..source.clone() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::resource::ReservationInfo;

    fn ports(ranges: &[(u64, u64)]) -> Resource {
        Resource {
            name: "ports".into(),
            r#type: Type::Ranges as i32,
            ranges: Some(Ranges { range: ranges.iter().map(|&(begin, end)| Range { begin, end }).collect() }),
            ..Default::default()
        }
    }

    fn pool(resources: &[Resource]) -> PortPool {
        PortPool::new(resources, &RoleFilter::new(&[], "marathon"))
    }

    #[test]
    fn dynamic_ports_are_the_lowest_free_ones() {
        let offered = [ports(&[(31005, 31006), (31000, 31001)])];
        let mut pool = pool(&offered);
        let picks = pool.plan(&[PortRequest::Any, PortRequest::Any, PortRequest::Any]);
        assert_eq!(picks, Some(vec![(31000, 0), (31001, 0), (31005, 0)]));
        pool.take(&[(31000, 0), (31001, 0), (31005, 0)]);
        assert_eq!(pool.plan(&[PortRequest::Any]), Some(vec![(31006, 0)]));
        assert_eq!(pool.plan(&[PortRequest::Any, PortRequest::Any]), None);
    }

    #[test]
    fn exact_ports_must_be_offered_and_free_and_are_not_reused_for_dynamic_ones() {
        let offered = [ports(&[(80, 81), (8080, 8080)])];
        let mut pool = pool(&offered);
        let picks = pool.plan(&[PortRequest::Any, PortRequest::Exact(80), PortRequest::Exact(0)]);
        assert_eq!(picks, Some(vec![(81, 0), (80, 0), (8080, 0)]));
        assert_eq!(pool.plan(&[PortRequest::Exact(443)]), None);
        assert_eq!(pool.plan(&[PortRequest::Exact(80), PortRequest::Exact(80)]), None);
        pool.take(&[(80, 0)]);
        assert_eq!(pool.plan(&[PortRequest::Exact(80)]), None);
        assert_eq!(pool.plan(&[]), Some(vec![]));
    }

    #[test]
    fn only_admitted_roles_give_ports() {
        let mut other = ports(&[(1000, 2000)]);
        other.reservations.push(ReservationInfo { role: Some("other".into()), ..Default::default() });
        let offered = [other, ports(&[(3000, 3000)])];
        let pool = pool(&offered);
        assert_eq!(pool.plan(&[PortRequest::Exact(1500)]), None);
        assert_eq!(pool.plan(&[PortRequest::Any]), Some(vec![(3000, 1)]));
    }

    #[test]
    fn odd_ranges_are_tolerated() {
        let offered = [ports(&[(10, 5), (0, 0), (u64::MAX - 1, u64::MAX), (0, 2)])];
        let pool = pool(&offered);
        assert_eq!(pool.plan(&[PortRequest::Any, PortRequest::Any]), Some(vec![(1, 0), (2, 0)]));
        assert_eq!(pool.plan(&[PortRequest::Any; 3]), None);
        let huge = [ports(&[(u64::from(u32::MAX) - 1, u64::MAX)])];
        let picks = super::PortPool::new(&huge, &RoleFilter::new(&[], "r")).plan(&[PortRequest::Any; 2]);
        assert_eq!(picks, Some(vec![(u32::MAX - 1, 0), (u32::MAX, 0)]));
    }

    #[test]
    fn port_resources_merge_ranges_per_source() {
        let mut reserved = ports(&[(100, 200)]);
        reserved.reservations.push(ReservationInfo { role: Some("web".into()), ..Default::default() });
        let offered = [reserved, ports(&[(300, 400)])];
        let built = port_resources(&offered, &[(102, 0), (300, 1), (101, 0), (104, 0)]);
        assert_eq!(built.len(), 2);
        let ranges =
            |r: &Resource| -> Vec<(u64, u64)> { r.ranges.as_ref().expect("port ranges").range.iter().map(|r| (r.begin, r.end)).collect() };
        assert_eq!(ranges(&built[0]), vec![(101, 102), (104, 104)]);
        assert_eq!(built[0].reservations, offered[0].reservations);
        assert_eq!(ranges(&built[1]), vec![(300, 300)]);
    }
}
