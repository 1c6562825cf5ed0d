//! Marathon placement constraints: `[field, OPERATOR, value?]`.

use std::fmt;

use regex::Regex;

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
    /// The field equals the value exactly.
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
        let c = Constraint::parse(&parts(&["hostname", "LIKE", "agent-[0-9]"])).unwrap();
        let re = c.regex.unwrap();
        assert!(re.is_match("agent-1"));
        assert!(!re.is_match("xagent-1"));
        assert!(!re.is_match("agent-12"));
    }
}
