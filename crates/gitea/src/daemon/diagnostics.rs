//! The daemon's own diagnostics on stderr: a small `tracing` subscriber that prints each
//! event as one line, `<UTC time> <LEVEL> <target>: <message> key=value ...`, filtered by
//! `log.level` for this crate and at warn for every other crate (their debug output may
//! carry request details). Spans are accepted and not printed; events carry the ids
//! (`task = 42`) themselves. The user's job log never goes through here.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::config::LogLevel;

/// Prints events to stderr.
#[derive(Debug)]
pub struct StderrLog {
    own: Level,
    others: Level,
    next_span: AtomicU64,
}

impl StderrLog {
    pub fn new(level: LogLevel) -> StderrLog {
        let own = match level {
            LogLevel::Trace => Level::TRACE,
            LogLevel::Debug => Level::DEBUG,
            LogLevel::Info => Level::INFO,
            LogLevel::Warn => Level::WARN,
            LogLevel::Error => Level::ERROR,
        };
        StderrLog {
            own,
            // `Level` orders ERROR lowest: the stricter of warn and the own level.
            others: own.min(Level::WARN),
            next_span: AtomicU64::new(1),
        }
    }

    /// Makes this the process's subscriber; a second call (tests) keeps the first.
    pub fn install(self) {
        let _ = tracing::subscriber::set_global_default(self);
    }

    fn limit(&self, target: &str) -> Level {
        // Our crates: the binary and the `hr_*` libraries (targets are module paths).
        if target.starts_with("hybrid_runner") || target.starts_with("hr_") {
            self.own
        } else {
            self.others
        }
    }
}

impl Subscriber for StderrLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.limit(metadata.target())
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::from_level(self.own))
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed).max(1))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let line = format_event(event, SystemTime::now());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// An error and its causes on one line (`outer: cause: root cause`), for log fields.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One event as printed, newline-terminated.
fn format_event(event: &Event<'_>, now: SystemTime) -> String {
    let mut fields = Fields::default();
    event.record(&mut fields);
    let meta = event.metadata();
    let mut line = format!(
        "{} {:>5} {}: {}",
        hr_cluster::time::rfc3339(now),
        meta.level(),
        meta.target(),
        fields.message
    );
    line.push_str(&fields.rest);
    line.push('\n');
    line
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_filter_own_and_other_crates() {
        let log = StderrLog::new(LogLevel::Debug);
        assert_eq!(log.limit("hr_gitea::daemon"), Level::DEBUG);
        assert_eq!(log.limit("hr_engine::step"), Level::DEBUG);
        assert_eq!(log.limit("hybrid_runner::cli"), Level::DEBUG);
        assert_eq!(log.limit("hyper::client"), Level::WARN);
        let quiet = StderrLog::new(LogLevel::Error);
        assert_eq!(quiet.limit("kube"), Level::ERROR);
    }

    #[test]
    fn an_event_prints_as_one_line_with_its_fields() {
        struct Capture(std::sync::Mutex<Vec<String>>);
        impl Subscriber for Capture {
            fn enabled(&self, _: &Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &Attributes<'_>) -> Id {
                Id::from_u64(1)
            }
            fn record(&self, _: &Id, _: &Record<'_>) {}
            fn record_follows_from(&self, _: &Id, _: &Id) {}
            fn event(&self, event: &Event<'_>) {
                let at = SystemTime::UNIX_EPOCH;
                self.0.lock().unwrap().push(format_event(event, at));
            }
            fn enter(&self, _: &Id) {}
            fn exit(&self, _: &Id) {}
        }
        let capture = std::sync::Arc::new(Capture(Default::default()));
        let dispatch = tracing::Dispatch::from(std::sync::Arc::clone(&capture));
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::warn!(task = 42, error = "refused", "cannot fetch tasks");
        });
        let lines = capture.0.lock().unwrap().clone();
        assert_eq!(
            lines,
            [
                "1970-01-01T00:00:00Z  WARN hr_gitea::daemon::diagnostics::tests: cannot fetch tasks task=42 error=\"refused\"\n"
            ]
        );
    }
}
