//! `scale`: rewrites one role's `count` in the cluster file's text, keeping its comments and
//! layout, so that the file stays the one source of truth.

use toml_edit::{DocumentMut, value};

use crate::role::Role;

/// Why the file could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    /// The text is not TOML.
    #[error("cluster file {file}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// The role's table is missing.
    #[error("cluster file {file}: no [{section}] table; add one with a count")]
    NoSection {
        /// The file.
        file: String,
        /// The table.
        section: &'static str,
    },
}

/// The file's text with `[<role's section>] count = n`.
pub fn set_count(file: &str, text: &str, role: Role, n: u32) -> Result<String, ScaleError> {
    let mut doc: DocumentMut =
        text.parse().map_err(|e: toml_edit::TomlError| ScaleError::Syntax { file: file.to_string(), message: e.to_string() })?;
    let section = role.section();
    let table =
        doc.get_mut(section).and_then(|t| t.as_table_like_mut()).ok_or(ScaleError::NoSection { file: file.to_string(), section })?;
    match table.get_mut("count") {
        Some(item) if item.is_value() => {
            let decor = item.as_value().map(|v| v.decor().clone());
            *item = value(i64::from(n));
            if let (Some(decor), Some(v)) = (decor, item.as_value_mut()) {
                *v.decor_mut() = decor;
            }
        }
        _ => {
            table.insert("count", value(i64::from(n)));
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_the_count_and_keeps_comments() {
        let text = "name = \"demo\"\n\n[agents]\n# how many\ncount = 5 # agents\nattributes = { rack = \"r1\" }\n\n[masters]\ncount = 3\n";
        let out = set_count("c.toml", text, Role::Agent, 8).unwrap();
        assert_eq!(out, text.replace("count = 5 #", "count = 8 #"));
    }

    #[test]
    fn adds_a_missing_count_and_refuses_a_missing_table() {
        let out = set_count("c.toml", "[agents]\nmin = 1\n", Role::Agent, 2).unwrap();
        assert!(out.contains("count = 2"), "{out}");
        assert!(matches!(set_count("c.toml", "name = \"x\"\n", Role::Agent, 2), Err(ScaleError::NoSection { section: "agents", .. })));
        assert!(matches!(set_count("c.toml", "[agents\n", Role::Agent, 2), Err(ScaleError::Syntax { .. })));
    }
}
