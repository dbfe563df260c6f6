//! The job message (`AgentJobRequestMessage`) and its two encodings of values, read as
//! actions/runner reads them:
//!
//! - `PipelineContextData` (`src/Sdk/DTPipelines/Pipelines/ContextData/
//!   PipelineContextDataJsonConverter.cs`): a bare string, bool or number, or an object with
//!   `t` (0 string `s`, 1 array `a`, 2 dictionary `d: [{k, v}]`, 3 boolean `b`, 4 number
//!   `n`, 5 case-sensitive dictionary); an object without `t` is a string. Turned into plain
//!   JSON ([`context_data`]), which is what the expression engine evaluates.
//! - `TemplateToken` (`src/Sdk/DTObjectTemplating/ObjectTemplating/Tokens/
//!   TemplateTokenJsonConverter.cs`): a bare string, bool or number, or an object with
//!   `type` (0 string `lit`, 1 sequence `seq`, 2 mapping `map: [{key, value}]`, 3 expression
//!   `expr`, 4 insert `directive`, 5 boolean `bool`, 6 number `num`, 7 null) and optional
//!   `file`, `line`, `col`; an object without `type` is a string ([`TemplateToken`]).
//!
//! Property names are matched without regard to case, as Newtonsoft does.

use serde_json::{Map, Value};

/// Why a job message cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("the job message is not usable: {0}")]
pub struct MessageError(pub String);

fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// A `PipelineContextData` value as plain JSON.
pub fn context_data(value: &Value) -> Result<Value, MessageError> {
    let object = match value {
        Value::Object(o) => o,
        Value::Null | Value::String(_) | Value::Bool(_) | Value::Number(_) => {
            return Ok(value.clone());
        }
        Value::Array(_) => return Err(MessageError("context data is a bare array".into())),
    };
    let kind = match field(object, "t") {
        None => 0,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(-1),
        Some(other) => return Err(MessageError(format!("context data type {other}"))),
    };
    Ok(match kind {
        0 => field(object, "s")
            .cloned()
            .unwrap_or(Value::String(String::new())),
        1 => Value::Array(
            field(object, "a")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(context_data)
                .collect::<Result<_, _>>()?,
        ),
        2 | 5 => {
            let mut out = Map::new();
            for pair in field(object, "d")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let pair = pair
                    .as_object()
                    .ok_or_else(|| MessageError("a dictionary entry is not an object".into()))?;
                let key = field(pair, "k")
                    .and_then(Value::as_str)
                    .ok_or_else(|| MessageError("a dictionary entry has no key".into()))?;
                let value = field(pair, "v").map(context_data).transpose()?;
                out.insert(key.to_string(), value.unwrap_or(Value::Null));
            }
            Value::Object(out)
        }
        3 => Value::Bool(field(object, "b").and_then(Value::as_bool).unwrap_or(false)),
        4 => field(object, "n").cloned().unwrap_or(Value::from(0)),
        other => return Err(MessageError(format!("unknown context data type {other}"))),
    })
}

/// Where a template token came from in the workflow file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenOrigin {
    pub file: Option<i64>,
    pub line: Option<i64>,
    pub col: Option<i64>,
}

/// A template token of the job message.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateToken {
    String(String, TokenOrigin),
    Sequence(Vec<TemplateToken>, TokenOrigin),
    Mapping(Vec<(TemplateToken, TemplateToken)>, TokenOrigin),
    /// `${{ … }}` left for the runner to evaluate (without the braces).
    Expression(String, TokenOrigin),
    /// An `${{ insert }}` directive.
    Insert(String, TokenOrigin),
    Bool(bool, TokenOrigin),
    Number(f64, TokenOrigin),
    Null(TokenOrigin),
}

impl TemplateToken {
    pub fn parse(value: &Value) -> Result<TemplateToken, MessageError> {
        let none = TokenOrigin::default();
        let object = match value {
            Value::Null => return Ok(TemplateToken::Null(none)),
            Value::String(s) => return Ok(TemplateToken::String(s.clone(), none)),
            Value::Bool(b) => return Ok(TemplateToken::Bool(*b, none)),
            Value::Number(n) => return Ok(TemplateToken::Number(n.as_f64().unwrap_or(0.0), none)),
            Value::Array(_) => return Err(MessageError("a template token is a bare array".into())),
            Value::Object(o) => o,
        };
        let origin = TokenOrigin {
            file: field(object, "file").and_then(Value::as_i64),
            line: field(object, "line").and_then(Value::as_i64),
            col: field(object, "col").and_then(Value::as_i64),
        };
        let kind = match field(object, "type") {
            None => 0,
            Some(Value::Number(n)) => n.as_i64().unwrap_or(-1),
            Some(other) => return Err(MessageError(format!("template token type {other}"))),
        };
        let text = |name: &str| {
            field(object, name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(match kind {
            0 => TemplateToken::String(text("lit"), origin),
            1 => TemplateToken::Sequence(
                field(object, "seq")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(TemplateToken::parse)
                    .collect::<Result<_, _>>()?,
                origin,
            ),
            2 => {
                let mut pairs = Vec::new();
                for pair in field(object, "map")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let pair = pair
                        .as_object()
                        .ok_or_else(|| MessageError("a mapping entry is not an object".into()))?;
                    let key = field(pair, "key")
                        .ok_or_else(|| MessageError("a mapping entry has no key".into()))?;
                    let value = field(pair, "value").unwrap_or(&Value::Null);
                    pairs.push((TemplateToken::parse(key)?, TemplateToken::parse(value)?));
                }
                TemplateToken::Mapping(pairs, origin)
            }
            3 => TemplateToken::Expression(text("expr"), origin),
            4 => TemplateToken::Insert(text("directive"), origin),
            5 => TemplateToken::Bool(
                field(object, "bool")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                origin,
            ),
            6 => TemplateToken::Number(
                field(object, "num").and_then(Value::as_f64).unwrap_or(0.0),
                origin,
            ),
            7 => TemplateToken::Null(origin),
            other => return Err(MessageError(format!("unknown template token type {other}"))),
        })
    }

    /// The token as workflow text: literals as they are, expressions as `${{ … }}`, so the
    /// engine's own evaluation applies (sequences and mappings as JSON).
    pub fn to_workflow_text(&self) -> String {
        match self {
            TemplateToken::String(s, _) => s.clone(),
            TemplateToken::Expression(e, _) => format!("${{{{ {e} }}}}"),
            TemplateToken::Insert(d, _) => format!("${{{{ {d} }}}}"),
            TemplateToken::Bool(b, _) => b.to_string(),
            TemplateToken::Number(n, _) => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    format!("{}", *n as i64)
                } else {
                    n.to_string()
                }
            }
            TemplateToken::Null(_) => String::new(),
            TemplateToken::Sequence(..) | TemplateToken::Mapping(..) => self.to_json().to_string(),
        }
    }

    /// The token as JSON, expressions as `${{ … }}` strings.
    pub fn to_json(&self) -> Value {
        match self {
            TemplateToken::Sequence(items, _) => {
                Value::Array(items.iter().map(TemplateToken::to_json).collect())
            }
            TemplateToken::Mapping(pairs, _) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_workflow_text(), v.to_json()))
                    .collect(),
            ),
            TemplateToken::Bool(b, _) => Value::Bool(*b),
            TemplateToken::Number(n, _) if n.fract() == 0.0 && n.abs() < 1e15 => {
                Value::from(*n as i64)
            }
            TemplateToken::Number(n, _) => {
                serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
            }
            TemplateToken::Null(_) => Value::Null,
            other => Value::String(other.to_workflow_text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn context_data_becomes_plain_json() {
        let data = json!({"t": 2, "d": [
            {"k": "event_name", "v": "push"},
            {"k": "run_number", "v": {"t": 4, "n": 7}},
            {"k": "flags", "v": {"t": 1, "a": [true, {"t": 3, "b": false}, {"s": "x"}]}},
            {"k": "nested", "v": {"t": 5, "d": [{"k": "A", "v": {"t": 0, "s": "b"}}]}},
            {"k": "none", "v": null},
        ]});
        assert_eq!(
            context_data(&data).unwrap(),
            json!({"event_name": "push", "run_number": 7, "flags": [true, false, "x"], "nested": {"A": "b"}, "none": null})
        );
        assert!(context_data(&json!({"t": 9})).is_err());
        assert!(
            context_data(&json!({"T": 2, "D": [{"K": "a", "V": 1}]})).unwrap() == json!({"a": 1})
        );
    }

    #[test]
    fn template_tokens_parse_and_keep_expressions_for_the_engine() {
        let token = json!({"type": 2, "file": 1, "line": 5, "col": 9, "map": [
            {"key": "script", "value": {"type": 0, "lit": "make"}},
            {"key": "args", "value": {"type": 3, "expr": "matrix.os"}},
            {"Key": {"type": 0, "lit": "n"}, "Value": {"type": 6, "num": 3}},
            {"key": "list", "value": {"type": 1, "seq": ["a", true, {"type": 7}]}},
        ]});
        let parsed = TemplateToken::parse(&token).unwrap();
        let TemplateToken::Mapping(pairs, origin) = &parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(origin.line, Some(5));
        assert_eq!(pairs.len(), 4);
        assert_eq!(pairs[1].1.to_workflow_text(), "${{ matrix.os }}");
        assert_eq!(
            parsed.to_json(),
            json!({"script": "make", "args": "${{ matrix.os }}", "n": 3, "list": ["a", true, null]})
        );
        assert_eq!(
            TemplateToken::parse(&json!("plain"))
                .unwrap()
                .to_workflow_text(),
            "plain"
        );
        assert!(TemplateToken::parse(&json!({"type": 12})).is_err());
    }
}
