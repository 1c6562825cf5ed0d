//! How the JVM prints a `double` (`Double.toString`), which Marathon's messages and task
//! environment variables show: `1.0`, `0.5`, `128.0`, `1.0E-4`, `1.0E7`.

/// `d` as Java's `Double.toString` writes it (shortest round-trip digits).
pub(crate) fn double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".to_string();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let magnitude = d.abs();
    if (1e-3..1e7).contains(&magnitude) {
        // Rust's `Debug` gives the shortest digits and always a fraction part in this range.
        return format!("{d:?}");
    }
    let sci = format!("{d:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
    format!("{mantissa}E{exponent}")
}

#[cfg(test)]
mod tests {
    use super::double;

    #[test]
    fn matches_java() {
        for (d, s) in [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (128.0, "128.0"),
            (0.001, "0.001"),
            (1.15, "1.15"),
            (1234567.0, "1234567.0"),
            (1e7, "1.0E7"),
            (1.5e-4, "1.5E-4"),
            (-2.0, "-2.0"),
            (0.0, "0.0"),
        ] {
            assert_eq!(double(d), s);
        }
    }
}
