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

use crate::expression::value::fold_key;
use crate::expression::{Object, Value};

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

/// The expression language's `==`: same kinds compare directly (strings ignoring case,
/// arrays and objects by identity), other kinds compare as numbers.
fn loose_equals(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => a == b,
        (Value::String(a), Value::String(b)) => fold_key(a) == fold_key(b),
        (Value::Array(a), Value::Array(b)) => std::sync::Arc::ptr_eq(a, b),
        (Value::Object(a), Value::Object(b)) => std::sync::Arc::ptr_eq(a, b),
        _ => to_number(left) == to_number(right),
    }
}

/// Number coercion: `null` is 0, booleans 1 and 0, strings as [`parse_number`], arrays
/// and objects NaN.
fn to_number(value: &Value) -> f64 {
    match value {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => *n,
        Value::String(s) => parse_number(s),
        Value::Array(_) | Value::Object(_) => f64::NAN,
    }
}

/// GitHub's string-to-number rule (JavaScript's `Number()` in spirit): surrounding
/// whitespace ignored, empty is 0, decimal with optional sign, point and exponent,
/// `0x` hexadecimal and `0o` octal as 32-bit integers, `Infinity` and `-Infinity`;
/// anything else is NaN.
pub(super) fn parse_number(text: &str) -> f64 {
    let s = text.trim();
    if s.is_empty() {
        return 0.0;
    }
    if is_decimal(s) {
        return s.parse().unwrap_or(f64::NAN);
    }
    if let Some(hex) = s.strip_prefix("0x").filter(|h| !h.is_empty()) {
        return u32::from_str_radix(hex, 16).map_or(f64::NAN, |n| f64::from(n as i32));
    }
    if let Some(octal) = s.strip_prefix("0o").filter(|o| !o.is_empty()) {
        return u32::from_str_radix(octal, 8).map_or(f64::NAN, |n| f64::from(n as i32));
    }
    match s {
        "Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        _ => f64::NAN,
    }
}

/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`
fn is_decimal(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    let digits_from = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let mut mantissa = digits_from(&mut i);
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        mantissa += digits_from(&mut i);
    }
    if mantissa == 0 {
        return false;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits_from(&mut i) == 0 {
            return false;
        }
    }
    i == bytes.len()
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
    fn numbers_parse_like_github() {
        assert_eq!(parse_number(""), 0.0);
        assert_eq!(parse_number("  12  "), 12.0);
        assert_eq!(parse_number("-1.5e2"), -150.0);
        assert_eq!(parse_number(".5"), 0.5);
        assert_eq!(parse_number("5."), 5.0);
        assert_eq!(parse_number("+3"), 3.0);
        assert_eq!(parse_number("0x1F"), 31.0);
        assert_eq!(parse_number("0xFFFFFFFF"), -1.0);
        assert_eq!(parse_number("0o17"), 15.0);
        assert_eq!(parse_number("Infinity"), f64::INFINITY);
        assert_eq!(parse_number("-Infinity"), f64::NEG_INFINITY);
        for nan in [
            "abc", "inf", "nan", "1e", "e5", ".", "-", "0x", "0x1G", "1_000", "1,5",
        ] {
            assert!(parse_number(nan).is_nan(), "{nan:?} should be NaN");
        }
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
