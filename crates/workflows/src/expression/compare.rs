//! Loose equality and ordering (`==`, `!=`, `<`, `<=`, `>`, `>=`): JavaScript's abstract
//! comparison, except that arrays and objects are never converted (they compare by
//! identity) and strings compare ignoring case with GitHub's `toUpperSpecial` rule.

use std::cmp::Ordering;
use std::sync::Arc;

use super::convert::to_number;
use super::value::Value;

/// Upper-cases each character to its single-character upper case, leaving dotless `ı`
/// and characters whose upper case is several characters (`ß`) as they are.
pub fn to_upper_special(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    s.chars()
        .map(|c| {
            if c == 'ı' {
                return c;
            }
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// Ordinal comparison of the upper-cased strings, by UTF-16 code unit as .NET and
/// JavaScript compare.
fn compare_strings(a: &str, b: &str) -> Ordering {
    let a = to_upper_special(a);
    let b = to_upper_special(b);
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Two values after the kind coercion: either both numbers, both strings, both booleans,
/// both null, or something that never compares (different kinds, arrays, objects).
enum Coerced<'a> {
    Null,
    Numbers(f64, f64),
    Strings(&'a str, &'a str),
    Bools(bool, bool),
    SameInstance(bool),
    Incomparable,
}

fn coerce<'a>(left: &'a Value, right: &'a Value) -> Coerced<'a> {
    match (left, right) {
        (Value::Null, Value::Null) => Coerced::Null,
        (Value::Number(a), Value::Number(b)) => Coerced::Numbers(*a, *b),
        (Value::String(a), Value::String(b)) => Coerced::Strings(a, b),
        (Value::Bool(a), Value::Bool(b)) => Coerced::Bools(*a, *b),
        (Value::Array(a), Value::Array(b)) => Coerced::SameInstance(Arc::ptr_eq(a, b)),
        (Value::Object(a), Value::Object(b)) => Coerced::SameInstance(Arc::ptr_eq(a, b)),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            Coerced::Incomparable
        }
        // Number/String, String/Number, and Null/Boolean against anything primitive:
        // both sides become numbers.
        _ => Coerced::Numbers(to_number(left), to_number(right)),
    }
}

/// `left == right`.
pub fn loose_equals(left: &Value, right: &Value) -> bool {
    match coerce(left, right) {
        Coerced::Null => true,
        Coerced::Numbers(a, b) => a == b,
        Coerced::Strings(a, b) => compare_strings(a, b) == Ordering::Equal,
        Coerced::Bools(a, b) => a == b,
        Coerced::SameInstance(same) => same,
        Coerced::Incomparable => false,
    }
}

/// The order of two values, or `None` when they do not compare (NaN, different kinds
/// that do not convert, arrays, objects, nulls).
fn order(left: &Value, right: &Value) -> Option<Ordering> {
    match coerce(left, right) {
        Coerced::Numbers(a, b) => a.partial_cmp(&b),
        Coerced::Strings(a, b) => Some(compare_strings(a, b)),
        Coerced::Bools(a, b) => Some(a.cmp(&b)),
        Coerced::Null | Coerced::SameInstance(_) | Coerced::Incomparable => None,
    }
}

/// `left < right`.
pub fn less_than(left: &Value, right: &Value) -> bool {
    order(left, right) == Some(Ordering::Less)
}

/// `left > right`.
pub fn greater_than(left: &Value, right: &Value) -> bool {
    order(left, right) == Some(Ordering::Greater)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::string(x)
    }

    #[test]
    fn strings_ignore_case_except_dotless_i() {
        assert!(loose_equals(&s("abc"), &s("ABC")));
        assert!(loose_equals(&s("ς"), &s("Σ")));
        assert!(loose_equals(&s("σ"), &s("Σ")));
        assert!(loose_equals(&s("ü"), &s("Ü")));
        assert!(loose_equals(&s("привет"), &s("ПРИВЕТ")));
        assert!(!loose_equals(&s("ı"), &s("I")));
        assert!(!loose_equals(&s("i"), &s("İ")));
        assert!(less_than(&s("a"), &s("B")));
    }

    #[test]
    fn kinds_convert_to_numbers() {
        assert!(loose_equals(&Value::Null, &Value::from(0.0)));
        assert!(loose_equals(&Value::from(true), &Value::from(1.0)));
        assert!(loose_equals(&s(" 0xff "), &Value::from(255.0)));
        assert!(loose_equals(&s(""), &Value::from(false)));
        assert!(greater_than(&Value::from(true), &Value::from(false)));
        assert!(loose_equals(&Value::Null, &s("")));
        assert!(!loose_equals(&Value::Null, &Value::array(vec![])));
    }

    #[test]
    fn nan_never_compares() {
        let nan = Value::from(f64::NAN);
        assert!(!loose_equals(&nan, &nan));
        assert!(!less_than(&nan, &Value::from(1.0)));
        assert!(!greater_than(&s("abc"), &Value::from(1.0)));
    }

    #[test]
    fn containers_compare_by_identity() {
        let a = Value::array(vec![]);
        let b = Value::array(vec![]);
        assert!(loose_equals(&a, &a.clone()));
        assert!(!loose_equals(&a, &b));
        assert!(!loose_equals(&a, &Value::from(0.0)));
        assert!(!less_than(&a, &a.clone()));
    }
}
