//! YAML text to a tree whose every node knows its `line:col`, loaded with serde-saphyr.
//!
//! The tree keeps what the workflow loader needs and serde would otherwise lose: mapping
//! order, duplicate keys (reported by the loader GitHub's way), and whether a scalar was
//! quoted (`'true'` stays a string). Booleans follow YAML 1.2 core (`on:` and `yes` are
//! strings). Anchors and aliases are accepted.

mod comments;

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};
use serde_saphyr::{DuplicateKeyPolicy, MergeKeyPolicy, NonFiniteFloatPolicy, Spanned};

use crate::diagnostic::{Diagnostic, Location};
use crate::expression::{Object, Value};

/// One YAML node and where it starts in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: NodeValue,
    pub location: Location,
}

/// The data of a [`Node`]. Mappings keep source order and duplicate keys.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Sequence(Vec<Node>),
    Mapping(Vec<(Node, Node)>),
}

impl NodeValue {
    /// The YAML kind, as GitHub's parser names it in messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "boolean",
            NodeValue::Number(_) => "number",
            NodeValue::String(_) => "string",
            NodeValue::Sequence(_) => "sequence",
            NodeValue::Mapping(_) => "mapping",
        }
    }
}

impl Node {
    pub fn new(value: NodeValue, location: Location) -> Self {
        Node { value, location }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_mapping(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            NodeValue::Mapping(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_sequence(&self) -> Option<&[Node]> {
        match &self.value {
            NodeValue::Sequence(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, NodeValue::Null)
    }

    /// The scalar as text, the way GitHub's parser reads a literal where a string is
    /// expected (`true`, `3`, `null` → `""`). `None` for sequences and mappings.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            NodeValue::Null => Some(String::new()),
            NodeValue::Bool(b) => Some(b.to_string()),
            NodeValue::Number(n) => Some(number_text(*n)),
            NodeValue::String(s) => Some(s.clone()),
            NodeValue::Sequence(_) | NodeValue::Mapping(_) => None,
        }
    }

    /// The first value under `key` in a mapping (keys compared exactly).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_mapping()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Plain data conversion (no expression evaluation). Later duplicate keys win.
    pub fn to_value(&self) -> Value {
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Number(n) => Value::Number(*n),
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Sequence(items) => Value::array(items.iter().map(Node::to_value).collect()),
            NodeValue::Mapping(entries) => {
                let mut object = Object::with_capacity(entries.len());
                for (k, v) in entries {
                    object.insert(k.scalar_text().unwrap_or_default(), v.to_value());
                }
                Value::object(object)
            }
        }
    }
}

/// A number as YAML source would spell it back: integral values without a fraction.
fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.is_finite() && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// The deepest nesting of mappings and sequences accepted (GitHub's limit).
pub const MAX_DEPTH: usize = 50;

/// Parses one YAML document. An empty document (or only comments) is a `Null` node at 1:1.
pub fn parse(text: &str, file: &str) -> Result<Node, Diagnostic> {
    parse_with(text, file, MergeKeys::Merge)
}

/// What YAML merge keys (`<<: *anchor`) do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKeys {
    /// Merged into the mapping, as YAML 1.1 and Go's YAML (Gitea, Forgejo) do.
    Merge,
    /// Kept as an ordinary `<<` key, for the loader to refuse, as GitHub's reader does.
    AsOrdinary,
}

/// [`parse`] with merge keys handled as `merge` says.
pub fn parse_with(text: &str, file: &str, merge: MergeKeys) -> Result<Node, Diagnostic> {
    if text.trim().is_empty() || only_comments(text) {
        return Ok(Node::new(NodeValue::Null, Location::new(1, 1)));
    }
    if let Some(message) = tag_style_error(text) {
        return Err(Diagnostic::new(file, None, message).with_help(
            "Remove the '!!' tag, or write the value unquoted as a plain scalar of that type.",
        ));
    }
    match parse_tree(text, merge) {
        Ok(root) => Ok(root),
        Err(e) => match comments::separate_comments(text) {
            Some(fixed) => parse_tree(&fixed, merge).map_err(|e| syntax_error(&e, &fixed, file)),
            None => Err(syntax_error(&e, text, file)),
        },
    }
}

fn parse_tree(text: &str, merge: MergeKeys) -> Result<Node, serde_saphyr::Error> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    let options = serde_saphyr::options! {
        budget: Some(budget),
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        non_finite_float_policy: NonFiniteFloatPolicy::PassThrough,
        underscored_numbers_as_strings: true,
        strict_booleans: true,
        merge_keys: match merge {
            MergeKeys::Merge => MergeKeyPolicy::Merge,
            MergeKeys::AsOrdinary => MergeKeyPolicy::AsOrdinary,
        },
    };
    let spanned = serde_saphyr::from_str_with_options::<Spanned<Tree>>(text, options)?;
    let lines: Vec<&str> = text.lines().collect();
    let mut root = to_node(spanned, &lines);
    if !text.ends_with('\n') {
        clip_final_block_scalar(&mut root, &lines);
    }
    Ok(root)
}

/// The core-schema tags GitHub resolves itself, and so only accepts on plain scalars.
const PLAIN_ONLY_TAGS: [&str; 4] = ["null", "bool", "int", "float"];

/// GitHub's message for a quoted or block scalar with an explicit `!!null`, `!!bool`,
/// `!!int` or `!!float` tag, which serde-saphyr lets through. Only texts with a `!!`
/// are scanned.
fn tag_style_error(text: &str) -> Option<String> {
    if !text.contains("!!") {
        return None;
    }
    let lines: Vec<&str> = text.lines().collect();
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else {
            // Syntax errors are reported by the main parse.
            return None;
        };
        let Event::Scalar(_, style, _, Some(tag)) = event else {
            continue;
        };
        if style == ScalarStyle::Plain {
            continue;
        }
        let Some(suffix) = PLAIN_ONLY_TAGS
            .into_iter()
            .find(|s| tag.is_yaml_core_schema_tag(s))
        else {
            continue;
        };
        let line = span.start.line();
        let column = tag_column(&lines, line, span.start.col());
        return Some(format!(
            "The scalar style '{style:?}' on line {line} and column {column} is not valid with the tag 'tag:yaml.org,2002:{suffix}'"
        ));
    }
    None
}

/// The 1-based column where a node's `!!tag` starts, on the line of its content
/// (0-based `content_column`); the content's own column when the tag is elsewhere.
fn tag_column(lines: &[&str], line: usize, content_column: usize) -> usize {
    let Some(text) = line.checked_sub(1).and_then(|i| lines.get(i)) else {
        return content_column + 1;
    };
    let before: String = text.chars().take(content_column + 1).collect();
    match before.rfind("!!") {
        Some(i) => before[..i].chars().count() + 1,
        None => content_column + 1,
    }
}

fn only_comments(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

fn syntax_error(e: &serde_saphyr::Error, text: &str, file: &str) -> Diagnostic {
    if let serde_saphyr::Error::Budget {
        breach: serde_saphyr::budget::BudgetBreach::Depth { .. },
        ..
    } = e.without_snippet()
    {
        return Diagnostic::new(file, None, "Maximum object depth exceeded")
            .with_help("Nest mappings and lists fewer than 50 levels deep.");
    }
    let location = e
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| Location::new(to_u32(l.line()), to_u32(l.column())));
    if let Some((message, help)) = location.and_then(|l| tag_error(text, l)) {
        return Diagnostic::new(file, None, message).with_help(help);
    }
    let rendered = e.without_snippet().to_string();
    let first_line = rendered.lines().next().unwrap_or("invalid YAML").trim();
    // The location is reported separately; drop the parser's own " at line L, column C".
    let message = match first_line.rfind(" at line ") {
        Some(i) if location.is_some() => &first_line[..i],
        _ => first_line,
    };
    // The parser's advice about its own API ("; use from_str_multiple ...") means
    // nothing to a workflow author.
    let message = message.split("; use ").next().unwrap_or(message);
    Diagnostic::new(file, location, format!("YAML syntax error: {message}."))
        .with_help(syntax_help(message))
}

/// What to check for a YAML syntax error, by the parser's description of it.
fn syntax_help(message: &str) -> &'static str {
    let m = message.to_lowercase();
    if m.contains("multiple yaml documents") {
        "A workflow file holds one YAML document: remove the '---' line and everything after it, or move it to its own file."
    } else if m.contains("tab") {
        "Indent with spaces: YAML does not allow tabs in indentation."
    } else if m.contains("bracket") || m.contains("brace") || m.contains("flow") {
        "Close the '[' or '{' opened here with its matching ']' or '}', and separate items with ', '."
    } else if m.contains("indicator") {
        "Quote the value if it contains ':', '[', ']', '{', '}' or ',', and check that every '[' or '{' before this point is closed."
    } else if m.contains("quote") || m.contains("end of stream") || m.contains("unterminated") {
        "Close the quoted string or the '[' / '{' that starts before this point."
    } else if m.contains("mapping values") || m.contains("indent") || m.contains("expected key") {
        "Check the indentation here and above (keys of one mapping line up), and quote values that contain ': '."
    } else if m.contains("duplicate") {
        "Remove or rename one of the duplicated keys."
    } else {
        "Check the indentation (spaces, not tabs), close every quote, '[' and '{', and quote values that contain ': ' or start with '*', '&', '!', '%', '@' or '`'."
    }
}

/// GitHub's message when a value fails its explicit core-schema tag (`!!bool test`),
/// or when the tag is not one GitHub supports (`!!timestamp`).
fn tag_error(text: &str, at: Location) -> Option<(String, &'static str)> {
    let line = text.lines().nth(at.line.checked_sub(1)? as usize)?;
    let chars: Vec<char> = line.chars().collect();
    let before: String = chars
        .get(..(at.column as usize).saturating_sub(1))?
        .iter()
        .collect();
    let tag_start = before.rfind("!!")?;
    let tag: String = before[tag_start + 2..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let tag_column = before[..tag_start].chars().count() + 1;
    let value: String = chars
        .get((at.column as usize).saturating_sub(1)..)
        .unwrap_or(&[])
        .iter()
        .collect();
    let value = value.split(" #").next().unwrap_or_default().trim();
    Some(match tag.as_str() {
        "bool" | "int" | "float" => (
            format!(
                "The value '{value}' on line {} and column {tag_column} is invalid for the type 'tag:yaml.org,2002:{tag}'",
                at.line
            ),
            "Write a value of the tagged type, or remove the '!!' tag.",
        ),
        "str" | "null" | "seq" | "map" => return None,
        _ => (
            format!("Unexpected tag 'tag:yaml.org,2002:{tag}'"),
            "Remove the tag: only !!str, !!int, !!float, !!bool, !!null, !!seq and !!map are supported.",
        ),
    })
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn location_of(l: &serde_saphyr::Location) -> Location {
    Location::new(to_u32(l.line()), to_u32(l.column()))
}

fn to_node(spanned: Spanned<Tree>, lines: &[&str]) -> Node {
    let mut location = location_of(&spanned.referenced);
    let value = match spanned.value {
        Tree::Null => {
            location = after_colon(location, lines);
            NodeValue::Null
        }
        Tree::Bool(b) => NodeValue::Bool(b),
        Tree::Number(n) => NodeValue::Number(n),
        Tree::String(s) => {
            location = block_indicator(location, lines).unwrap_or(location);
            NodeValue::String(s)
        }
        Tree::Sequence(items) => {
            NodeValue::Sequence(items.into_iter().map(|i| to_node(i, lines)).collect())
        }
        Tree::Mapping(entries) => NodeValue::Mapping(
            entries
                .into_iter()
                .map(|(k, v)| (to_node(k, lines), to_node(v, lines)))
                .collect(),
        ),
    };
    Node::new(value, location)
}

/// A `|` / `>` block scalar that runs to the end of a file with no final line break
/// keeps no line break ("clip" keeps only a line break that is there); serde-saphyr
/// adds one, so take it off the document's last node.
fn clip_final_block_scalar(root: &mut Node, lines: &[&str]) {
    let mut path = Vec::new();
    let mut node: &Node = root;
    loop {
        let next = match &node.value {
            NodeValue::Sequence(items) => items.last().map(|n| (items.len() - 1, n)),
            NodeValue::Mapping(entries) => entries.last().map(|(_, v)| (entries.len() - 1, v)),
            _ => None,
        };
        let Some((index, child)) = next else {
            break;
        };
        path.push(index);
        node = child;
    }
    let mut last: &mut Node = root;
    for index in path {
        last = match &mut last.value {
            NodeValue::Sequence(items) => &mut items[index],
            NodeValue::Mapping(entries) => &mut entries[index].1,
            _ => return,
        };
    }
    let clip = matches!(char_at(last.location, lines), Some('|' | '>'))
        && lines
            .get(last.location.line as usize - 1)
            .is_some_and(|l| !l.trim_end().ends_with(['+', '-']));
    if let NodeValue::String(s) = &mut last.value
        && clip
        && s.ends_with('\n')
    {
        s.pop();
    }
}

/// The character at a 1-based location.
fn char_at(location: Location, lines: &[&str]) -> Option<char> {
    let line = lines.get(location.line.checked_sub(1)? as usize)?;
    line.chars().nth(location.column.checked_sub(1)? as usize)
}

/// An empty value (`key:`) is placed just after the colon, as GitHub places it.
fn after_colon(location: Location, lines: &[&str]) -> Location {
    if char_at(location, lines) == Some(':') {
        Location::new(location.line, location.column + 1)
    } else {
        location
    }
}

/// A block scalar (`run: |`) starts at its `|` / `>` indicator, as GitHub reports it,
/// not at its first content line.
fn block_indicator(location: Location, lines: &[&str]) -> Option<Location> {
    if location.column <= 1 {
        return None;
    }
    let mut line_index = location.line.checked_sub(2)? as usize;
    loop {
        let line = lines.get(line_index)?;
        let content = line.split(" #").next().unwrap_or_default().trim_end();
        if !content.is_empty() {
            let token_start = content.rfind(' ').map_or(0, |i| i + 1);
            let token = &content[token_start..];
            let is_indicator = token.starts_with(['|', '>'])
                && token[1..]
                    .chars()
                    .all(|c| c == '+' || c == '-' || c.is_ascii_digit())
                && token.len() <= 3;
            if !is_indicator {
                return None;
            }
            let column = content[..token_start].chars().count() as u32 + 1;
            return Some(Location::new(line_index as u32 + 1, column));
        }
        line_index = line_index.checked_sub(1)?;
    }
}

/// The raw deserialized tree; each child is wrapped in `Spanned` so its location survives.
enum Tree {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Sequence(Vec<Spanned<Tree>>),
    Mapping(Vec<(Spanned<Tree>, Spanned<Tree>)>),
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Tree, E> {
        Ok(Tree::Number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Tree, E> {
        Ok(Tree::Number(v as f64))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Tree, E> {
        Ok(Tree::Number(v as f64))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Tree, E> {
        Ok(Tree::Number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Tree, E> {
        Ok(Tree::Number(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tree, E> {
        Ok(Tree::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Tree, E> {
        Ok(Tree::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Tree, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Tree>>()? {
            items.push(item);
        }
        Ok(Tree::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Tree>>()? {
            let value = map.next_value::<Spanned<Tree>>()?;
            entries.push((key, value));
        }
        Ok(Tree::Mapping(entries))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Node {
        parse(text, "t.yml").unwrap()
    }

    #[test]
    fn locations_survive_nesting() {
        let n = parse_ok("on: push\njobs:\n  build:\n    steps:\n      - run: echo\n");
        let m = n.as_mapping().unwrap();
        assert_eq!(m[0].0.as_str(), Some("on"));
        assert_eq!(m[0].0.location, Location::new(1, 1));
        assert_eq!(m[0].1.location, Location::new(1, 5));
        let jobs = n.get("jobs").unwrap();
        let (build_key, build) = &jobs.as_mapping().unwrap()[0];
        assert_eq!(build_key.location, Location::new(3, 3));
        let steps = build.get("steps").unwrap();
        let step = &steps.as_sequence().unwrap()[0];
        assert_eq!(step.location, Location::new(5, 9));
        let (run_key, run) = &step.as_mapping().unwrap()[0];
        assert_eq!(run_key.location, Location::new(5, 9));
        assert_eq!(run.location, Location::new(5, 14));
        assert_eq!(run.as_str(), Some("echo"));
    }

    #[test]
    fn quoted_scalars_stay_strings_and_on_is_a_string() {
        let core = parse_ok("a: 12_345\nb: 0755\nc: 0o10\n");
        assert_eq!(core.get("a").unwrap().as_str(), Some("12_345"));
        assert_eq!(core.get("b").unwrap().value, NodeValue::Number(755.0));
        assert_eq!(core.get("c").unwrap().value, NodeValue::Number(8.0));
        let big = parse_ok("a: .inf\nb: 1e999\n");
        assert_eq!(
            big.get("a").unwrap().value,
            NodeValue::Number(f64::INFINITY)
        );
        assert_eq!(
            big.get("b").unwrap().value,
            NodeValue::Number(f64::INFINITY)
        );
        let n = parse_ok("a: 'true'\nb: true\nc: \"3\"\nd: 3\non: yes\ne:\nf: 1.5\n");
        assert_eq!(n.get("a").unwrap().value, NodeValue::String("true".into()));
        assert_eq!(n.get("b").unwrap().value, NodeValue::Bool(true));
        assert_eq!(n.get("c").unwrap().value, NodeValue::String("3".into()));
        assert_eq!(n.get("d").unwrap().value, NodeValue::Number(3.0));
        assert_eq!(n.get("on").unwrap().value, NodeValue::String("yes".into()));
        assert!(n.get("e").unwrap().is_null());
        assert_eq!(n.get("f").unwrap().value, NodeValue::Number(1.5));
    }

    #[test]
    fn duplicates_and_order_are_kept() {
        let n = parse_ok("b: 1\na: 2\nb: 3\n");
        let keys: Vec<_> = n
            .as_mapping()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str().unwrap().to_string())
            .collect();
        assert_eq!(keys, ["b", "a", "b"]);
    }

    #[test]
    fn block_scalars_and_empty_values_are_placed_like_github() {
        let n = parse_ok("a:\n  run: |\n    echo\n  b: >-\n\n    x\n  image:\n");
        let a = n.get("a").unwrap();
        assert_eq!(a.get("run").unwrap().location, Location::new(2, 8));
        assert_eq!(a.get("b").unwrap().location, Location::new(4, 6));
        assert_eq!(a.get("image").unwrap().location, Location::new(7, 9));
    }

    #[test]
    fn a_final_block_scalar_without_line_break_keeps_none() {
        let n = parse_ok("a: |\n  x\n  y");
        assert_eq!(n.get("a").unwrap().as_str(), Some("x\ny"));
        let n = parse_ok("a: |\n  x\n");
        assert_eq!(n.get("a").unwrap().as_str(), Some("x\n"));
    }

    #[test]
    fn anchors_and_aliases_are_accepted() {
        let n = parse_ok("a: &x\n  k: v\nb: *x\n");
        assert_eq!(n.get("b").unwrap().get("k").unwrap().as_str(), Some("v"));
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let e = parse("a: [1, 2\nb: 3\n", "t.yml").unwrap_err();
        assert!(e.location.is_some(), "{e}");
        assert!(e.message.contains("YAML"), "{e}");
        assert!(e.help.is_some_and(|h| h.contains("is closed")));
        let e = parse("a: 1\n---\nb: 2\n", "t.yml").unwrap_err();
        assert!(!e.message.contains("from_str"), "{e}");
        assert!(
            e.help
                .as_ref()
                .is_some_and(|h| h.contains("one YAML document")),
            "{e}"
        );
        let e = parse("a: [1, 2\n", "t.yml").unwrap_err();
        assert!(
            e.help.as_ref().is_some_and(|h| h.contains("matching ']'")),
            "{e}"
        );
        let e = parse("a:\n\tb: 1\n", "t.yml").unwrap_err();
        assert_eq!(
            e.help.as_deref(),
            Some("Indent with spaces: YAML does not allow tabs in indentation.")
        );
    }

    #[test]
    fn explicit_tags_fail_in_githubs_words() {
        let e = parse("a:\n  b: !!bool test\n", "t.yml").unwrap_err();
        assert_eq!(
            e.message,
            "The value 'test' on line 2 and column 6 is invalid for the type 'tag:yaml.org,2002:bool'"
        );
        assert_eq!(e.location, None);
        assert!(e.help.is_some_and(|h| h.contains("remove the '!!' tag")));
    }

    #[test]
    fn core_tags_on_quoted_scalars_are_rejected_like_github() {
        let e = parse("a:\n  b: !!int \"300\"\n", "t.yml").unwrap_err();
        assert_eq!(
            e.message,
            "The scalar style 'DoubleQuoted' on line 2 and column 6 is not valid with the tag 'tag:yaml.org,2002:int'"
        );
        assert_eq!(e.location, None);
        let e = parse("a: !!bool 'true'\n", "t.yml").unwrap_err();
        assert!(
            e.message
                .starts_with("The scalar style 'SingleQuoted' on line 1 and column 4"),
            "{e}"
        );
        assert!(parse("a: !!str 'x'\nb: !!int 3\n", "t.yml").is_ok());
    }

    #[test]
    fn a_comment_right_after_a_flow_collection_is_a_comment() {
        let n = parse_ok("a: [one]#, two ]\nb: {k: v}#x\nc: 'q#r'\n");
        let a = n.get("a").unwrap().as_sequence().unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].as_str(), Some("one"));
        assert_eq!(n.get("b").unwrap().get("k").unwrap().as_str(), Some("v"));
        assert_eq!(n.get("c").unwrap().as_str(), Some("q#r"));
        assert_eq!(n.get("c").unwrap().location, Location::new(3, 4));
    }

    fn nested(depth: usize) -> String {
        let mut text = String::new();
        for i in 0..depth {
            text.push_str(&" ".repeat(i * 2));
            text.push_str("k:\n");
        }
        text.push_str(&" ".repeat(depth * 2));
        text.push_str("v\n");
        text
    }

    #[test]
    fn deep_documents_are_rejected_without_exhausting_the_stack() {
        // 8 MiB is a Linux main thread's stack, where the CLI parses; an unoptimised
        // build with serde-saphyr's `comments` feature (which kube-client turns on in the
        // workspace) needs more than 2 MiB for 50 levels. The point is that depth is
        // bounded: a document 100,000 levels deep is refused, not followed down.
        let ok = std::thread::Builder::new()
            .stack_size(8 * 1024 * 1024)
            .spawn(|| {
                assert!(parse(&nested(MAX_DEPTH), "t.yml").is_ok());
                let very_deep = format!("{}{}\n", "[".repeat(100_000), "]".repeat(100_000));
                assert!(parse(&very_deep, "t.yml").is_err());
                parse(&nested(MAX_DEPTH + 1), "t.yml").unwrap_err()
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(ok.message, "Maximum object depth exceeded");
        assert_eq!(ok.location, None);
    }

    #[test]
    fn to_value_converts_plain_data() {
        let v = parse_ok("a: [1, 'x', null]\nB: {c: true}\n").to_value();
        assert_eq!(
            v.to_json().to_string(),
            r#"{"a":[1,"x",null],"B":{"c":true}}"#
        );
    }

    #[test]
    fn empty_text_is_null() {
        assert!(parse_ok("").is_null());
        assert!(parse_ok("# only a comment\n").is_null());
    }
}
