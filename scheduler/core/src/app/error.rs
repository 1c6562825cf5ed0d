//! Marathon's three classes of refused app bodies and the JSON it answers with.
//!
//! | class | when | status | body |
//! |---|---|---|---|
//! | [`AppError::Syntax`] | not JSON at all, or an empty body | 400 | `{"message":"Invalid JSON","details":"<parser text>"}` |
//! | [`AppError::Malformed`] | JSON of the wrong shape: wrong types, missing `id`, numbers out of the RAML ranges | 422 | `{"message":"Invalid JSON","details":[{"path","errors"}]}` |
//! | [`AppError::Invalid`] | a well-formed app that breaks a rule | 422 | `{"message":"Object is not valid","details":[{"path","errors"}]}` |
//!
//! Marathon (1.5–1.10, `MarathonExceptionMapper`) answers shape errors (play-json's
//! `JsResultException`) with **422**, not 400; its own test `MarathonExceptionMapperTest` pins
//! `{"id":123}` to 422 with `error.expected.jsstring` at `/id`. Only parser errors get 400.
//! This module does not know about HTTP beyond the status number.

use serde::{Deserialize, Serialize};

/// One JSON path and what is wrong there, as Marathon lists it in `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// A JSON-pointer-like path: `/`, `/instances`, `/constraints(0)`, `/container/docker/image`.
    pub path: String,
    /// The messages for this path, in the order they were found.
    pub errors: Vec<String>,
}

impl Violation {
    /// A violation with a single message.
    pub fn new(path: impl Into<String>, error: impl Into<String>) -> Self {
        Self { path: path.into(), errors: vec![error.into()] }
    }
}

/// Why an app (or group, or patch) body was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppError {
    /// The body is not JSON (or is empty): HTTP 400.
    #[error("{message}: {detail}")]
    Syntax {
        /// `Invalid JSON`, or `Please specify data in JSON format` for an empty body.
        message: String,
        /// The parser's description of the problem.
        detail: String,
    },
    /// The body is JSON but not of the app's shape (wrong types, missing or out-of-range
    /// values, with play-json's error keys such as `error.expected.jsnumber`): HTTP 422.
    #[error("{message}: {}", describe(details))]
    Malformed {
        /// Always `Invalid JSON`, as Marathon writes it.
        message: String,
        /// Every offending path.
        details: Vec<Violation>,
    },
    /// The app is well formed but breaks validation rules: HTTP 422, `Object is not valid`.
    #[error("Object is not valid: {}", describe(.0))]
    Invalid(Vec<Violation>),
}

/// `path: error; error, path: error` for log lines and `Display`.
fn describe(details: &[Violation]) -> String {
    details.iter().map(|v| format!("{}: {}", v.path, v.errors.join("; "))).collect::<Vec<_>>().join(", ")
}

impl AppError {
    /// A shape error with Marathon's message.
    pub(crate) fn malformed(details: Vec<Violation>) -> Self {
        AppError::Malformed { message: "Invalid JSON".to_string(), details }
    }

    /// The HTTP status Marathon answers with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Syntax { .. } => 400,
            AppError::Malformed { .. } | AppError::Invalid(_) => 422,
        }
    }

    /// The response body, exactly as Marathon shapes it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            AppError::Syntax { message, detail } => {
                serde_json::json!({ "message": message, "details": detail })
            }
            AppError::Malformed { message, details } => {
                serde_json::json!({ "message": message, "details": details })
            }
            AppError::Invalid(details) => {
                serde_json::json!({ "message": "Object is not valid", "details": details })
            }
        }
    }

    /// The violations listed in the body (empty for syntax errors).
    pub fn details(&self) -> &[Violation] {
        match self {
            AppError::Syntax { .. } => &[],
            AppError::Malformed { details, .. } | AppError::Invalid(details) => details,
        }
    }
}

/// Moves every path below `prefix`: `/` becomes `prefix`, `/cmd` becomes `prefix/cmd`.
pub(crate) fn prefixed(prefix: &str, details: Vec<Violation>) -> Vec<Violation> {
    if prefix.is_empty() {
        return details;
    }
    details
        .into_iter()
        .map(|v| {
            let path = if v.path == "/" { prefix.to_string() } else { format!("{prefix}{}", v.path) };
            Violation { path, errors: v.errors }
        })
        .collect()
}

/// Collects violations, merging messages for the same path (Marathon groups by path) while
/// keeping the order in which paths were first seen.
#[derive(Debug, Default)]
pub(crate) struct Violations {
    list: Vec<Violation>,
    /// Position of each path in `list`, so that huge bodies with many errors stay linear.
    index: std::collections::HashMap<String, usize>,
}

impl Violations {
    /// Records `error` at `path`; an empty path means the root `/`.
    pub(crate) fn add(&mut self, path: &str, error: impl Into<String>) {
        let path = if path.is_empty() { "/" } else { path };
        let error = error.into();
        match self.index.get(path).and_then(|i| self.list.get_mut(*i)) {
            Some(v) => {
                if !v.errors.contains(&error) {
                    v.errors.push(error);
                }
            }
            None => {
                self.index.insert(path.to_string(), self.list.len());
                self.list.push(Violation::new(path, error));
            }
        }
    }

    /// Records every violation of `other`.
    pub(crate) fn extend(&mut self, other: Vec<Violation>) {
        for v in other {
            for e in v.errors {
                self.add(&v.path, e);
            }
        }
    }

    /// Whether nothing was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `Ok(())` when empty, else the list.
    pub(crate) fn into_result(self) -> Result<(), Vec<Violation>> {
        if self.list.is_empty() { Ok(()) } else { Err(self.list) }
    }

    /// The list.
    pub(crate) fn into_vec(self) -> Vec<Violation> {
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_statuses_follow_marathon() {
        let syntax = AppError::Syntax { message: "Invalid JSON".into(), detail: "EOF".into() };
        assert_eq!(syntax.status(), 400);
        assert_eq!(syntax.to_json(), serde_json::json!({"message": "Invalid JSON", "details": "EOF"}));

        let shape = AppError::malformed(vec![Violation::new("/instances", "error.expected.jsnumber")]);
        assert_eq!(shape.status(), 422);
        assert_eq!(
            shape.to_json(),
            serde_json::json!({"message": "Invalid JSON",
                "details": [{"path": "/instances", "errors": ["error.expected.jsnumber"]}]})
        );

        let invalid = AppError::Invalid(vec![
            Violation::new("/", "must not be root"),
            Violation::new("/upgradeStrategy/minimumHealthCapacity", "got 1.5, expected between 0.0 and 1.0"),
        ]);
        assert_eq!(invalid.status(), 422);
        let body = invalid.to_json();
        assert_eq!(body["message"], "Object is not valid");
        assert_eq!(body["details"].as_array().map(Vec::len), Some(2));
        assert!(invalid.to_string().contains("must not be root"));
    }

    #[test]
    fn violations_merge_by_path_and_prefix() {
        let mut v = Violations::default();
        v.add("", "a");
        v.add("/x", "b");
        v.add("/", "c");
        v.add("/", "c");
        let list = v.into_vec();
        assert_eq!(list, vec![Violation { path: "/".into(), errors: vec!["a".into(), "c".into()] }, Violation::new("/x", "b")]);
        let moved = prefixed("/apps(1)", list);
        assert_eq!(moved[0].path, "/apps(1)");
        assert_eq!(moved[1].path, "/apps(1)/x");
    }
}
