//! A guestbook entry and the rules a new one must follow.

use serde::{Deserialize, Serialize};

/// Longest accepted name, in characters.
pub const MAX_NAME: usize = 64;
/// Longest accepted message, in characters.
pub const MAX_MESSAGE: usize = 1000;

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Database id (grows with every entry).
    pub id: u64,
    /// Who wrote it.
    pub name: String,
    /// What they wrote.
    pub message: String,
    /// When, as `YYYY-MM-DD HH:MM:SS` UTC.
    pub created: String,
}

/// An entry as submitted, before it is stored.
#[derive(Debug, Clone, Deserialize)]
pub struct NewEntry {
    /// Who writes it.
    pub name: String,
    /// What they write.
    pub message: String,
}

impl NewEntry {
    /// The entry with surrounding whitespace trimmed, or what is wrong with it.
    pub fn validated(self) -> Result<NewEntry, String> {
        let name = self.name.trim().to_string();
        let message = self.message.trim().to_string();
        if name.is_empty() || message.is_empty() {
            return Err("both a name and a message are needed".into());
        }
        if name.chars().count() > MAX_NAME {
            return Err(format!("the name is longer than {MAX_NAME} characters"));
        }
        if message.chars().count() > MAX_MESSAGE {
            return Err(format!("the message is longer than {MAX_MESSAGE} characters"));
        }
        Ok(NewEntry { name, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str, message: &str) -> NewEntry {
        NewEntry { name: name.into(), message: message.into() }
    }

    #[test]
    fn trims_and_accepts_a_normal_entry() {
        let e = new("  ada ", " hello\n").validated().unwrap();
        assert_eq!((e.name.as_str(), e.message.as_str()), ("ada", "hello"));
    }

    #[test]
    fn refuses_blank_and_oversized_fields() {
        assert!(new(" ", "x").validated().is_err());
        assert!(new("x", "").validated().is_err());
        assert!(new(&"n".repeat(MAX_NAME + 1), "x").validated().unwrap_err().contains("name"));
        assert!(new("x", &"é".repeat(MAX_MESSAGE + 1)).validated().unwrap_err().contains("message"));
        assert!(new(&"é".repeat(MAX_NAME), "x").validated().is_ok(), "limits count characters, not bytes");
    }
}
