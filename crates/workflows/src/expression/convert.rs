//! Conversions between kinds as GitHub's evaluator does them: to number, to string, to
//! JSON text.

use super::number::{format_number, parse_number};
use super::value::Value;

/// A value as a number: null → 0, booleans → 0/1, strings by JavaScript's `Number(s)`,
/// arrays and objects → NaN.
pub fn to_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => *n,
        Value::String(s) => parse_number(s),
        Value::Array(_) | Value::Object(_) => f64::NAN,
    }
}

/// GitHub's string conversion: null → `""`, booleans → `true`/`false`, numbers in .NET
/// `G15` form, arrays → `Array`, objects → `Object`.
pub fn to_display_string(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format_number(*n),
        Value::String(s) => s.clone(),
        Value::Array(_) => "Array".into(),
        Value::Object(_) => "Object".into(),
    }
}

/// Whether a value is one of the primitive kinds (null, boolean, number, string).
pub fn is_primitive(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// `toJSON`'s output: two-space indentation, `\n` line breaks, `[]`/`{}` for empty
/// containers, object keys in insertion order with their original spelling.
pub fn to_json_pretty(v: &Value) -> String {
    serde_json::to_string_pretty(&v.to_json()).unwrap_or_else(|_| "null".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expression::value::Object;

    #[test]
    fn display_strings() {
        assert_eq!(to_display_string(&Value::Null), "");
        assert_eq!(to_display_string(&Value::from(-0.0)), "0");
        assert_eq!(to_display_string(&Value::array(vec![])), "Array");
        assert_eq!(to_display_string(&Value::object(Object::new())), "Object");
    }

    #[test]
    fn pretty_json_keeps_order() {
        let mut o = Object::new();
        o.insert("b", Value::from(1.0));
        o.insert("A", Value::array(vec![]));
        o.insert("c", Value::object(Object::new()));
        assert_eq!(
            to_json_pretty(&Value::object(o)),
            "{\n  \"b\": 1,\n  \"A\": [],\n  \"c\": {}\n}"
        );
    }
}
