//! The display name GitHub gives one matrix leg's job run: `build (ubuntu-latest, 14)`.
//!
//! The segments are the scalar values of the leg, depth first through nested objects
//! and arrays, keys left out: strings as they are (empty ones skipped), numbers in .NET's
//! `G15` form, booleans as `true` / `false`, nulls skipped. Names longer than 100
//! characters are cut to 97 and end in `...`.

use crate::expression::Value;
use crate::expression::number::format_number;

/// The longest display name; longer ones are shortened with `...`.
const MAX_NAME_CHARS: usize = 100;

/// GitHub's display name for a run of job `job_name` with these matrix values:
/// `job_name (seg, seg, ...)`, or `job_name` alone when no value gives a segment. The
/// segments are the scalar leaves of `values` as the module documentation describes.
pub fn display_name<'v>(job_name: &str, values: impl Iterator<Item = &'v Value>) -> String {
    let mut segments = Vec::new();
    for value in values {
        push_segments(value, &mut segments);
    }
    let name = if segments.is_empty() {
        job_name.to_string()
    } else {
        format!("{job_name} ({})", segments.join(", "))
    };
    if name.chars().count() > MAX_NAME_CHARS {
        let kept: String = name.chars().take(MAX_NAME_CHARS - 3).collect();
        format!("{kept}...")
    } else {
        name
    }
}

fn push_segments(value: &Value, segments: &mut Vec<String>) {
    match value {
        Value::Null => {}
        Value::Bool(b) => segments.push(b.to_string()),
        Value::Number(n) => segments.push(format_number(*n)),
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => segments.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| push_segments(v, segments)),
        Value::Object(object) => object.values().for_each(|v| push_segments(v, segments)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn g15_matches_dotnet() {
        let cases = [
            (14.0, "14"),
            (-3.0, "-3"),
            (1.5, "1.5"),
            (0.1 + 0.2, "0.3"),
            (100.0, "100"),
            (123456789012345.0, "123456789012345"),
            (1e15, "1E+15"),
            (1234567890123456.0, "1.23456789012346E+15"),
            (1e20, "1E+20"),
            (0.0001, "0.0001"),
            (0.00001, "1E-05"),
            (1.5e-7, "1.5E-07"),
            (-2.5e-10, "-2.5E-10"),
            (1e300, "1E+300"),
            (0.0, "0"),
            (-0.0, "0"),
            (123456.789, "123456.789"),
            (0.845_512_408_225_570_1, "0.84551240822557"),
            (1.2e-2, "0.012"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
        ];
        for (n, expected) in cases {
            assert_eq!(format_number(n), expected, "{n:e}");
        }
    }

    fn json(text: &str) -> Value {
        Value::from_json(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn segments_are_scalar_leaves_depth_first() {
        let leg = json(r#"{"os":"ubuntu","node":14,"cfg":{"a":true,"b":[null,"",1.5]},"e":""}"#);
        let values = leg.as_object().unwrap().values();
        assert_eq!(
            display_name("build", values),
            "build (ubuntu, 14, true, 1.5)"
        );
        assert_eq!(
            display_name("build", [json(r#"["", null]"#)].iter()),
            "build"
        );
    }

    #[test]
    fn long_names_are_cut_to_100_characters() {
        let long = Value::from("x".repeat(200));
        let name = display_name("job", std::iter::once(&long));
        assert_eq!(name.chars().count(), 100);
        assert!(name.starts_with("job (xxx"));
        assert!(name.ends_with("x..."));
    }
}
