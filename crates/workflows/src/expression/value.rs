//! Expression data: the six kinds GitHub's evaluator knows, with its object rules
//! (case-insensitive lookup, insertion order and original key spelling kept) and its
//! reference identity for arrays and objects.

use std::sync::Arc;

use indexmap::IndexMap;

/// The kind of a [`Value`], named as GitHub's test suites name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Null,
    Boolean,
    Number,
    String,
    Array,
    Object,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Null => "Null",
            Kind::Boolean => "Boolean",
            Kind::Number => "Number",
            Kind::String => "String",
            Kind::Array => "Array",
            Kind::Object => "Object",
        })
    }
}

/// One expression value. Arrays and objects are shared (`Arc`): two values are the
/// same instance exactly when their pointers are equal, which is what `==` compares.
#[derive(Debug, Clone, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Arc<Vec<Value>>),
    Object(Arc<Object>),
}

impl Value {
    pub fn kind(&self) -> Kind {
        match self {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Boolean,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    pub fn array(items: Vec<Value>) -> Value {
        Value::Array(Arc::new(items))
    }

    pub fn object(object: Object) -> Value {
        Value::Object(Arc::new(object))
    }

    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// GitHub truthiness: `false`, `0`, `-0`, `NaN`, `''` and `null` are falsy;
    /// every array and object, even empty, is truthy.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => !(*n == 0.0 || n.is_nan()),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) => true,
        }
    }

    /// Property lookup as `a.b` does it: case-insensitive on objects, `None` otherwise.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object().and_then(|o| o.get(key))
    }

    /// Converts JSON data; object key order and spelling are kept.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => {
                Value::array(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(map) => {
                let mut object = Object::with_capacity(map.len());
                for (k, v) in map {
                    object.insert(k.clone(), Value::from_json(v));
                }
                Value::object(object)
            }
        }
    }

    /// Converts to JSON data. Non-finite numbers become the strings `"NaN"`,
    /// `"Infinity"` and `"-Infinity"`; `-0` becomes `0`; integral numbers that fit
    /// an `i64` are written as integers.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Object(object) => serde_json::Value::Object(
                object
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A number as JSON: integral values as integers, `-0` as `0`, non-finite values as
/// the strings GitHub's tools print.
pub fn number_to_json(n: f64) -> serde_json::Value {
    if n.is_nan() {
        return serde_json::Value::String("NaN".into());
    }
    if n.is_infinite() {
        let s = if n > 0.0 { "Infinity" } else { "-Infinity" };
        return serde_json::Value::String(s.into());
    }
    if n == 0.0 {
        return serde_json::Value::from(0);
    }
    if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
        return serde_json::Value::from(n as i64);
    }
    serde_json::Number::from_f64(n)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

/// A dictionary with GitHub's rules: lookups ignore case (ordinal upper-case, as the
/// runner does), iteration follows insertion order and yields the key as first spelled.
/// Inserting a key that exists under another case replaces the value and keeps the
/// first spelling.
#[derive(Debug, Clone, Default)]
pub struct Object {
    entries: IndexMap<String, (String, Value)>,
}

/// The lookup key of an object entry: keys that differ only in case fold together.
pub fn fold_key(key: &str) -> String {
    if key.is_ascii() {
        key.to_ascii_uppercase()
    } else {
        key.chars()
            .map(|c| {
                let mut upper = c.to_uppercase();
                match (upper.next(), upper.next()) {
                    (Some(u), None) if c != 'ı' => u,
                    _ => c,
                }
            })
            .collect()
    }
}

impl Object {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Object {
            entries: IndexMap::with_capacity(n),
        }
    }

    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.entries.entry(fold_key(&key)) {
            indexmap::map::Entry::Occupied(mut e) => e.get_mut().1 = value,
            indexmap::map::Entry::Vacant(e) => {
                e.insert((key, value));
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(&fold_key(key)).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.contains_key(&fold_key(key))
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.entries.shift_remove(&fold_key(key)).map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in insertion order, with their original key spelling.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.values().map(|(k, v)| (k.as_str(), v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.values().map(|(k, _)| k.as_str())
    }

    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.entries.values().map(|(_, v)| v)
    }
}

impl FromIterator<(String, Value)> for Object {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut object = Object::new();
        for (k, v) in iter {
            object.insert(k, v);
        }
        object
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn object_lookup_ignores_case_and_keeps_first_spelling() {
        let mut o = Object::new();
        o.insert("Foo", Value::from(1.0));
        o.insert("bar", Value::from(2.0));
        o.insert("FOO", Value::from(3.0));
        assert_eq!(o.len(), 2);
        assert!(matches!(o.get("foo"), Some(Value::Number(n)) if *n == 3.0));
        assert_eq!(o.keys().collect::<Vec<_>>(), vec!["Foo", "bar"]);
    }

    #[test]
    fn dotless_i_does_not_fold_to_ascii_i() {
        assert_ne!(fold_key("ı"), fold_key("I"));
        assert_eq!(fold_key("σ"), fold_key("Σ"));
    }

    #[test]
    fn truthiness_follows_github() {
        assert!(!Value::Number(f64::NAN).is_truthy());
        assert!(!Value::Number(-0.0).is_truthy());
        assert!(Value::array(vec![]).is_truthy());
        assert!(!Value::string("").is_truthy());
    }

    #[test]
    fn json_round_trip_keeps_order() {
        let json: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"A":[true,null,"x"],"c":-0.0}"#).unwrap();
        let v = Value::from_json(&json);
        assert_eq!(
            v.to_json().to_string(),
            r#"{"b":1,"A":[true,null,"x"],"c":0}"#
        );
    }
}
