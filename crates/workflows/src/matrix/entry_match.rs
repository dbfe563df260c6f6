//! How an `include` or `exclude` entry matches a matrix leg, exactly as GitHub's
//! `MatrixBuilder` does it.
//!
//! An entry is not compared as a whole. Every leaf (null, boolean, number or string) of
//! its value becomes one condition `matrix[key][..][..] == leaf`, evaluated with the
//! expression language's loose `==`; the entry matches when all conditions hold. So:
//! - nested objects and arrays match partially (`{cfg: {a: 1}}` matches `{a: 1, b: 2}`,
//!   `[1]` matches `[1, 2]`), and an empty object or array adds no condition;
//! - strings compare case-insensitively, and values of different kinds are coerced to
//!   numbers (`'14' == 14`, `true == 1`, `null == 0`);
//! - a path that does not exist in the leg reads as `null`.
//!
//! The coercion mirrors the expression evaluator's `==` (see the x-lang suite); it lives
//! here so matrix expansion does not depend on the evaluator.

use crate::expression::{Object, Value, loose_equals};

/// One step of a condition's path below the matrix key.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// `matrix[key]<steps> == leaf`.
#[derive(Debug, Clone)]
struct Condition {
    key: String,
    steps: Vec<Step>,
    leaf: Value,
}

/// The conditions of one entry (or of the part of an `include` entry that names matrix
/// vectors).
#[derive(Debug, Clone, Default)]
pub(super) struct EntryFilter {
    conditions: Vec<Condition>,
}

impl EntryFilter {
    pub(super) fn add(&mut self, key: &str, value: &Value) {
        let mut steps = Vec::new();
        self.add_leaves(key, &mut steps, value);
    }

    fn add_leaves(&mut self, key: &str, steps: &mut Vec<Step>, value: &Value) {
        match value {
            Value::Object(object) => {
                for (k, v) in object.iter() {
                    steps.push(Step::Key(k.to_string()));
                    self.add_leaves(key, steps, v);
                    steps.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    steps.push(Step::Index(i));
                    self.add_leaves(key, steps, v);
                    steps.pop();
                }
            }
            leaf => self.conditions.push(Condition {
                key: key.to_string(),
                steps: steps.clone(),
                leaf: leaf.clone(),
            }),
        }
    }

    /// True when every condition holds for `leg` (so always for an entry whose values
    /// are all empty objects or arrays).
    pub(super) fn matches(&self, leg: &Object) -> bool {
        self.conditions.iter().all(|c| {
            let found = c
                .steps
                .iter()
                .try_fold(leg.get(&c.key), |current, step| {
                    Some(match (current?, step) {
                        (Value::Object(o), Step::Key(k)) => o.get(k),
                        (Value::Array(a), Step::Index(i)) => a.get(*i),
                        _ => None,
                    })
                })
                .flatten();
            loose_equals(found.unwrap_or(&Value::Null), &c.leaf)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn json(text: &str) -> Value {
        Value::from_json(&serde_json::from_str(text).unwrap())
    }

    fn filter_of(entry: &str) -> EntryFilter {
        let entry = json(entry);
        let mut filter = EntryFilter::default();
        for (k, v) in entry.as_object().unwrap().iter() {
            filter.add(k, v);
        }
        filter
    }

    fn leg(text: &str) -> Object {
        json(text).as_object().unwrap().clone()
    }

    #[test]
    fn loose_equality_coerces_and_ignores_case() {
        assert!(loose_equals(&Value::from("Ubuntu"), &Value::from("ubuntu")));
        assert!(loose_equals(&Value::from("14"), &Value::from(14.0)));
        assert!(loose_equals(&Value::Bool(true), &Value::from(1.0)));
        assert!(loose_equals(&Value::Null, &Value::from(0.0)));
        assert!(!loose_equals(&Value::Null, &Value::from("null")));
        assert!(!loose_equals(
            &Value::from(f64::NAN),
            &Value::from(f64::NAN)
        ));
        assert!(!loose_equals(&json("[]"), &Value::from(0.0)));
    }

    #[test]
    fn nested_values_match_partially_leaf_by_leaf() {
        let l = leg(r#"{"cfg":{"node":12,"npm":6},"list":[1,2,3]}"#);
        assert!(filter_of(r#"{"cfg":{"node":12}}"#).matches(&l));
        assert!(filter_of(r#"{"cfg":{"NODE":"12"}}"#).matches(&l));
        assert!(!filter_of(r#"{"cfg":{"node":14}}"#).matches(&l));
        assert!(filter_of(r#"{"list":[1,2]}"#).matches(&l));
        assert!(!filter_of(r#"{"list":[2]}"#).matches(&l));
        assert!(filter_of(r#"{"cfg":{}}"#).matches(&l));
        // A missing path reads as null.
        assert!(filter_of(r#"{"cfg":{"yarn":null}}"#).matches(&l));
        assert!(!filter_of(r#"{"cfg":{"yarn":1}}"#).matches(&l));
        // A scalar compared with an object is never equal.
        assert!(!filter_of(r#"{"cfg":"x"}"#).matches(&l));
    }
}
