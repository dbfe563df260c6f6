//! A step's output lines as events ([`OutputReader`]): plain lines are logged, workflow
//! commands (`::add-mask::`, `::group::`, annotations, `::set-output` ...) are applied.

use hr_process::host::OutputStream;

use crate::commands::{AnnotationLevel, Command, CommandParser};
use crate::eval::upsert;
use crate::events::{AnnotationEvent, Event, LogKind, StepKey};
use crate::job::JobState;
use crate::step::level_name;

/// Turns a step's output lines into events, applying workflow commands.
pub(crate) struct OutputReader<'s, 'e> {
    pub(crate) state: &'s mut JobState<'e>,
    pub(crate) key: &'s StepKey,
    pub(crate) parser: CommandParser,
    pub(crate) outputs: Vec<(String, String)>,
    pub(crate) saved_state: Vec<(String, String)>,
    pub(crate) allow_unsecure: bool,
    /// A command was refused (`::set-env` without the opt-in): the step fails.
    pub(crate) command_failed: bool,
}

impl OutputReader<'_, '_> {
    pub(crate) fn line(&mut self, stream: OutputStream, line: &str) {
        let Some(command) = self.parser.parse_line(line) else {
            let kind = match stream {
                OutputStream::Stdout => LogKind::Stdout,
                OutputStream::Stderr => LogKind::Stderr,
            };
            self.state.note(Some(self.key), kind, line);
            return;
        };
        let job = self.state.key.clone();
        let sink = &self.state.engine.sink;
        match command {
            Command::AddMask(value) => self.state.masker.add(&value),
            Command::Group(title) => sink.send(Event::GroupStarted {
                job,
                step: self.key.clone(),
                title: self.state.masker.mask(&title).into_owned(),
            }),
            Command::EndGroup => sink.send(Event::GroupEnded {
                job,
                step: self.key.clone(),
            }),
            Command::Annotation(a) => sink.send(Event::Annotation {
                job,
                step: Some(self.key.clone()),
                annotation: AnnotationEvent {
                    level: level_name(a.level),
                    message: self.state.masker.mask(&a.message).into_owned(),
                    title: a.title.map(|t| self.state.masker.mask(&t).into_owned()),
                    file: a.file,
                    line: a.line,
                    col: a.col,
                },
            }),
            // Without step debug GitHub writes `::debug::` lines nowhere, not even to the
            // raw log: they do not become events either.
            Command::Debug(message) if self.state.engine.debug => {
                self.state.note(Some(self.key), LogKind::Debug, &message)
            }
            Command::Debug(_) => {}
            Command::StopCommands(_) | Command::ResumeCommands | Command::Echo(_) => {}
            Command::SetOutput { name, value } => {
                self.state.annotate(
                    Some(self.key),
                    AnnotationLevel::Warning,
                    "The `set-output` command is deprecated and will be disabled soon. Please upgrade to using Environment Files. For more information see: https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/",
                );
                upsert(&mut self.outputs, name, value);
            }
            Command::SaveState { name, value } => {
                self.state.annotate(
                    Some(self.key),
                    AnnotationLevel::Warning,
                    "The `save-state` command is deprecated and will be disabled soon. Please upgrade to using Environment Files. For more information see: https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/",
                );
                upsert(&mut self.saved_state, name, value);
            }
            Command::SetEnv { name, value } if self.allow_unsecure => {
                upsert(&mut self.state.env_file, name, value);
            }
            Command::AddPath(dir) if self.allow_unsecure => {
                self.state.path_prepends.retain(|d| *d != dir);
                self.state.path_prepends.insert(0, dir);
            }
            Command::SetEnv { .. } | Command::AddPath(_) => {
                let name = if matches!(command, Command::SetEnv { .. }) {
                    "set-env"
                } else {
                    "add-path"
                };
                self.state.annotate(
                    Some(self.key),
                    AnnotationLevel::Error,
                    &format!("Unable to process command '{line}' successfully."),
                );
                self.state.annotate(
                    Some(self.key),
                    AnnotationLevel::Error,
                    &format!(
                        "The `{name}` command is disabled. Please upgrade to using Environment Files or opt into unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to `true`. For more information see: https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/"
                    ),
                );
                self.command_failed = true;
            }
        }
    }
}
