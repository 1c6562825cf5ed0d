//! API authentication: HTTP basic credentials and/or bearer tokens, checked by the front door on
//! every request but `/ping`. Secrets are compared in constant time and never logged.

use base64::Engine as _;

/// The accepted credentials.
#[derive(Clone, Default)]
pub struct Auth {
    basic: Vec<String>,
    tokens: Vec<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Auth {{ {} credentials, {} tokens }}", self.basic.len(), self.tokens.len())
    }
}

/// Equal in constant time for equal lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// Accepts `user:password` pairs and bearer tokens.
    pub fn new(basic: Vec<String>, tokens: Vec<String>) -> Self {
        Self {
            basic: basic.into_iter().filter(|c| c.contains(':')).collect(),
            tokens: tokens.into_iter().filter(|t| !t.is_empty()).collect(),
        }
    }

    /// Whether any credential is configured.
    pub fn enabled(&self) -> bool {
        !self.basic.is_empty() || !self.tokens.is_empty()
    }

    /// Whether an `Authorization` header value is accepted.
    pub fn accepts(&self, header: Option<&str>) -> bool {
        if !self.enabled() {
            return true;
        }
        let Some(h) = header else { return false };
        if let Some(b64) = h.strip_prefix("Basic ").or_else(|| h.strip_prefix("basic ")) {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else { return false };
            return self.basic.iter().any(|c| same(c.as_bytes(), &decoded));
        }
        if let Some(token) = h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")) {
            return self.tokens.iter().any(|t| same(t.as_bytes(), token.trim().as_bytes()));
        }
        false
    }
}

/// Reads secrets given inline, from a file (one per line) and from an environment variable.
pub fn gather(inline: &[String], file: Option<&std::path::Path>) -> anyhow::Result<Vec<String>> {
    use anyhow::Context as _;
    let mut out: Vec<String> = inline.to_vec();
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read the credentials file {}", f.display()))?;
        out.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer() {
        let a = Auth::new(vec!["ops:s3cret".into()], vec!["tok-1".into()]);
        let basic = |c: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(c));
        assert!(a.accepts(Some(&basic("ops:s3cret"))));
        assert!(!a.accepts(Some(&basic("ops:wrong"))));
        assert!(a.accepts(Some("Bearer tok-1")));
        assert!(!a.accepts(Some("Bearer tok-2")));
        assert!(!a.accepts(Some("Basic %%%")));
        assert!(!a.accepts(None));
        assert!(Auth::default().accepts(None));
        assert!(!format!("{a:?}").contains("s3cret"));
    }
}
