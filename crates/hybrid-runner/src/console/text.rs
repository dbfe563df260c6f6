//! Text helpers for the human renderer: ANSI styles, duration formatting, cleaning of
//! raw log lines, and the escaping GitHub's workflow commands use.

use std::time::Duration;

/// How a piece of text is painted when colours are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Plain,
    Bold,
    Dim,
    Red,
    Green,
    Yellow,
    Blue,
    Magenta,
    Cyan,
}

impl Style {
    fn code(self) -> Option<&'static str> {
        match self {
            Style::Plain => None,
            Style::Bold => Some("1"),
            Style::Dim => Some("2"),
            Style::Red => Some("31"),
            Style::Green => Some("32"),
            Style::Yellow => Some("33"),
            Style::Blue => Some("34"),
            Style::Magenta => Some("35"),
            Style::Cyan => Some("36"),
        }
    }
}

/// Colours given to job prefixes in the order jobs first appear (red is kept for errors).
pub(super) const JOB_PALETTE: [Style; 5] = [
    Style::Cyan,
    Style::Magenta,
    Style::Blue,
    Style::Green,
    Style::Yellow,
];

/// `text` wrapped in the style's escape sequence when `color` is on, unchanged otherwise.
/// Text that carries its own escape sequences is reset at its end either way, so a
/// colour a program left open does not bleed into the next line's prefix.
pub(super) fn paint(color: bool, style: Style, text: &str) -> String {
    if !color {
        return text.to_owned();
    }
    match style.code() {
        Some(code) => format!("\x1b[{code}m{text}\x1b[0m"),
        None if text.contains('\x1b') => format!("{text}\x1b[0m"),
        None => text.to_owned(),
    }
}

/// `0.42s` under a minute, `1m 03s` under an hour, `1h 02m 03s` beyond.
pub fn human_duration(duration: Duration) -> String {
    let centis = (duration.as_secs_f64() * 100.0).round() as u64;
    if centis < 6000 {
        return format!("{}.{:02}s", centis / 100, centis % 100);
    }
    let secs = duration.as_secs_f64().round() as u64;
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    if hours == 0 {
        format!("{minutes}m {seconds:02}s")
    } else {
        format!("{hours}h {minutes:02}m {seconds:02}s")
    }
}

/// One raw output line made fit for display: the trailing whitespace dropped, only what
/// follows the last carriage return kept (a progress bar's final state), and escape
/// sequences removed when colours are off.
pub(super) fn clean_line(raw: &str, color: bool) -> String {
    let trimmed = raw.trim_end();
    let visible = match trimmed.rfind('\r') {
        Some(at) => &trimmed[at + 1..],
        None => trimmed,
    };
    if color {
        visible.to_owned()
    } else {
        strip_ansi(visible)
    }
}

/// `text` without its ANSI escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ST`,
/// and two-byte `ESC x`).
pub(super) fn strip_ansi(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            kept.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' {
                        break;
                    }
                    if c == '\x1b' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    kept
}

/// A line that the outer runner would take for a workflow command (`::x::`, or the
/// legacy `##[x]`, after leading whitespace) gets a zero-width space in front, so output
/// of the inner job never opens or closes the outer log's groups or annotates it.
pub(super) fn defuse_command(text: String) -> String {
    let start = text.trim_start();
    if start.starts_with("::") || start.starts_with("##[") {
        let indent = text.len() - start.len();
        format!("{}\u{200b}{}", &text[..indent], start)
    } else {
        text
    }
}

/// Escaping of a workflow command's message (`::error::<data>`).
pub(super) fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping of a workflow command's property value (`::error file=<value>::`).
pub(super) fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_would_write_them() {
        assert_eq!(human_duration(Duration::from_millis(420)), "0.42s");
        assert_eq!(human_duration(Duration::from_millis(5)), "0.01s");
        assert_eq!(human_duration(Duration::ZERO), "0.00s");
        assert_eq!(human_duration(Duration::from_millis(59_994)), "59.99s");
        assert_eq!(human_duration(Duration::from_millis(59_996)), "1m 00s");
        assert_eq!(human_duration(Duration::from_secs(63)), "1m 03s");
        assert_eq!(human_duration(Duration::from_secs(3723)), "1h 02m 03s");
    }

    #[test]
    fn lines_lose_trailing_space_carriage_returns_and_escapes() {
        assert_eq!(clean_line("hi  \r", false), "hi");
        assert_eq!(clean_line("10%\r50%\r100%", false), "100%");
        assert_eq!(clean_line("\x1b[31mred\x1b[0m", false), "red");
        assert_eq!(clean_line("\x1b[31mred\x1b[0m", true), "\x1b[31mred\x1b[0m");
        assert_eq!(
            strip_ansi("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x07b"),
            "alinkb"
        );
    }

    #[test]
    fn painting_is_off_without_color_and_resets_stray_escapes() {
        assert_eq!(paint(false, Style::Red, "x"), "x");
        assert_eq!(paint(true, Style::Red, "x"), "\x1b[31mx\x1b[0m");
        assert_eq!(paint(true, Style::Plain, "\x1b[1mx"), "\x1b[1mx\x1b[0m");
    }

    #[test]
    fn command_lookalikes_are_defused() {
        assert_eq!(
            defuse_command("  ::endgroup::".into()),
            "  \u{200b}::endgroup::"
        );
        assert_eq!(defuse_command("##[error]x".into()), "\u{200b}##[error]x");
        assert_eq!(defuse_command("a ::b::".into()), "a ::b::");
    }

    #[test]
    fn command_escaping_follows_github() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a,b:c"), "a%2Cb%3Ac");
    }
}
