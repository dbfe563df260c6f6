//! The loader's toolbox: reading YAML nodes as the schema expects them (mappings with
//! known keys, strings, booleans, numbers, lists) and collecting every problem as a
//! diagnostic in GitHub's wording instead of stopping at the first.

use crate::diagnostic::{Diagnostic, Location};
use crate::yaml::{Node, NodeValue};

use super::dialect::Dialect;
use super::expressions::{Checked, Problem, Scope, check_string, is_insert_directive};
use super::suggest::did_you_mean;
use super::types::{Located, OrExpression, StringMap};

/// Remedies for a value of the wrong kind, by what the key expects.
pub(crate) const WANT_MAPPING: &str = "Write a mapping here: one 'key: value' entry per line.";
pub(crate) const WANT_STRING: &str = "Write a single string here (quote it if it starts with a special character), not a list or mapping.";
pub(crate) const WANT_NON_EMPTY: &str = "Write a non-empty value here.";
pub(crate) const WANT_STRINGS: &str = "Write one string or a list of strings here.";
pub(crate) const WANT_SEQUENCE: &str = "Write a list here, one '- item' per line.";
pub(crate) const WANT_BOOL: &str = "Write true or false here.";
pub(crate) const WANT_BOOL_OR_EXPRESSION: &str =
    "Write true, false, or one '${{ }}' expression here.";
pub(crate) const WANT_NUMBER_OR_EXPRESSION: &str =
    "Write a number (like 30) or one '${{ }}' expression here.";
const NO_EXPRESSION_HERE: &str =
    "Expressions are not evaluated here: write the value itself, without '${{ }}'.";

/// One mapping entry whose key was accepted: (key text, key node, value node).
pub(crate) type Entry<'a> = (&'a str, &'a Node, &'a Node);

/// Collects diagnostics for one file.
#[derive(Debug)]
pub(crate) struct Reader {
    pub file: String,
    /// The platform whose rules the file is read by.
    pub dialect: Dialect,
    pub diagnostics: Vec<Diagnostic>,
}

impl Reader {
    pub fn new(file: &str, dialect: Dialect) -> Self {
        Reader {
            file: file.to_string(),
            dialect,
            diagnostics: Vec::new(),
        }
    }

    /// Reports `message` (GitHub's words) with `help` saying how to fix it.
    pub fn error(
        &mut self,
        location: Location,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.diagnostics
            .push(Diagnostic::new(&self.file, Some(location), message).with_help(help));
    }

    /// Reports a problem found in `${{ }}` text.
    pub fn problem(&mut self, location: Location, problem: Problem) {
        self.error(location, problem.message, problem.help);
    }

    /// GitHub's message for a node of the wrong kind; `help` says what belongs there.
    pub fn unexpected(&mut self, node: &Node, help: impl Into<String>) {
        let message = match &node.value {
            NodeValue::Sequence(_) => "A sequence was not expected".to_string(),
            NodeValue::Mapping(_) => "A mapping was not expected".to_string(),
            _ => format!(
                "Unexpected value '{}'",
                node.scalar_text().unwrap_or_default()
            ),
        };
        self.error(node.location, message, help);
    }

    pub fn missing(&mut self, location: Location, property: &str) {
        self.error(
            location,
            format!("Required property is missing: {property}"),
            format!("Add '{property}:' to this mapping."),
        );
    }

    /// The entries of a mapping, each key a string checked for duplicates (ignoring
    /// case). With `known` set, other keys are reported as unexpected and left out.
    /// `None` (after reporting) when the node is not a mapping.
    pub fn mapping<'a>(
        &mut self,
        node: &'a Node,
        known: Option<&[&str]>,
    ) -> Option<Vec<Entry<'a>>> {
        self.mapping_with_keys(node, known, Scope::None)
    }

    /// Like [`Reader::mapping`], with keys that may hold expressions of `key_scope`
    /// (matrix keys may).
    pub fn mapping_with_keys<'a>(
        &mut self,
        node: &'a Node,
        known: Option<&[&str]>,
        key_scope: Scope,
    ) -> Option<Vec<Entry<'a>>> {
        let Some(pairs) = node.as_mapping() else {
            if node.as_str().is_some_and(|s| s.contains("${{")) {
                self.error(
                    node.location,
                    "A template expression is not allowed in this context",
                    "Write the mapping itself here; one '${{ }}' expression cannot stand for it at this key.",
                );
            } else {
                self.unexpected(node, WANT_MAPPING);
            }
            return None;
        };
        let mut entries: Vec<Entry<'a>> = Vec::with_capacity(pairs.len());
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in pairs {
            let Some(text) = key.as_str().filter(|t| !t.is_empty()) else {
                self.unexpected(key, "Give this entry a non-empty string key.");
                continue;
            };
            if text == "<<" {
                // YAML merge keys: GitHub's reader takes `<<` as an ordinary key, which no
                // mapping of the schema has; act's Go YAML would merge them.
                self.error(
                    key.location,
                    "Unexpected value '<<'",
                    "GitHub does not apply YAML merge keys ('<<: *anchor'): repeat the entries, or use an alias for the whole value.",
                );
                continue;
            }
            if text.contains("${{")
                && !is_insert_directive(text)
                && let Err(problem) = check_string(text, key_scope, self.dialect)
            {
                self.problem(key.location, problem);
                continue;
            }
            if let Some(known) = known
                && !known.contains(&text)
            {
                self.unexpected(key, did_you_mean(text, known, "keys"));
                continue;
            }
            let folded = text.to_lowercase();
            if seen.contains(&folded) {
                self.error(
                    key.location,
                    format!("'{text}' is already defined"),
                    format!("Remove or rename one of the '{text}' keys (keys are compared ignoring case)."),
                );
                continue;
            }
            seen.push(folded);
            entries.push((text, key, value));
        }
        Some(entries)
    }

    /// A string value (literal numbers and booleans become their text; null is `""`),
    /// with its `${{ }}` parts checked for `scope`.
    pub fn string(&mut self, node: &Node, scope: Scope) -> Option<Located<String>> {
        let text = match &node.value {
            NodeValue::Sequence(_) | NodeValue::Mapping(_) => {
                self.unexpected(node, WANT_STRING);
                return None;
            }
            NodeValue::String(s) => match check_string(s, scope, self.dialect) {
                Ok(Checked::Escaped(folded)) => folded,
                Ok(_) => s.clone(),
                Err(problem) => {
                    self.problem(node.location, problem);
                    s.clone()
                }
            },
            _ => node.scalar_text().unwrap_or_default(),
        };
        Some(Located::new(text, node.location))
    }

    /// Like [`Reader::string`], but null and `""` are reported.
    pub fn non_empty_string(&mut self, node: &Node, scope: Scope) -> Option<Located<String>> {
        let value = self.string(node, scope)?;
        if value.value.is_empty() {
            self.unexpected(node, WANT_NON_EMPTY);
            return None;
        }
        Some(value)
    }

    /// One string or a sequence of strings.
    pub fn string_list(
        &mut self,
        node: &Node,
        scope: Scope,
        non_empty: bool,
    ) -> Option<Vec<Located<String>>> {
        let read = |r: &mut Reader, n: &Node| {
            if non_empty {
                r.non_empty_string(n, scope)
            } else {
                r.string(n, scope)
            }
        };
        match &node.value {
            NodeValue::Sequence(items) => {
                Some(items.iter().filter_map(|n| read(self, n)).collect())
            }
            NodeValue::Mapping(_) => {
                self.unexpected(node, WANT_STRINGS);
                None
            }
            _ => read(self, node).map(|s| vec![s]),
        }
    }

    /// A sequence of strings (a single string is not accepted).
    pub fn string_sequence(
        &mut self,
        node: &Node,
        scope: Scope,
        non_empty: bool,
    ) -> Vec<Located<String>> {
        let Some(items) = node.as_sequence() else {
            self.unexpected(node, WANT_SEQUENCE);
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|n| {
                if non_empty {
                    self.non_empty_string(n, scope)
                } else {
                    self.string(n, scope)
                }
            })
            .collect()
    }

    /// A mapping of strings, or one expression standing for the whole mapping.
    pub fn string_map(&mut self, node: &Node, scope: Scope) -> Option<StringMap> {
        let mut map = StringMap::default();
        if let Some(expression) = self.whole_expression(node, scope) {
            map.inserts.push(expression);
            return Some(map);
        }
        // Keys may hold expressions of the same contexts as values (GitHub's reader allows
        // expression keys wherever the mapping allows expressions); the engine evaluates them.
        for (key, key_node, value) in self.mapping_with_keys(node, None, scope)? {
            if is_insert_directive(key) {
                if let Some(v) = self.whole_expression(value, scope) {
                    map.inserts.push(v);
                } else if value
                    .as_str()
                    .is_none_or(|t| check_string(t, scope, self.dialect).is_ok())
                {
                    self.unexpected(
                        value,
                        "The value of '${{ insert }}' must be one '${{ }}' expression that gives a mapping.",
                    );
                }
                continue;
            }
            if let Some(v) = self.string(value, scope) {
                map.entries
                    .push((Located::new(key.to_string(), key_node.location), v));
            }
        }
        Some(map)
    }

    /// `Some` when `node` is a string made of exactly one valid `${{ }}` in a scope that
    /// allows expressions (reported and `None` otherwise).
    pub fn whole_expression(&mut self, node: &Node, scope: Scope) -> Option<Located<String>> {
        let text = node.as_str()?;
        if !text.contains("${{") {
            return None;
        }
        match check_string(text, scope, self.dialect) {
            Ok(Checked::SingleExpression) => Some(Located::new(text.to_string(), node.location)),
            Ok(_) => None,
            Err(problem) => {
                self.problem(node.location, problem);
                None
            }
        }
    }

    /// A boolean, or one expression.
    pub fn boolean(&mut self, node: &Node, scope: Scope) -> Option<Located<OrExpression<bool>>> {
        match &node.value {
            NodeValue::Bool(b) => Some(Located::new(OrExpression::Literal(*b), node.location)),
            _ => self.typed_expression(node, scope, WANT_BOOL_OR_EXPRESSION),
        }
    }

    /// A number, or one expression.
    pub fn number(&mut self, node: &Node, scope: Scope) -> Option<Located<OrExpression<f64>>> {
        match &node.value {
            NodeValue::Number(n) => Some(Located::new(OrExpression::Literal(*n), node.location)),
            _ => self.typed_expression(node, scope, WANT_NUMBER_OR_EXPRESSION),
        }
    }

    /// A plain boolean (no expressions).
    pub fn plain_bool(&mut self, node: &Node) -> Option<bool> {
        match &node.value {
            NodeValue::Bool(b) => Some(*b),
            NodeValue::String(s) if s.contains("${{") => {
                self.error(
                    node.location,
                    "A template expression is not allowed in this context",
                    format!("{WANT_BOOL} {NO_EXPRESSION_HERE}"),
                );
                None
            }
            _ => {
                self.unexpected(node, WANT_BOOL);
                None
            }
        }
    }

    fn typed_expression<T>(
        &mut self,
        node: &Node,
        scope: Scope,
        want: &str,
    ) -> Option<Located<OrExpression<T>>> {
        let text = match &node.value {
            NodeValue::String(s) if s.contains("${{") => s,
            _ => {
                self.unexpected(node, want);
                return None;
            }
        };
        match check_string(text, scope, self.dialect) {
            Ok(Checked::SingleExpression) => Some(Located::new(
                OrExpression::Expression(text.clone()),
                node.location,
            )),
            Ok(_) => {
                self.unexpected(
                    node,
                    format!(
                        "{want} An expression must be the whole value, with no text around it."
                    ),
                );
                None
            }
            Err(problem) => {
                self.problem(node.location, problem);
                self.unexpected(node, want);
                None
            }
        }
    }
}
