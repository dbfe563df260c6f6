//! Keys of the config file that nothing reads: each is reported at its `line:col` and
//! ignored, as act_runner's `warnUnknownKeys` (internal/pkg/config/config.go) reports keys
//! its structs do not define, so a config written for another runner or version still
//! loads. The known keys are the ones serde knows for each section's struct.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use workflows::yaml::{Node, NodeValue};

/// The field names of `T`, a struct deriving `Deserialize`: serde hands them to
/// `deserialize_struct`, which records them and stops.
pub(super) fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// Every key of `tree` that the section it is in does not know, as (dotted path, node),
/// in source order. `known(path)` gives the keys of the section at `path` (`""` is the
/// top), `None` for a value that is not a section (its keys are not looked at).
pub(super) fn unknown_keys<'t>(
    tree: &'t Node,
    known: &dyn Fn(&str) -> Option<&'static [&'static str]>,
) -> Vec<(String, &'t Node)> {
    let mut found = Vec::new();
    walk(tree, "", known, &mut found);
    found
}

fn walk<'t>(
    node: &'t Node,
    path: &str,
    known: &dyn Fn(&str) -> Option<&'static [&'static str]>,
    found: &mut Vec<(String, &'t Node)>,
) {
    let (NodeValue::Mapping(entries), Some(fields)) = (&node.value, known(path)) else {
        return;
    };
    for (key, value) in entries {
        let Some(name) = key.as_str() else {
            continue;
        };
        let child = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        if fields.contains(&name) {
            walk(value, &child, known, found);
        } else {
            found.push((child, key));
        }
    }
}

/// A deserializer that only records the fields of the struct asked for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

/// Why [`FieldNames`] stops: it has no data.
#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("only the field names were asked for")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Section {
        known: Option<u32>,
        nested: Option<Inner>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        deep: Option<u32>,
    }

    #[test]
    fn keys_no_section_knows_are_found_at_their_place() {
        assert_eq!(fields_of::<Section>(), ["known", "nested"]);
        let text = "known: 1\ntypo: 2\nnested:\n  deep: 3\n  deeper: 4\nfree:\n  anything: 5\n";
        let tree = workflows::yaml::parse(text, "c.yaml").unwrap();
        let known = |path: &str| match path {
            "" => Some(fields_of::<Section>()),
            "nested" => Some(fields_of::<Inner>()),
            _ => None,
        };
        let found: Vec<(String, u32, u32)> = unknown_keys(&tree, &known)
            .into_iter()
            .map(|(path, node)| (path, node.location.line, node.location.column))
            .collect();
        assert_eq!(
            found,
            [
                ("typo".to_string(), 2, 1),
                ("nested.deeper".to_string(), 5, 3),
                ("free".to_string(), 6, 1)
            ]
        );
    }
}
