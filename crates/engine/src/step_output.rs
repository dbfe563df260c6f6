//! A step's output lines as events ([`OutputReader`]): plain lines are logged, workflow
//! commands (`::add-mask::`, `::group::`, annotations, `::set-output` ...) are applied.
//!
//! A line longer than [`hr_process::lines::MAX_LINE`] arrives in pieces; each piece is held
//! until the next one is there, so a secret across the cut is masked on both sides
//! ([`crate::mask::Masker::mask_piece`]). The reader is the process's
//! [`OutputSink`]: its pipes wait for room in the event budget.

use hr_process::budget::{OutputBudget, OutputSink};
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
    /// Per stream (stdout, stderr), the piece of a cut line waiting for its next piece.
    pub(crate) held: [Option<HeldPiece>; 2],
}

/// A piece of a cut line, not logged yet, and how many of its first bytes the previous
/// piece's `***` covered.
#[derive(Debug, Default)]
pub(crate) struct HeldPiece {
    text: String,
    skip: usize,
}

impl OutputSink for OutputReader<'_, '_> {
    fn line(&mut self, stream: OutputStream, line: &str, continued: bool) {
        self.read_line(stream, line, continued);
    }

    fn budget(&self) -> Option<&OutputBudget> {
        Some(self.state.engine.sink.budget())
    }
}

fn slot(stream: OutputStream) -> usize {
    match stream {
        OutputStream::Stdout => 0,
        OutputStream::Stderr => 1,
    }
}

fn log_kind(stream: OutputStream) -> LogKind {
    match stream {
        OutputStream::Stdout => LogKind::Stdout,
        OutputStream::Stderr => LogKind::Stderr,
    }
}

impl OutputReader<'_, '_> {
    /// Logs the pieces still held (the process ended in the middle of a cut line).
    pub(crate) fn finish(&mut self) {
        for stream in [OutputStream::Stdout, OutputStream::Stderr] {
            self.log_piece(stream, None);
        }
    }

    /// Logs the held piece of `stream`, masked together with `next` (the piece after it),
    /// and returns how many bytes of `next` its `***` covers.
    fn log_piece(&mut self, stream: OutputStream, next: Option<&str>) -> usize {
        let Some(held) = self.held[slot(stream)].take() else {
            return 0;
        };
        let (masked, carry) =
            self.state
                .masker
                .mask_piece(&held.text, held.skip, next.unwrap_or(""));
        self.state
            .log_masked(Some(self.key), log_kind(stream), masked);
        carry
    }

    fn read_line(&mut self, stream: OutputStream, line: &str, continued: bool) {
        let following = self.held[slot(stream)].is_some();
        let command = if following {
            None
        } else {
            self.parser.parse_line(line)
        };
        let Some(command) = command else {
            let skip = self.log_piece(stream, Some(line));
            if continued || skip > 0 {
                self.held[slot(stream)] = Some(HeldPiece {
                    text: line.to_owned(),
                    skip,
                });
                if !continued {
                    self.log_piece(stream, None);
                }
            } else {
                self.state.note(Some(self.key), log_kind(stream), line);
            }
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
                    file: a.file.map(|f| self.state.masker.mask(&f).into_owned()),
                    line: a.line,
                    col: a.col,
                    from_runner: false,
                },
            }),
            // Without step debug GitHub writes `::debug::` lines nowhere, not even to the
            // raw log: they do not become events either (unless `exec -v` asks for them).
            Command::Debug(message) if self.state.engine.debug || self.state.engine.debug_lines => {
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
