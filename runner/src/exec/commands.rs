//! Workflow commands a step prints on its output (`::error file=a.rs,line=3::boom`).
//!
//! Follows the GitHub runner's `ActionCommandManager`:
//! - a line is a command when, after its leading whitespace, it reads
//!   `::name key=value,key2=value2::data`; the name ends at the first space, the properties
//!   (split on `,`, each on its first `=`, empty pieces dropped) run up to the first `::` after
//!   the opening one, and the data is everything after that `::` (it may contain `::`);
//! - the legacy form `##[name key=value;key2=value2]data` is accepted too, as the runner still
//!   does, with its own escapes (`%3B`, `%0D`, `%0A`, `%5D`);
//! - command and property names are matched without regard to case;
//! - unknown names (`add-matcher` and `remove-matcher` included, which we do not implement)
//!   and malformed lines are ordinary output (`None`);
//! - a single trailing `\r` (output written with CRLF) is not part of the data;
//! - `::stop-commands::TOKEN` stops every command until a line `::TOKEN::` (or `##[TOKEN]`);
//!   a token that is empty or a command name is refused by GitHub: the parser then reports
//!   [`Command::StopCommands`] but keeps processing commands (see [`stop_token_is_valid`]).


/// One workflow command read from a step's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `::add-mask::value`: mask this value in every later log line.
    AddMask(String),
    /// `::group::title`: start a folded log group.
    Group(String),
    /// `::endgroup::`.
    EndGroup,
    /// `::error`, `::warning` and `::notice`.
    Annotation(Annotation),
    /// `::debug::message`.
    Debug(String),
    /// `::stop-commands::token`: commands are ignored until `::token::`.
    StopCommands(String),
    /// The line `::token::` that ends a `stop-commands`.
    ResumeCommands,
    /// Deprecated `::set-output name=x::value`.
    SetOutput { name: String, value: String },
    /// Deprecated `::save-state name=x::value`.
    SaveState { name: String, value: String },
    /// `::set-env name=x::value`: GitHub refuses it (the engine reports the refusal).
    SetEnv { name: String, value: String },
    /// `::add-path::dir`: refused like `set-env`.
    AddPath(String),
    /// `::echo::on` / `::echo::off`: whether command lines are echoed in the log.
    Echo(bool),
}

/// The severity of an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationLevel {
    Error,
    Warning,
    Notice,
}

/// An `::error`, `::warning` or `::notice` command, its positions checked like GitHub's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub level: AnnotationLevel,
    pub message: String,
    pub title: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub end_line: Option<u32>,
    pub col: Option<u32>,
    pub end_column: Option<u32>,
}

/// Command names GitHub's runner knows; a stop token may not be one of them.
const KNOWN_COMMANDS: &[&str] = &[
    "add-mask",
    "add-matcher",
    "add-path",
    "debug",
    "echo",
    "endgroup",
    "error",
    "group",
    "notice",
    "remove-matcher",
    "save-state",
    "set-env",
    "set-output",
    "stop-commands",
    "warning",
];

/// Whether GitHub accepts `token` for `::stop-commands::` (not empty, not a command name,
/// not `pause-logging`). The runner fails the step for a refused token unless
/// `ACTIONS_ALLOW_UNSECURE_STOP_COMMANDS` is set.
pub fn stop_token_is_valid(token: &str) -> bool {
    !token.is_empty()
        && !token.eq_ignore_ascii_case("pause-logging")
        && !KNOWN_COMMANDS.iter().any(|c| c.eq_ignore_ascii_case(token))
}

/// Reads workflow commands from a step's output lines, keeping `::stop-commands::` state.
#[derive(Debug, Default)]
pub struct CommandParser {
    stop_token: Option<String>,
}

/// A command line split into its name, properties and data, before unescaping meaning.
struct RawCommand<'a> {
    name: &'a str,
    properties: Vec<(&'a str, String)>,
    data: String,
}

impl RawCommand<'_> {
    fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

impl CommandParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a `::stop-commands::` is in force.
    pub fn is_stopped(&self) -> bool {
        self.stop_token.is_some()
    }

    /// The command on `line`, or None for an ordinary line (or any command while stopped,
    /// except the resume token line, which gives ResumeCommands).
    pub fn parse_line(&mut self, line: &str) -> Option<Command> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let raw = split_v2(line).or_else(|| split_legacy(line))?;
        if let Some(token) = &self.stop_token {
            if raw.name.eq_ignore_ascii_case(token) {
                self.stop_token = None;
                return Some(Command::ResumeCommands);
            }
            return None;
        }
        let command = interpret(raw)?;
        if let Command::StopCommands(token) = &command {
            if stop_token_is_valid(token) {
                self.stop_token = Some(token.clone());
            }
        }
        Some(command)
    }
}

/// `::name props::data`, after leading whitespace.
fn split_v2(line: &str) -> Option<RawCommand<'_>> {
    let rest = line.trim_start().strip_prefix("::")?;
    let end = rest.find("::")?;
    let (info, data) = (&rest[..end], &rest[end + 2..]);
    let (name, props) = split_name(info);
    let properties = split_properties(props.trim(), ',', unescape_property);
    Some(RawCommand {
        name,
        properties,
        data: unescape_data(data),
    })
}

/// Legacy `##[name props]data`, after leading whitespace.
fn split_legacy(line: &str) -> Option<RawCommand<'_>> {
    let rest = line.trim_start().strip_prefix("##[")?;
    let end = rest.find(']')?;
    let (info, data) = (&rest[..end], &rest[end + 1..]);
    let (name, props) = split_name(info);
    let properties = split_properties(props, ';', unescape_legacy);
    Some(RawCommand {
        name,
        properties,
        data: unescape_legacy(data),
    })
}

fn split_name(info: &str) -> (&str, &str) {
    match info.find(' ') {
        Some(space) => (&info[..space], &info[space + 1..]),
        None => (info, ""),
    }
}

fn split_properties(props: &str, sep: char, unescape: fn(&str) -> String) -> Vec<(&str, String)> {
    props
        .split(sep)
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (key, value) = p.split_once('=')?;
            (!key.is_empty() && !value.is_empty()).then(|| (key, unescape(value)))
        })
        .collect()
}

fn interpret(raw: RawCommand<'_>) -> Option<Command> {
    let name = raw.name.to_ascii_lowercase();
    let command = match name.as_str() {
        "add-mask" => Command::AddMask(raw.data),
        "group" => Command::Group(raw.data),
        "endgroup" => Command::EndGroup,
        "debug" => Command::Debug(raw.data),
        "stop-commands" => Command::StopCommands(raw.data),
        "add-path" => Command::AddPath(raw.data),
        "echo" => match raw.data.to_ascii_lowercase().as_str() {
            "on" => Command::Echo(true),
            "off" => Command::Echo(false),
            _ => return None,
        },
        "set-output" | "save-state" | "set-env" => {
            let name = raw.property("name")?.to_string();
            let value = raw.data;
            match raw.name.to_ascii_lowercase().as_str() {
                "set-output" => Command::SetOutput { name, value },
                "save-state" => Command::SaveState { name, value },
                _ => Command::SetEnv { name, value },
            }
        }
        "error" => Command::Annotation(annotation(AnnotationLevel::Error, &raw)),
        "warning" => Command::Annotation(annotation(AnnotationLevel::Warning, &raw)),
        "notice" => Command::Annotation(annotation(AnnotationLevel::Notice, &raw)),
        _ => return None,
    };
    Some(command)
}

/// Builds an annotation, repairing its positions as GitHub's runner does: an `endLine`
/// without `line` becomes the line, an `endColumn` without `col` becomes the column, columns
/// without a line or across several lines are dropped.
fn annotation(level: AnnotationLevel, raw: &RawCommand<'_>) -> Annotation {
    let number = |key: &str| raw.property(key).and_then(|v| v.trim().parse::<u32>().ok());
    let mut line = number("line");
    let end_line = number("endLine");
    let mut col = number("col");
    let mut end_column = number("endColumn");
    if line.is_none() && end_line.is_some() {
        line = end_line;
    }
    if col.is_none() && end_column.is_some() {
        col = end_column;
    }
    let drop_columns = line.is_none()
        || end_line.is_some_and(|end| Some(end) != line);
    if drop_columns {
        col = None;
        end_column = None;
    }
    Annotation {
        level,
        message: raw.data.clone(),
        title: raw.property("title").map(str::to_string),
        file: raw.property("file").map(str::to_string),
        line,
        end_line,
        col,
        end_column,
    }
}

/// GitHub's escapes for command data: `%` `\r` `\n`.
const DATA_ESCAPES: &[(char, &str)] = &[('%', "%25"), ('\r', "%0D"), ('\n', "%0A")];
/// GitHub's escapes for command properties: the data ones plus `:` and `,`.
const PROPERTY_ESCAPES: &[(char, &str)] = &[
    ('%', "%25"),
    ('\r', "%0D"),
    ('\n', "%0A"),
    (':', "%3A"),
    (',', "%2C"),
];
/// The legacy `##[...]` form's escapes (no `%25`).
const LEGACY_ESCAPES: &[(char, &str)] = &[(';', "%3B"), ('\r', "%0D"), ('\n', "%0A"), (']', "%5D")];

fn escape_with(s: &str, table: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match table.iter().find(|(t, _)| *t == c) {
            Some((_, escaped)) => out.push_str(escaped),
            None => out.push(c),
        }
    }
    out
}

/// Decodes in one left-to-right pass; escapes are upper case only, as the runner's ordinal
/// replacements are, and an unknown `%xx` stays as written.
fn unescape_with(s: &str, table: &[(char, &str)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        match table.iter().find(|(_, escaped)| rest.starts_with(escaped)) {
            Some((c, escaped)) => {
                out.push(*c);
                rest = &rest[escaped.len()..];
            }
            None => {
                out.push('%');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes command data (`%` -> `%25`, CR -> `%0D`, LF -> `%0A`).
pub fn escape_data(s: &str) -> String {
    escape_with(s, DATA_ESCAPES)
}

/// Reverses [`escape_data`].
pub fn unescape_data(s: &str) -> String {
    unescape_with(s, DATA_ESCAPES)
}

/// Escapes a property value: as data, plus `:` -> `%3A` and `,` -> `%2C`.
pub fn escape_property(s: &str) -> String {
    escape_with(s, PROPERTY_ESCAPES)
}

/// Reverses [`escape_property`].
pub fn unescape_property(s: &str) -> String {
    unescape_with(s, PROPERTY_ESCAPES)
}

fn unescape_legacy(s: &str) -> String {
    unescape_with(s, LEGACY_ESCAPES)
}
