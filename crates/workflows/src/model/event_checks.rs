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
    if !strict(r) || is_valid_cron(cron) {
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
