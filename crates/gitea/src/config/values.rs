//! The value types of the configuration that need more than serde's defaults: Go-style
//! durations (`3h`, `1m30s`, `500ms`, as act_runner writes them), log levels, and the
//! Kaniko context mode by name. Each parses from a string so a YAML value and an
//! environment variable go through the same rule, and each fails with a message that
//! names the values it accepts.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use hr_image::kaniko::ContextMode;

/// Why a configuration value (from the file or an environment variable) cannot be read;
/// each message names what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error(
        "{text:?} is not a duration; write it like 30s, 5m, 3h or 1h30m (units ns, us, ms, s, m, h)"
    )]
    Duration { text: String },
    #[error("{text:?} is not a log level; use trace, debug, info, warn or error")]
    LogLevel { text: String },
    #[error("{text:?} is not a context mode; use auto, configmap, pvc or stdin")]
    ContextMode { text: String },
    #[error("{text:?} is not a whole number")]
    WholeNumber { text: String },
    #[error("{text:?} is not a boolean; use true or false")]
    Boolean { text: String },
    #[error("{pair:?} is not key=value; write pairs as k=v,k2=v2")]
    KeyValue { pair: String },
    #[error("{text:?} is not an address; write it as host-ip:port")]
    Address { text: String },
    #[error("{text:?} is not a number of seconds")]
    Seconds { text: String },
    #[error("{text:?} is not a port (0 to 65535)")]
    Port { text: String },
    #[error("{text:?} is not a size; write it like 10GiB, 500MiB or a number of bytes")]
    Size { text: String },
}

/// Parses a Go duration: one or more `<number><unit>` (units `ns`, `us`, `µs`, `ms`, `s`,
/// `m`, `h`; the number may have a fraction), or a bare `0`.
pub fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    hr_engine::pod::docker_options::parse_duration(text).ok_or_else(|| ValueError::Duration {
        text: text.trim().to_string(),
    })
}

/// Writes a duration the way [`parse_duration`] reads it, in the largest exact units
/// (`3h`, `1h30m`, `2s`, `500ms`, `0s`).
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_string();
    }
    if duration.subsec_nanos() != 0 {
        return if duration.subsec_nanos().is_multiple_of(1_000_000) {
            format!("{}ms", duration.as_millis())
        } else {
            format!("{}ns", duration.as_nanos())
        };
    }
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if value > 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    out
}

/// How much the runner's own diagnostics say (act_runner's `log.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// Accepts act_runner's logrus names too (`warning`, `fatal`, `panic`).
    pub fn parse(text: &str) -> Result<LogLevel, ValueError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "trace" => Ok(LogLevel::Trace),
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "error" | "fatal" | "panic" => Ok(LogLevel::Error),
            other => Err(ValueError::LogLevel {
                text: other.to_string(),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Parses a context mode by the name [`ContextMode::as_str`] gives it.
pub fn parse_context_mode(text: &str) -> Result<ContextMode, ValueError> {
    [
        ContextMode::Auto,
        ContextMode::ConfigMap,
        ContextMode::Pvc,
        ContextMode::Stdin,
    ]
    .into_iter()
    .find(|m| m.as_str() == text.trim())
    .ok_or_else(|| ValueError::ContextMode {
        text: text.to_string(),
    })
}

/// A value read from a string by `parse`, with the parse error reported by serde (and so
/// by serde-saphyr with the value's line and column).
pub(crate) fn from_str<'de, D, T, E>(
    deserializer: D,
    parse: fn(&str) -> Result<T, E>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    E: std::fmt::Display,
{
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases = [
            ("3h", 10800.0),
            ("0s", 0.0),
            ("0", 0.0),
            ("1h30m", 5400.0),
            ("500ms", 0.5),
            ("1.5s", 1.5),
            ("2m3s", 123.0),
        ];
        for (text, secs) in cases {
            assert_eq!(parse_duration(text).unwrap().as_secs_f64(), secs, "{text}");
        }
        for bad in ["", "3", "h", "3d", "1h-2m", "abc", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn value_errors_keep_their_wording() {
        assert_eq!(
            parse_duration(" 3d ").unwrap_err().to_string(),
            "\"3d\" is not a duration; write it like 30s, 5m, 3h or 1h30m (units ns, us, ms, s, m, h)"
        );
        assert_eq!(
            LogLevel::parse(" LOUD").unwrap_err().to_string(),
            "\"loud\" is not a log level; use trace, debug, info, warn or error"
        );
        assert_eq!(
            parse_context_mode("tar").unwrap_err().to_string(),
            "\"tar\" is not a context mode; use auto, configmap, pvc or stdin"
        );
    }

    #[test]
    fn durations_format_back() {
        for text in ["3h", "0s", "1h30m", "500ms", "5s", "2h0m1s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d, "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn log_levels_and_context_modes() {
        assert_eq!(LogLevel::parse("WARNING").unwrap(), LogLevel::Warn);
        assert!(
            LogLevel::parse("loud")
                .unwrap_err()
                .to_string()
                .contains("trace, debug")
        );
        assert_eq!(parse_context_mode("pvc").unwrap(), ContextMode::Pvc);
        assert!(parse_context_mode("tarball").is_err());
    }
}
