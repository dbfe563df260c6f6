//! STAND-IN until the workflow-command parser lands (helper branch `wcmd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    AddMask(String),
    Group(String),
    EndGroup,
    Annotation(Annotation),
    Debug(String),
    StopCommands(String),
    ResumeCommands,
    SetOutput { name: String, value: String },
    SaveState { name: String, value: String },
    SetEnv { name: String, value: String },
    AddPath(String),
    Echo(bool),
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationLevel {
    Error,
    Warning,
    Notice,
}
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
#[derive(Debug, Default)]
pub struct CommandParser {}
impl CommandParser {
    pub fn new() -> Self {
        CommandParser {}
    }
    pub fn parse_line(&mut self, line: &str) -> Option<Command> {
        let rest = line.strip_prefix("::")?;
        let (head, data) = rest.split_once("::")?;
        match head {
            "add-mask" => Some(Command::AddMask(data.to_string())),
            "group" => Some(Command::Group(data.to_string())),
            "endgroup" => Some(Command::EndGroup),
            _ => None,
        }
    }
}
