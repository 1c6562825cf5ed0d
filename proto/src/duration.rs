//! Durations as Mesos writes them in flags and environment variables (stout's `Duration`
//! parser): a decimal number followed by one of `ns`, `us`, `ms`, `secs`, `mins`, `hrs`, `days`,
//! `weeks`, e.g. `15mins` or `2.5secs`.

use std::time::Duration;

/// Parses a Mesos duration; `None` if it is not one (no unit, an unknown unit, a negative or
/// non-finite number).
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let nanos_per_unit = match unit {
        "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "secs" => 1e9,
        "mins" => 60e9,
        "hrs" => 3_600e9,
        "days" => 86_400e9,
        "weeks" => 604_800e9,
        _ => return None,
    };
    let nanos = value * nanos_per_unit;
    (nanos.is_finite() && nanos >= 0.0 && nanos < u64::MAX as f64).then(|| Duration::from_nanos(nanos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mesos_unit() {
        assert_eq!(parse("15mins"), Some(Duration::from_secs(900)));
        assert_eq!(parse("2.5secs"), Some(Duration::from_millis(2500)));
        assert_eq!(parse("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse("7us"), Some(Duration::from_micros(7)));
        assert_eq!(parse("3ns"), Some(Duration::from_nanos(3)));
        assert_eq!(parse("1hrs"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("2days"), Some(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse("1weeks"), Some(Duration::from_secs(604_800)));
    }

    #[test]
    fn not_durations() {
        for bad in ["15", "mins", "15 minutes", "-1secs", "1.2.3secs", "", "15m", "1e3secs"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
