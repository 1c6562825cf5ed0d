//! Where an instance runs, as constraints see it: the agent's hostname, its attributes formatted
//! the way Marathon compares them, and its fault domain.
//!
//! Marathon compares attribute values as strings (`Constraints.getValueString`):
//! - text: the text as is;
//! - scalar: `java.text.NumberFormat.getInstance` in an English locale, i.e. the pattern
//!   `#,##0.###` — at most three decimals rounded half-even, trailing zeros dropped, thousands
//!   grouped with commas (`1234.5` → `"1,234.5"`, `2.0` → `"2"`, `0.0625` → `"0.062"`);
//! - ranges: sorted by begin, `"[a-b,c-d]"`;
//! - set: items sorted, `"{a,b}"`.
//!
//! This module must not look at resources; it only describes the agent.

use mesos_proto::v1::value::Type;
use mesos_proto::v1::{Attribute, Offer};

/// Where an existing (active) instance of an app runs, or where a candidate offer would put one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    /// The agent's hostname.
    pub hostname: String,
    /// The agent's attributes as `(name, formatted value)`, in the order the agent reports them.
    /// When a name repeats, constraints read the first one, as Marathon does.
    pub attributes: Vec<(String, String)>,
    /// The agent's fault-domain region (`@region`), if it has one.
    pub region: Option<String>,
    /// The agent's fault-domain zone (`@zone`), if it has one.
    pub zone: Option<String>,
}

impl Placement {
    /// The formatted value of the first attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Describes the agent behind `offer`: hostname, formatted attributes and fault domain.
///
/// Attributes whose type is not one Mesos defines are left out (constraints then treat them as
/// missing) rather than guessed at.
pub fn placement_of(offer: &Offer) -> Placement {
    let fault_domain = offer.domain.as_ref().and_then(|d| d.fault_domain.as_ref());
    Placement {
        hostname: offer.hostname.clone(),
        attributes: offer.attributes.iter().filter_map(|a| format_attribute(a).map(|v| (a.name.clone(), v))).collect(),
        region: fault_domain.map(|f| f.region.name.clone()),
        zone: fault_domain.map(|f| f.zone.name.clone()),
    }
}

/// Formats an attribute's value the way Marathon compares it; `None` for an unknown type.
pub fn format_attribute(attribute: &Attribute) -> Option<String> {
    let formatted = match Type::try_from(attribute.r#type).ok()? {
        Type::Text => attribute.text.as_ref().map(|t| t.value.clone()).unwrap_or_default(),
        Type::Scalar => format_scalar(attribute.scalar.as_ref().map_or(0.0, |s| s.value)),
        Type::Ranges => {
            let mut ranges: Vec<(u64, u64)> =
                attribute.ranges.as_ref().map(|r| r.range.iter().map(|r| (r.begin, r.end)).collect()).unwrap_or_default();
            // Stable, by begin only: equal begins keep the agent's order, as in Marathon.
            ranges.sort_by_key(|&(begin, _)| begin);
            let inner: Vec<String> = ranges.iter().map(|(b, e)| format!("{b}-{e}")).collect();
            format!("[{}]", inner.join(","))
        }
        Type::Set => {
            let mut items: Vec<&str> = attribute.set.as_ref().map(|s| s.item.iter().map(String::as_str).collect()).unwrap_or_default();
            // Java compares strings by UTF-16 code units; this differs from byte order only for
            // characters above U+FFFF against U+E000..U+FFFF, but costs nothing to get right.
            items.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            format!("{{{}}}", items.join(","))
        }
    };
    Some(formatted)
}

/// Formats a scalar like Java's `NumberFormat.getInstance()` in an English locale (`#,##0.###`,
/// half-even): at most three decimals, no trailing zeros, commas between thousands.
///
/// Like Java, digits come from the shortest representation that reads back as the same double
/// (so `1e20` prints as `100,000,000,000,000,000,000`), and rounding to three decimals is exact
/// on the double's binary value (so only true ties such as `0.0625` round to even). Negative
/// numbers keep their sign even when they round to zero (`-0.0001` → `"-0"`). NaN prints as
/// `"NaN"` and infinities as `"∞"`/`"-∞"` (Java 9+ symbols; Java 8 printed U+FFFD for NaN).
pub fn format_scalar(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    let magnitude = value.abs();
    if magnitude.is_infinite() {
        return format!("{sign}∞");
    }
    let (integer, fraction) = decimal_parts(magnitude);
    let mut out = String::with_capacity(integer.len() + integer.len() / 3 + fraction.len() + 2);
    out.push_str(sign);
    push_grouped(&mut out, &integer);
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(&fraction);
    }
    out
}

/// Splits a finite, non-negative double into integer digits and at most three fraction digits
/// (no trailing zeros), rounded half-even.
fn decimal_parts(magnitude: f64) -> (String, String) {
    // `{:e}` gives the shortest round-tripping digits, e.g. "1.2345e3", "5e-324", "0e0".
    let shortest = format!("{magnitude:e}");
    let (mantissa, exponent) = shortest.split_once('e').unwrap_or((shortest.as_str(), "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digit_count = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    // Digits before the decimal point.
    let point = exponent.saturating_add(1);
    let fraction_digits = digit_count.saturating_sub(point);
    if fraction_digits <= 3 {
        let (integer, fraction) = if point <= 0 {
            let zeros = usize::try_from(-point).unwrap_or(0);
            ("0".to_string(), format!("{}{digits}", "0".repeat(zeros)))
        } else if point >= digit_count {
            let zeros = usize::try_from(point - digit_count).unwrap_or(0);
            (format!("{digits}{}", "0".repeat(zeros)), String::new())
        } else {
            let split = usize::try_from(point).unwrap_or(0);
            (digits[..split].to_string(), digits[split..].to_string())
        };
        let fraction = fraction.trim_end_matches('0').to_string();
        let integer = if integer.is_empty() { "0".to_string() } else { integer };
        return (integer, fraction);
    }
    // More than three decimals: round the exact binary value to thousandths.
    let thousandths = exact_thousandths_half_even(magnitude);
    let integer = (thousandths / 1000).to_string();
    let fraction = format!("{:03}", thousandths % 1000).trim_end_matches('0').to_string();
    (integer, fraction)
}

/// `round_half_even(magnitude * 1000)` computed exactly on the double's binary value, for a
/// finite, non-negative double that is not an integer (so its binary exponent is negative).
fn exact_thousandths_half_even(magnitude: f64) -> u128 {
    let bits = magnitude.to_bits();
    let biased_exponent = i64::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
    let fraction = bits & ((1u64 << 52) - 1);
    let (mantissa, exponent) = if biased_exponent == 0 { (fraction, -1074) } else { (fraction | (1u64 << 52), biased_exponent - 1075) };
    let scaled = u128::from(mantissa) * 1000; // < 2^63
    if exponent >= 0 {
        // An integer; callers never get here, but the answer is still well defined.
        let shift = u32::try_from(exponent).unwrap_or(u32::MAX);
        return scaled.checked_shl(shift).unwrap_or(u128::MAX);
    }
    let shift = u32::try_from(-exponent).unwrap_or(u32::MAX);
    if shift >= 127 {
        // scaled < 2^63 <= 2^(shift-1): less than half a thousandth.
        return 0;
    }
    let quotient = scaled >> shift;
    let remainder = scaled & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    if remainder > half || (remainder == half && quotient % 2 == 1) { quotient + 1 } else { quotient }
}

/// Appends ASCII `digits` with a comma before every group of three from the right.
fn push_grouped(out: &mut String, digits: &str) {
    let len = digits.len();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
}

/// Parses a Mesos scalar literal (`digits` or `digits.digits`), as an IS constraint's value.
pub(crate) fn parse_scalar_literal(text: &str) -> Option<f64> {
    let (whole, decimals) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(decimals) || (text.ends_with('.')) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_proto::v1::DomainInfo;
    use mesos_proto::v1::domain_info::FaultDomain;
    use mesos_proto::v1::domain_info::fault_domain::{RegionInfo, ZoneInfo};
    use mesos_proto::v1::value::{Range, Ranges, Scalar, Set, Text};

    fn attribute(name: &str, kind: Type) -> Attribute {
        Attribute { name: name.to_string(), r#type: kind as i32, ..Default::default() }
    }

    #[test]
    fn scalars_format_like_java_number_format() {
        for (value, expected) in [
            (0.0, "0"),
            (2.0, "2"),
            (0.8, "0.8"),
            (0.80001, "0.8"),
            (1.5, "1.5"),
            (1234.5, "1,234.5"),
            (1_234_567.0, "1,234,567"),
            (123.0, "123"),
            (1000.0, "1,000"),
            (0.0625, "0.062"),
            (0.1875, "0.188"),
            // Exact binary values: 2.0005 is a hair above the tie, 1.0005 a hair below.
            (2.0005, "2.001"),
            (1.0005, "1"),
            (0.0004, "0"),
            (0.0006, "0.001"),
            (999.9996, "1,000"),
            (1e20, "100,000,000,000,000,000,000"),
            (-1.5, "-1.5"),
            (-0.0001, "-0"),
            (-0.0, "-0"),
            (5e-324, "0"),
            (0.1 + 0.2, "0.3"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "∞"),
            (f64::NEG_INFINITY, "-∞"),
        ] {
            assert_eq!(format_scalar(value), expected, "formatting {value:e}");
        }
    }

    #[test]
    fn attributes_format_by_type() {
        let text = Attribute { text: Some(Text { value: "rack-1".into() }), ..attribute("rack", Type::Text) };
        let scalar = Attribute { scalar: Some(Scalar { value: 1234.5678 }), ..attribute("n", Type::Scalar) };
        let ranges = Attribute {
            ranges: Some(Ranges { range: vec![Range { begin: 300, end: 400 }, Range { begin: 100, end: 200 }] }),
            ..attribute("r", Type::Ranges)
        };
        let set = Attribute { set: Some(Set { item: vec!["b".into(), "a".into(), "C".into()] }), ..attribute("s", Type::Set) };
        let unknown = Attribute { r#type: 42, ..attribute("u", Type::Text) };
        assert_eq!(format_attribute(&text).as_deref(), Some("rack-1"));
        assert_eq!(format_attribute(&scalar).as_deref(), Some("1,234.568"));
        assert_eq!(format_attribute(&ranges).as_deref(), Some("[100-200,300-400]"));
        assert_eq!(format_attribute(&set).as_deref(), Some("{C,a,b}"));
        assert_eq!(format_attribute(&unknown), None);
        // A declared type without its value formats as the empty value of that type.
        assert_eq!(format_attribute(&attribute("e", Type::Ranges)).as_deref(), Some("[]"));
        assert_eq!(format_attribute(&attribute("e", Type::Set)).as_deref(), Some("{}"));
        assert_eq!(format_attribute(&attribute("e", Type::Text)).as_deref(), Some(""));
    }

    #[test]
    fn placement_reads_hostname_attributes_and_fault_domain() {
        let offer = Offer {
            hostname: "agent-1".into(),
            attributes: vec![
                Attribute { text: Some(Text { value: "r1".into() }), ..attribute("rack", Type::Text) },
                Attribute { r#type: 99, ..attribute("odd", Type::Text) },
            ],
            domain: Some(DomainInfo {
                fault_domain: Some(FaultDomain { region: RegionInfo { name: "eu".into() }, zone: ZoneInfo { name: "eu-1a".into() } }),
            }),
            ..Default::default()
        };
        let placement = placement_of(&offer);
        assert_eq!(placement.hostname, "agent-1");
        assert_eq!(placement.attributes, vec![("rack".to_string(), "r1".to_string())]);
        assert_eq!(placement.region.as_deref(), Some("eu"));
        assert_eq!(placement.zone.as_deref(), Some("eu-1a"));
        assert_eq!(placement_of(&Offer::default()).region, None);
    }

    #[test]
    fn scalar_literals_follow_mesos_syntax() {
        assert_eq!(parse_scalar_literal("0.8"), Some(0.8));
        assert_eq!(parse_scalar_literal("12"), Some(12.0));
        for bad in ["", ".5", "5.", "-1", "1e3", "inf", "NaN", "1.2.3", "0x10"] {
            assert_eq!(parse_scalar_literal(bad), None, "{bad}");
        }
    }
}
