//! Conversions between kinds as GitHub's evaluator does them: to number, to string, to
//! JSON text.

use std::io;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::number::{format_number, parse_number};
use super::value::{Value, number_to_json};

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
    to_json_pretty_within(v, usize::MAX).unwrap_or_else(|| "null".into())
}

/// [`to_json_pretty`], or `None` as soon as the text passes `max_len` bytes: nothing
/// larger is built, even for data that shares one array many times over.
pub fn to_json_pretty_within(v: &Value, max_len: usize) -> Option<String> {
    let mut out = BoundedText {
        text: Vec::new(),
        max_len,
    };
    serde_json::to_writer_pretty(&mut out, &AsJson(v)).ok()?;
    String::from_utf8(out.text).ok()
}

/// A value serialized as [`Value::to_json`] converts it, without building that copy.
struct AsJson<'a>(&'a Value);

impl Serialize for AsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => number_to_json(*n).serialize(s),
            Value::String(text) => s.serialize_str(text),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items.iter() {
                    seq.serialize_element(&AsJson(item))?;
                }
                seq.end()
            }
            Value::Object(object) => {
                let mut map = s.serialize_map(Some(object.len()))?;
                for (key, value) in object.iter() {
                    map.serialize_entry(key, &AsJson(value))?;
                }
                map.end()
            }
        }
    }
}

/// Text that refuses to grow past `max_len` bytes.
struct BoundedText {
    text: Vec<u8>,
    max_len: usize,
}

impl io::Write for BoundedText {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.text.len().saturating_add(buf.len()) > self.max_len {
            return Err(io::Error::other("the text passed its bound"));
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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

    #[test]
    fn pretty_json_is_the_same_as_through_json_data_and_stops_at_its_bound() {
        let json: serde_json::Value =
            serde_json::from_str(r#"{"a":[1,-0.0,1.5,"x\u00e9",null,true,{},[]],"B":{"c":[[]]}}"#)
                .unwrap();
        let v = Value::from_json(&json);
        let full = serde_json::to_string_pretty(&v.to_json()).unwrap();
        assert_eq!(to_json_pretty(&v), full);
        assert_eq!(to_json_pretty(&Value::from(f64::NAN)), "\"NaN\"");
        assert_eq!(
            to_json_pretty_within(&v, full.len()).as_deref(),
            Some(&*full)
        );
        assert_eq!(to_json_pretty_within(&v, full.len() - 1), None);
    }
}
