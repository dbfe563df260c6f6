//! Workflow commands a step prints on its output (`::error file=a.rs,line=3::boom`).
//!
//! Follows the GitHub runner's `ActionCommandManager`:
//! - a line is a command when, after its leading whitespace, it reads
//!   `::name key=value,key2=value2::data`; the name ends at the first space, the properties
//!   (split on `,`, each on its first `=`, empty pieces dropped) run up to the first `::` after
//!   the opening one, and the data is everything after that `::` (it may contain `::`);
//! - when that fails, the legacy form `##[name key=value;key2=value2]data` is tried, as the
//!   runner still does: like the runner, it is found anywhere in the line (`log: ##[error]x`
//!   is an error), and it has its own escapes (`%3B`, `%0D`, `%0A`, `%5D`, `%25`);
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
        // Like the runner, a line is a command only under a name it knows (the stop token
        // included while stopped); otherwise the legacy form gets its chance.
        let known = |raw: &RawCommand<'_>| {
            KNOWN_COMMANDS
                .iter()
                .any(|c| c.eq_ignore_ascii_case(raw.name))
                || self
                    .stop_token
                    .as_ref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(raw.name))
        };
        let raw = split_v2(line)
            .filter(known)
            .or_else(|| split_legacy(line).filter(known))?;
        if let Some(token) = &self.stop_token {
            if raw.name.eq_ignore_ascii_case(token) {
                self.stop_token = None;
                return Some(Command::ResumeCommands);
            }
            return None;
        }
        let command = interpret(raw)?;
        if let Command::StopCommands(token) = &command
            && stop_token_is_valid(token)
        {
            self.stop_token = Some(token.clone());
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

/// Legacy `##[name props]data`, anywhere in the line.
fn split_legacy(line: &str) -> Option<RawCommand<'_>> {
    let rest = &line[line.find("##[")? + 3..];
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
        "echo" => match raw.data.trim().to_ascii_lowercase().as_str() {
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
    let drop_columns = line.is_none() || end_line.is_some_and(|end| Some(end) != line);
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
/// The legacy `##[...]` form's escapes.
const LEGACY_ESCAPES: &[(char, &str)] = &[
    ('%', "%25"),
    (';', "%3B"),
    ('\r', "%0D"),
    ('\n', "%0A"),
    (']', "%5D"),
];

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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Option<Command> {
        CommandParser::new().parse_line(line)
    }

    fn annotation_of(line: &str) -> Annotation {
        match parse(line) {
            Some(Command::Annotation(a)) => a,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn simple_commands() {
        assert_eq!(
            parse("::add-mask::hunter2"),
            Some(Command::AddMask("hunter2".into()))
        );
        assert_eq!(
            parse("::group::Build"),
            Some(Command::Group("Build".into()))
        );
        assert_eq!(parse("::endgroup::"), Some(Command::EndGroup));
        assert_eq!(parse("::debug::x=1"), Some(Command::Debug("x=1".into())));
        assert_eq!(
            parse("::add-path::/zip"),
            Some(Command::AddPath("/zip".into()))
        );
        assert_eq!(parse("::echo::on"), Some(Command::Echo(true)));
        assert_eq!(parse("::echo::OFF"), Some(Command::Echo(false)));
        assert_eq!(parse("::echo:: on "), Some(Command::Echo(true)));
    }

    #[test]
    fn ordinary_lines_are_not_commands() {
        for line in [
            "",
            "hello",
            ": :debug::x",
            "::debug",
            "x ::debug::y",
            ":: debug::x",
            "::unknown::x",
            "::add-matcher::m.json",
            "::echo::maybe",
            "##[debug",
        ] {
            assert_eq!(parse(line), None, "{line:?}");
        }
    }

    #[test]
    fn leading_whitespace_is_allowed_and_trailing_cr_dropped() {
        assert_eq!(parse("   \t::debug::hi"), Some(Command::Debug("hi".into())));
        assert_eq!(parse("::debug::hi\r"), Some(Command::Debug("hi".into())));
    }

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(parse("::DEBUG::x"), Some(Command::Debug("x".into())));
        assert_eq!(
            parse("::Set-Output NAME=a::b"),
            Some(Command::SetOutput {
                name: "a".into(),
                value: "b".into()
            })
        );
    }

    #[test]
    fn data_may_contain_double_colons() {
        assert_eq!(
            parse("::debug::a::b::"),
            Some(Command::Debug("a::b::".into()))
        );
        assert_eq!(parse("::group::"), Some(Command::Group(String::new())));
    }

    #[test]
    fn deprecated_name_value_commands() {
        assert_eq!(
            parse("::set-output name=zoo::zar"),
            Some(Command::SetOutput {
                name: "zoo".into(),
                value: "zar".into()
            })
        );
        assert_eq!(
            parse("::save-state name=pid::42"),
            Some(Command::SaveState {
                name: "pid".into(),
                value: "42".into()
            })
        );
        assert_eq!(
            parse("::set-env name=foo::bar"),
            Some(Command::SetEnv {
                name: "foo".into(),
                value: "bar".into()
            })
        );
        // The value is the data, escaped like data; the name is a property.
        assert_eq!(
            parse("::set-output name=a%3Ab::line1%0Aline2%25"),
            Some(Command::SetOutput {
                name: "a:b".into(),
                value: "line1\nline2%".into()
            })
        );
        // No name: not a command GitHub can run.
        assert_eq!(parse("::set-output::v"), None);
        assert_eq!(parse("::set-env nam=x::v"), None);
    }

    #[test]
    fn annotation_with_every_property() {
        let a = annotation_of(
            "::error file=app.js,line=1,endLine=1,col=5,endColumn=7,title=A%2C B%3A C::Missing semicolon",
        );
        assert_eq!(
            a,
            Annotation {
                level: AnnotationLevel::Error,
                message: "Missing semicolon".into(),
                title: Some("A, B: C".into()),
                file: Some("app.js".into()),
                line: Some(1),
                end_line: Some(1),
                col: Some(5),
                end_column: Some(7),
            }
        );
        assert_eq!(
            annotation_of("::warning::w").level,
            AnnotationLevel::Warning
        );
        assert_eq!(annotation_of("::notice::n").level, AnnotationLevel::Notice);
    }

    #[test]
    fn annotation_property_names_ignore_case_and_spaces_around_list() {
        let a = annotation_of("::warning  FILE=a.rs,LINE=3,ENDLINE=3,Col=2 ::msg");
        assert_eq!(a.file.as_deref(), Some("a.rs"));
        assert_eq!((a.line, a.end_line, a.col), (Some(3), Some(3), Some(2)));
    }

    #[test]
    fn annotation_without_properties_or_message() {
        let a = annotation_of("::error::");
        assert_eq!(a.message, "");
        assert_eq!((a.file, a.line, a.col, a.title), (None, None, None, None));
    }

    #[test]
    fn annotation_bad_numbers_are_dropped() {
        let a = annotation_of("::error file=f,line=abc,col=-1::m");
        assert_eq!((a.line, a.col), (None, None));
        assert_eq!(a.file.as_deref(), Some("f"));
    }

    #[test]
    fn annotation_end_line_alone_becomes_line() {
        let a = annotation_of("::error endLine=9::m");
        assert_eq!((a.line, a.end_line), (Some(9), Some(9)));
    }

    #[test]
    fn annotation_end_column_alone_becomes_column() {
        let a = annotation_of("::error line=2,endColumn=4::m");
        assert_eq!((a.col, a.end_column), (Some(4), Some(4)));
    }

    #[test]
    fn annotation_columns_need_a_line() {
        let a = annotation_of("::error col=3,endColumn=5::m");
        assert_eq!((a.line, a.col, a.end_column), (None, None, None));
    }

    #[test]
    fn annotation_columns_dropped_across_lines() {
        let a = annotation_of("::error line=2,endLine=4,col=3,endColumn=5::m");
        assert_eq!((a.line, a.end_line), (Some(2), Some(4)));
        assert_eq!((a.col, a.end_column), (None, None));
    }

    #[test]
    fn property_pieces_without_key_or_value_are_ignored() {
        let a = annotation_of("::error file=,=x,,line=3,title==eq::m");
        assert_eq!(a.file, None);
        assert_eq!(a.line, Some(3));
        // Split on the first `=`: the title is "=eq".
        assert_eq!(a.title.as_deref(), Some("=eq"));
    }

    #[test]
    fn later_duplicate_property_wins() {
        let a = annotation_of("::error file=a,file=b::m");
        assert_eq!(a.file.as_deref(), Some("b"));
    }

    #[test]
    fn message_is_unescaped_as_data_only() {
        let a = annotation_of("::error title=x%3Ay::a%3Ab%2Cc%0D%0Ad");
        assert_eq!(a.title.as_deref(), Some("x:y"));
        assert_eq!(a.message, "a%3Ab%2Cc\r\nd");
    }

    #[test]
    fn legacy_form() {
        assert_eq!(parse("##[debug]hi"), Some(Command::Debug("hi".into())));
        assert_eq!(parse("  ##[group]G"), Some(Command::Group("G".into())));
        assert_eq!(
            parse("##[set-output name=a;]x%3By%5Dz"),
            Some(Command::SetOutput {
                name: "a".into(),
                value: "x;y]z".into()
            })
        );
        let a = annotation_of("##[warning file=a.c;line=4]careful");
        assert_eq!((a.file.as_deref(), a.line), (Some("a.c"), Some(4)));
        assert_eq!(a.message, "careful");
        assert_eq!(parse("##[section]Starting"), None);
        // Anywhere in the line, like the runner's legacy parser.
        assert_eq!(
            parse("log: ##[debug]x%25y"),
            Some(Command::Debug("x%y".into()))
        );
        // An unknown `::` name leaves the line to the legacy form.
        assert_eq!(
            parse("::nope:: ##[debug]d"),
            Some(Command::Debug("d".into()))
        );
        // The `::` form wins when both are present.
        assert_eq!(
            parse("::debug::a ##[error]b"),
            Some(Command::Debug("a ##[error]b".into()))
        );
    }

    #[test]
    fn stop_commands_and_resume() {
        let mut p = CommandParser::new();
        assert_eq!(
            p.parse_line("::stop-commands::my-end-token"),
            Some(Command::StopCommands("my-end-token".into()))
        );
        assert!(p.is_stopped());
        assert_eq!(p.parse_line("::set-env name=foo::baz"), None);
        assert_eq!(p.parse_line("::stop-commands::other"), None);
        assert_eq!(p.parse_line("::error::x"), None);
        assert_eq!(p.parse_line("plain"), None);
        assert_eq!(
            p.parse_line("::my-end-token::"),
            Some(Command::ResumeCommands)
        );
        assert!(!p.is_stopped());
        assert_eq!(
            p.parse_line("::set-env name=foo::baz"),
            Some(Command::SetEnv {
                name: "foo".into(),
                value: "baz".into()
            })
        );
        // The token is a one-shot command name: afterwards it is unknown again.
        assert_eq!(p.parse_line("::my-end-token::"), None);
    }

    #[test]
    fn resume_token_ignores_case_data_and_may_be_legacy() {
        let mut p = CommandParser::new();
        p.parse_line("::stop-commands::Tok123");
        assert_eq!(
            p.parse_line("::tok123::trailing"),
            Some(Command::ResumeCommands)
        );
        p.parse_line("::stop-commands::Tok123");
        assert_eq!(p.parse_line("##[Tok123]"), Some(Command::ResumeCommands));
        p.parse_line("::stop-commands::Tok123");
        // Not the whole name: still stopped.
        assert_eq!(p.parse_line("::Tok12::"), None);
        assert_eq!(p.parse_line("Tok123"), None);
        assert!(p.is_stopped());
    }

    #[test]
    fn refused_stop_tokens_do_not_stop() {
        for token in ["", "set-env", "ERROR", "pause-logging"] {
            assert!(!stop_token_is_valid(token), "{token:?}");
            let mut p = CommandParser::new();
            assert_eq!(
                p.parse_line(&format!("::stop-commands::{token}")),
                Some(Command::StopCommands(token.into()))
            );
            assert!(!p.is_stopped(), "{token:?}");
            assert_eq!(
                p.parse_line("::debug::still"),
                Some(Command::Debug("still".into()))
            );
        }
        assert!(stop_token_is_valid("a1b2c3"));
    }

    #[test]
    fn data_escaping_round_trips() {
        for s in [
            "",
            "plain",
            "100%",
            "a\r\nb",
            "%0A literal",
            "%%25",
            "ü%\n:,",
        ] {
            assert_eq!(unescape_data(&escape_data(s)), s, "{s:?}");
            assert_eq!(unescape_property(&escape_property(s)), s, "{s:?}");
        }
        assert_eq!(escape_data("50%\r\n:,"), "50%25%0D%0A:,");
        assert_eq!(escape_property("50%\r\n:,"), "50%25%0D%0A%3A%2C");
    }

    #[test]
    fn unescape_is_single_pass_upper_case_only() {
        // `%250A` is an escaped `%` then `0A`, not a newline.
        assert_eq!(unescape_data("%250A"), "%0A");
        assert_eq!(unescape_data("%0a"), "%0a");
        assert_eq!(unescape_data("%zz%"), "%zz%");
        assert_eq!(unescape_data("%3A%2C"), "%3A%2C");
        assert_eq!(unescape_property("%3A%2C%3a"), ":,%3a");
    }

    #[test]
    fn act_commands_workflow_lines() {
        // The lines of act's testdata/commands workflow, in order.
        let mut p = CommandParser::new();
        let lines = [
            "::debug file=app.js,line=100,col=20::Hello debug!",
            "::warning file=app.js,line=100,col=20::Hello warning!",
            "::error file=app.js,line=100,col=30::Hello error!",
            "::stop-commands::my-end-token",
        ];
        assert_eq!(
            p.parse_line(lines[0]),
            Some(Command::Debug("Hello debug!".into()))
        );
        let Some(Command::Annotation(w)) = p.parse_line(lines[1]) else {
            panic!("warning expected")
        };
        assert_eq!(
            (w.line, w.col, w.message.as_str()),
            (Some(100), Some(20), "Hello warning!")
        );
        let Some(Command::Annotation(e)) = p.parse_line(lines[2]) else {
            panic!("error expected")
        };
        assert_eq!(e.col, Some(30));
        assert_eq!(
            p.parse_line(lines[3]),
            Some(Command::StopCommands("my-end-token".into()))
        );
        assert_eq!(p.parse_line("::set-env name=foo::baz"), None);
        assert_eq!(
            p.parse_line("::my-end-token::"),
            Some(Command::ResumeCommands)
        );
        assert!(matches!(
            p.parse_line("::set-env name=foo::baz"),
            Some(Command::SetEnv { .. })
        ));
    }
}
