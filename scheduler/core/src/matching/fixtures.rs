//! Test builders for offers, resources and attributes (test builds only).

#![allow(deprecated)]

use mesos_proto::v1::resource::{AllocationInfo, ReservationInfo};
use mesos_proto::v1::value::{Range, Ranges, Scalar, Text, Type};
use mesos_proto::v1::{Attribute, Offer, Resource};

use super::constraint::Constraint;

/// An unreserved scalar resource.
pub(crate) fn scalar(name: &str, value: f64) -> Resource {
    Resource { name: name.into(), r#type: Type::Scalar as i32, scalar: Some(Scalar { value }), ..Default::default() }
}

/// An unreserved `ports` resource.
pub(crate) fn ports(ranges: &[(u64, u64)]) -> Resource {
    Resource {
        name: "ports".into(),
        r#type: Type::Ranges as i32,
        ranges: Some(Ranges { range: ranges.iter().map(|&(begin, end)| Range { begin, end }).collect() }),
        ..Default::default()
    }
}

/// `resource` dynamically reserved for `role`.
pub(crate) fn reserved(mut resource: Resource, role: &str) -> Resource {
    resource.reservations.push(ReservationInfo { role: Some(role.into()), ..Default::default() });
    resource
}

/// `resource` allocated to `role`.
pub(crate) fn allocated(mut resource: Resource, role: &str) -> Resource {
    resource.allocation_info = Some(AllocationInfo { role: Some(role.into()) });
    resource
}

/// A text attribute.
pub(crate) fn text(name: &str, value: &str) -> Attribute {
    Attribute { name: name.into(), r#type: Type::Text as i32, text: Some(Text { value: value.into() }), ..Default::default() }
}

/// An offer from `hostname` with these resources and attributes.
pub(crate) fn offer(hostname: &str, resources: Vec<Resource>, attributes: Vec<Attribute>) -> Offer {
    Offer { hostname: hostname.into(), resources, attributes, ..Default::default() }
}

/// A parsed constraint.
pub(crate) fn constraint(parts: &[&str]) -> Constraint {
    let parts: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
    match Constraint::parse(&parts) {
        Ok(c) => c,
        Err(e) => panic!("bad test constraint {parts:?}: {e}"),
    }
}
