//! GitHub's checks on `on:` that its strict schema makes and act's reading does not:
//! event names it knows, the filters and activity types each event takes, and five-field
//! cron strings. Gitea and Forgejo read `on:` as act does (see `docs/guide/dialects.md`),
//! so these checks run for the GitHub dialect only, and their remedies say when another
//! platform would accept what GitHub refuses.

use crate::diagnostic::Location;
use crate::yaml::{Node, NodeValue};

use super::dialect::Dialect;
use super::github_events::{Config, Types, github_event, github_event_names};
use super::reader::Reader;
use super::suggest::{did_you_mean, quoted_list};
use super::types::Located;

/// Events Gitea or Forgejo trigger on that GitHub has no event for.
const FORGE_ONLY_EVENTS: &[&str] = &[
    "pull_request_sync",
    "pull_request_assign",
    "pull_request_label",
    "pull_request_milestone",
    "pull_request_review_approved",
    "pull_request_review_rejected",
    "issue_assign",
    "issue_label",
    "issue_milestone",
];

/// Whether GitHub's rules apply to this reader's file.
fn strict(r: &Reader) -> bool {
    r.dialect == Dialect::Github
}

/// An event name: GitHub refuses names its schema lacks.
pub(crate) fn check_event_name(r: &mut Reader, name: &Located<String>) {
    if !strict(r) || github_event(&name.value).is_some() {
        return;
    }
    let names = github_event_names();
    let mut help = match super::suggest::closest(&name.value, names.iter().copied()) {
        Some(close) => format!("Did you mean '{close}'?"),
        None => "GitHub has no such event: https://docs.github.com/actions/reference/events-that-trigger-workflows lists them.".to_string(),
    };
    if FORGE_ONLY_EVENTS.contains(&name.value.as_str()) {
        help = format!(
            "'{}' is a Gitea and Forgejo event; {}. {help}",
            name.value,
            r.dialect.read_as()
        );
    }
    r.error(
        name.location,
        format!("Unexpected value '{}'", name.value),
        help,
    );
}

/// An event's value under `on:` (a mapping form): filters and activity types GitHub
/// knows for that event.
pub(crate) fn check_event_config(r: &mut Reader, name: &str, node: &Node) {
    if !strict(r) || node.is_null() {
        return;
    }
    let Some(event) = github_event(name) else {
        return;
    };
    match event.config {
        Config::Special => {}
        Config::Bare => {
            if !matches!(node.value, NodeValue::Mapping(_) | NodeValue::Sequence(_)) {
                return;
            }
            r.unexpected(
                node,
                format!("'{name}' takes no filters: write '{name}:' with nothing after it."),
            );
        }
        Config::Filters(keys) => {
            let Some(entries) = node.as_mapping() else {
                return;
            };
            for (key, value) in entries {
                let text = key.as_str().unwrap_or_default();
                if text == "types" && event.types != Types::None {
                    check_types(r, name, event.types, value);
                    continue;
                }
                if keys.contains(&text) {
                    continue;
                }
                let mut allowed: Vec<&str> = keys.to_vec();
                if event.types != Types::None {
                    allowed.push("types");
                }
                r.error(
                    key.location,
                    format!("Unexpected value '{text}'"),
                    format!(
                        "'{name}' filters on {}. {}",
                        if allowed.is_empty() {
                            "nothing".to_string()
                        } else {
                            quoted_list(&allowed)
                        },
                        did_you_mean(text, &allowed, "filters")
                    ),
                );
            }
        }
    }
}

fn check_types(r: &mut Reader, event: &str, types: Types, node: &Node) {
    let Types::Of(allowed) = types else {
        return;
    };
    let items: Vec<&Node> = match &node.value {
        NodeValue::Sequence(items) => items.iter().collect(),
        NodeValue::String(_) => vec![node],
        _ => return,
    };
    for item in items {
        let Some(text) = item.as_str() else {
            continue;
        };
        if !allowed.contains(&text) {
            r.error(
                item.location,
                format!("Unexpected value '{text}'"),
                format!(
                    "'{event}' has the activity types {}. {}",
                    quoted_list(allowed),
                    did_you_mean(text, allowed, "types")
                ),
            );
        }
    }
}

/// A schedule's `cron:`: GitHub takes five fields (minute hour day month weekday), with
/// `*`, lists, ranges, steps and month and weekday names, as `@actions/workflow-parser`'s
/// `isValidCron` checks them.
pub(crate) fn check_cron(r: &mut Reader, cron: &str, location: Location) {
    if r.dialect.is_forge() {
        if let Err(why) = forge_cron(cron) {
            r.error(
                location,
                format!("Invalid cron expression '{cron}': {why}"),
                "Gitea and Forgejo read schedules with robfig/cron's ParseStandard: five fields (minute hour day month weekday), a descriptor such as '@daily' or '@every 1h', optionally after 'TZ=Area/City '.",
            );
        }
        return;
    }
    if is_valid_cron(cron) {
        return;
    }
    let mut help =
        "Write five fields separated by spaces, like '30 5 * * 1-5' (05:30 UTC on weekdays)."
            .to_string();
    if cron.trim_start().starts_with('@') {
        help = format!(
            "'{}' is Gitea and Forgejo syntax; {}. {help}",
            cron.trim(),
            r.dialect.read_as()
        );
    }
    r.error(
        location,
        "Invalid cron expression. Expected format: '* * * * *' (minute hour day month weekday)",
        help,
    );
}

/// robfig/cron v3's `ParseStandard` (what Gitea's and Forgejo's
/// `models/actions/schedule_spec.go` parse with): an optional `TZ=`/`CRON_TZ=` zone, then a
/// descriptor (`@daily`, `@every 1h30m`, ...) or five fields, each a list of `*`, `?`,
/// numbers, names and ranges, with steps. The error says what robfig's would.
pub(crate) fn forge_cron(cron: &str) -> Result<(), String> {
    let mut spec = cron.trim();
    for prefix in ["TZ=", "CRON_TZ="] {
        if let Some(rest) = spec.strip_prefix(prefix) {
            let (zone, after) = rest
                .split_once(' ')
                .ok_or("missing the schedule after the time zone")?;
            if zone.is_empty() {
                return Err("empty time zone".into());
            }
            spec = after.trim();
        }
    }
    if let Some(descriptor) = spec.strip_prefix('@') {
        return match descriptor {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ => match descriptor.strip_prefix("every ") {
                Some(duration) if go_duration(duration.trim()) => Ok(()),
                Some(duration) => Err(format!("failed to parse duration @every {duration}")),
                None => Err(format!("unrecognized descriptor: @{descriptor}")),
            },
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected exactly 5 fields, found {}", fields.len()));
    }
    for (field, range) in fields.iter().zip(FIELDS.iter()) {
        for part in field.split(',') {
            forge_range(part, range)?;
        }
    }
    Ok(())
}

/// One comma-separated part of a robfig field: `*`/`?`, `a`, `a-b`, each with `/step`.
fn forge_range(part: &str, range: &Range) -> Result<(), String> {
    let (span, step) = match part.split_once('/') {
        Some((span, step)) => (span, Some(step)),
        None => (part, None),
    };
    let (low, high) = if span == "*" || span == "?" {
        (range.min, range.max)
    } else {
        let (a, b) = span.split_once('-').unwrap_or((span, span));
        let value = |text: &str| {
            name_number(text, range)
                .or_else(|| text.parse::<u32>().ok())
                .ok_or_else(|| format!("failed to parse int from {text}"))
        };
        (value(a)?, value(b)?)
    };
    if let Some(step) = step {
        let n: u32 = step
            .parse()
            .map_err(|_| format!("failed to parse int from {step}"))?;
        if n == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
    }
    if low < range.min {
        return Err(format!(
            "beginning of range ({low}) below minimum ({}): {part}",
            range.min
        ));
    }
    if high > range.max {
        return Err(format!(
            "end of range ({high}) above maximum ({}): {part}",
            range.max
        ));
    }
    if low > high {
        return Err(format!(
            "beginning of range ({low}) beyond end of range ({high}): {part}"
        ));
    }
    Ok(())
}

/// Go's `time.ParseDuration` syntax: numbers (with an optional fraction), each followed by
/// a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`).
fn go_duration(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 || rest[..digits].parse::<f64>().is_err() {
            return false;
        }
        rest = &rest[digits..];
        let Some(unit) = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| rest.starts_with(**u))
            .max_by_key(|u| u.len())
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

struct Range {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The number of the first name.
    first: u32,
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const FIELDS: [Range; 5] = [
    Range {
        min: 0,
        max: 59,
        names: &[],
        first: 0,
    },
    Range {
        min: 0,
        max: 23,
        names: &[],
        first: 0,
    },
    Range {
        min: 1,
        max: 31,
        names: &[],
        first: 0,
    },
    Range {
        min: 1,
        max: 12,
        names: MONTHS,
        first: 1,
    },
    Range {
        min: 0,
        max: 6,
        names: DAYS,
        first: 0,
    },
];

/// `isValidCron` of `@actions/workflow-parser` (dist/model/converter/cron.js): the string
/// split on runs of spaces gives five valid parts.
pub(crate) fn is_valid_cron(cron: &str) -> bool {
    let parts: Vec<&str> = cron.split(' ').collect();
    // JavaScript's split(/ +/) keeps empty parts only at the ends; any run of spaces inside
    // is one separator.
    let parts: Vec<&str> = {
        let mut out = Vec::new();
        let last = parts.len().saturating_sub(1);
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() && i != 0 && i != last {
                continue;
            }
            out.push(*p);
        }
        out
    };
    parts.len() == 5
        && parts
            .iter()
            .zip(FIELDS.iter())
            .all(|(part, range)| valid_part(part, range, true))
}

fn name_number(value: &str, range: &Range) -> Option<u32> {
    let lower = value.to_ascii_lowercase();
    range
        .names
        .iter()
        .position(|n| *n == lower)
        .map(|i| i as u32 + range.first)
}

fn number(value: &str, range: &Range) -> Option<u32> {
    name_number(value, range).or_else(|| {
        (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
            .then(|| value.parse().ok())
            .flatten()
    })
}

fn valid_part(value: &str, range: &Range, separators: bool) -> bool {
    if name_number(value, range).is_some() || value == "*" {
        return true;
    }
    if value.contains(',') {
        return separators
            && value
                .split(',')
                .all(|v| !v.is_empty() && valid_part(v, range, true));
    }
    if value.contains('/') {
        let pieces: Vec<&str> = value.split('/').collect();
        let [start, step] = pieces[..] else {
            return false;
        };
        let step_ok =
            step.bytes().all(|b| b.is_ascii_digit()) && step.parse::<u32>().is_ok_and(|s| s > 0);
        return separators
            && !start.is_empty()
            && step_ok
            && valid_part(start, range, true)
            && valid_part(step, range, false);
    }
    if value.contains('-') {
        let pieces: Vec<&str> = value.split('-').collect();
        let [start, end] = pieces[..] else {
            return false;
        };
        return separators
            && !start.is_empty()
            && !end.is_empty()
            && valid_part(start, range, false)
            && valid_part(end, range, false)
            && number(end, range) >= number(start, range);
    }
    number(value, range).is_some_and(|n| n >= range.min && n <= range.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crons_as_robfig_cron_parses_them_for_gitea_and_forgejo() {
        for ok in [
            "@daily",
            "@hourly",
            "@every 1h30m",
            "@every 90s",
            "TZ=Europe/Berlin 0 3 * * *",
            "CRON_TZ=UTC @weekly",
            "*/15 * * * *",
            "0 0 ? * MON-FRI",
            "0 12 1 jan,jul sun",
        ] {
            assert_eq!(forge_cron(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("every day at noon", "expected exactly 5 fields, found 4"),
            ("0 0 * * * *", "expected exactly 5 fields, found 6"),
            ("@fortnightly", "unrecognized descriptor: @fortnightly"),
            ("@every soon", "failed to parse duration @every soon"),
            ("60 * * * *", "end of range (60) above maximum (59): 60"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
        ] {
            assert_eq!(forge_cron(bad), Err(why.to_string()), "{bad}");
        }
    }

    #[test]
    fn crons_as_the_typescript_parser_checks_them() {
        for ok in [
            "0 0 * * *",
            "*/15 * * * *",
            "30 5 * * 1-5",
            "0 12 1 jan,JUL mon-fri",
            "0  0 * * *",
            "1-5/2 * * * *",
            "0 0 31 12 6",
        ] {
            assert!(is_valid_cron(ok), "{ok}");
        }
        for bad in [
            "every day at noon",
            "@daily",
            "0 0 * *",
            "0 0 * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 7",
            "*/0 * * * *",
            "5-1 * * * *",
            " 0 0 * * *",
            "0 0 * * * ",
            "1,,2 * * * *",
        ] {
            assert!(!is_valid_cron(bad), "{bad}");
        }
    }
}
