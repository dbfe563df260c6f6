//! What a step's exec in the job pod sends back on stdout: the step's output lines up
//! to a boundary line, then the `GITHUB_*` files it wrote (see [`super::exec`] for the
//! exec itself). [`StepStdout`] splits the stream; [`files_listing`] is the shell that
//! lists the files and [`parse_files`] reads the listing back, also after a container
//! step ([`super::container_step`]).

use crate::step_files::{COMMAND_FILE_CAP, SUMMARY_CAP};
use hr_process::lines::LineSplitter;

/// The `GITHUB_*` files, by their name in `_files/` (the same names on the host).
pub const STEP_FILES: [&str; 5] = [
    "set_env",
    "set_output",
    "add_path",
    "save_state",
    "step_summary",
];

/// The boundary line between the step's output and its files is this and a nonce.
pub(super) const BOUNDARY_PREFIX: &str = "hybrid-runner-step-files-";

/// The first line of a step exec's stdout, printed before the input is read in full and
/// dropped by [`StepStdout`]. It makes the API server answer at once, and its answer
/// carries the acknowledgement of the input's first WebSocket frame: kube-rs sends stdin
/// in frames of 4 KiB over a socket without `TCP_NODELAY` (kube-rs/kube#2056), so
/// Nagle's algorithm holds the next frame until that acknowledgement, which a receiver
/// with nothing to say delays by 40 ms (seen on loopback, as against the fake API server).
pub(super) const GREETING: &str = "hybrid-runner-step-started";

/// A `GITHUB_*` file larger than this comes back as its size alone: the largest of the
/// engine's caps ([`SUMMARY_CAP`], [`COMMAND_FILE_CAP`]), over which it drops a file
/// unread with its usual annotation.
pub const SENT_UP_TO: u64 = {
    let mut max = SUMMARY_CAP.bytes;
    let mut i = 0;
    while i < COMMAND_FILE_CAP.len() {
        if COMMAND_FILE_CAP[i].bytes > max {
            max = COMMAND_FILE_CAP[i].bytes;
        }
        i += 1;
    }
    max
};

/// How many bytes after the boundary are kept at most: every file at [`SENT_UP_TO`],
/// with room for the headers (more is not the listing `exec::step_input` writes).
const FILES_LIMIT: usize = STEP_FILES.len() * (SENT_UP_TO as usize + 64) + 64;

/// One `GITHUB_*` file a step wrote, as it came back from the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFile {
    /// Its name in `STEP_FILES` (`set_env`, ...).
    pub name: String,
    /// Its size in the pod.
    pub size: u64,
    /// Its bytes; empty for a file over [`SENT_UP_TO`] bytes, which is not sent.
    pub bytes: Vec<u8>,
}

/// The `GITHUB_*` files a step wrote; unwritten (empty) ones are left out.
pub type StepFileContents = Vec<StepFile>;

/// How a step's `GITHUB_*` files came back with its exec.
#[derive(Debug)]
pub enum StepFilesBack {
    /// After the boundary line, the listing of the files.
    Files(StepFileContents),
    /// The exec's output ended without the boundary line: its shell did not get to
    /// write the files (killed with the step, the stream lost).
    Missing,
    /// After the boundary line came something else than the listing (a step that
    /// printed the boundary line itself, see `StepStdout` in this module).
    Malformed(StepFilesFormatError),
}

/// The exec's stdout, split at the boundary line: before it the step's output lines,
/// after it the `GITHUB_*` files (`exec::step_input`). The boundary is a line of its own
/// that starts with a newline, `\n<boundary>\n`, so whatever the step's output ended
/// with, the boundary text starts a line: after a last line without newline, that
/// newline ends the line (which reaches the log, as at the end of a stream); after a
/// newline, it is an empty line that is not the step's. So an empty line is held back
/// until the next bytes show it is not followed by the boundary (an empty line the step
/// printed last waits for its next output, at most until the step's end), and the start
/// of a line that matches the boundary's beginning is held until it stops matching.
///
/// The boundary holds a nonce made for each step and never stands alone on a line of
/// the step's input, so a step does not print it by chance. A step that finds it (in the
/// memory of its parent shell) and prints the boundary line ends its own log there: what
/// follows is read as its files, which must be the listing (else the step fails with
/// [`StepFilesFormatError`]) and are kept up to [`FILES_LIMIT`] bytes. That gains the
/// step nothing it could not do by writing its `GITHUB_*` files, and each step has its
/// own exec and nonce: no other step's output is touched.
#[derive(Debug, Default)]
pub(super) struct StepStdout {
    /// The boundary line's text; `None` for a stream without one (stderr).
    boundary: Option<Vec<u8>>,
    /// While the stream may still start with the [`GREETING`] line: how much of it came.
    greeting: Option<usize>,
    lines: LineSplitter,
    /// The bytes handed to `lines` end at a line start (or none were handed).
    at_line_start: bool,
    /// An empty line held back: it may be the boundary's leading newline.
    held_newline: bool,
    /// The start of the current line while it matches the boundary's beginning.
    held: Vec<u8>,
    /// After the boundary: what came since (at most [`FILES_LIMIT`] bytes).
    files: Option<Vec<u8>>,
    /// More than [`FILES_LIMIT`] bytes came after the boundary.
    overflow: bool,
}

impl StepStdout {
    pub(super) fn new(boundary: Option<&str>) -> Self {
        StepStdout {
            boundary: boundary.map(|b| b.as_bytes().to_vec()),
            greeting: boundary.map(|_| 0),
            at_line_start: true,
            ..Default::default()
        }
    }

    /// Whether the boundary has come (the rest is files, not lines).
    pub(super) fn in_files(&self) -> bool {
        self.files.is_some()
    }

    /// Hands the lines `chunk` completes to `emit`, keeping what may be the boundary.
    pub(super) fn push(&mut self, mut chunk: &[u8], emit: &mut impl FnMut(String, bool)) {
        if let Some(matched) = self.greeting {
            let line = [GREETING.as_bytes(), b"\n"].concat();
            let want = &line[matched..];
            let same = chunk.iter().zip(want).take_while(|(a, b)| a == b).count();
            if same == chunk.len() && same < want.len() {
                self.greeting = Some(matched + same);
                return;
            }
            self.greeting = None;
            if same == want.len() {
                chunk = &chunk[same..];
            } else {
                // Not the greeting after all: what matched is output.
                self.push(&line[..matched], emit);
            }
        }
        let Some(boundary) = &self.boundary else {
            self.lines.push(chunk, emit);
            return;
        };
        while !chunk.is_empty() {
            if let Some(files) = &mut self.files {
                let room = FILES_LIMIT - files.len();
                self.overflow |= chunk.len() > room;
                files.extend_from_slice(&chunk[..chunk.len().min(room)]);
                return;
            }
            if !self.at_line_start {
                let Some(eol) = chunk.iter().position(|&b| b == b'\n') else {
                    self.lines.push(chunk, emit);
                    return;
                };
                // A newline that ends a line with text: a line either way, even when it
                // is the boundary's leading one (the step's last line without newline).
                self.lines.push(&chunk[..=eol], emit);
                chunk = &chunk[eol + 1..];
                self.at_line_start = true;
                continue;
            }
            let want = &boundary[self.held.len()..];
            let same = chunk.iter().zip(want).take_while(|(a, b)| a == b).count();
            if same == want.len() {
                match chunk.get(same) {
                    Some(b'\n') => {
                        // The boundary: a held empty line was its leading newline.
                        self.held_newline = false;
                        self.held.clear();
                        self.lines.finish(emit);
                        self.files = Some(Vec::new());
                        chunk = &chunk[same + 1..];
                        continue;
                    }
                    None => {
                        self.held.extend_from_slice(chunk);
                        return;
                    }
                    Some(_) => {}
                }
            } else if same == chunk.len() {
                self.held.extend_from_slice(chunk);
                return;
            }
            // Not the boundary: what was held is the step's.
            if self.held_newline {
                self.lines.push(b"\n", emit);
                self.held_newline = false;
            }
            if self.held.is_empty() && same == 0 && chunk[0] == b'\n' {
                self.held_newline = true;
                chunk = &chunk[1..];
                continue;
            }
            let held = std::mem::take(&mut self.held);
            self.lines.push(&held, emit);
            self.at_line_start = false;
        }
    }

    /// The stream ended: what is held is the step's last output.
    pub(super) fn finish(&mut self, emit: &mut impl FnMut(String, bool)) {
        if let Some(matched) = self.greeting.take() {
            self.push(&GREETING.as_bytes()[..matched], emit);
        }
        if self.held_newline {
            self.lines.push(b"\n", emit);
            self.held_newline = false;
        }
        let held = std::mem::take(&mut self.held);
        self.lines.push(&held, emit);
        self.lines.finish(emit);
    }

    /// The files that came after the boundary.
    pub(super) fn files(&mut self) -> StepFilesBack {
        match self.files.take() {
            None => StepFilesBack::Missing,
            Some(_) if self.overflow => {
                StepFilesBack::Malformed(StepFilesFormatError::TooLong { limit: FILES_LIMIT })
            }
            Some(bytes) => match parse_files(&bytes) {
                Ok(files) => StepFilesBack::Files(files),
                Err(e) => StepFilesBack::Malformed(e),
            },
        }
    }
}

/// Why the listing of the step's files that came back from the pod cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StepFilesFormatError {
    #[error("a file header without its line end")]
    NoLineEnd,
    #[error("a bad file header {header:?}")]
    Header { header: String },
    #[error("a bad file size in {header:?}")]
    Size { header: String },
    #[error("the file {name} cut short")]
    Truncated { name: String },
    #[error("no end line")]
    NoEnd,
    #[error("more than {limit} bytes")]
    TooLong { limit: usize },
}

/// Shell commands that print the non-empty `GITHUB_*` files as [`parse_files`] reads
/// them (after a step in the step's own exec; after a container step in an exec of its
/// own).
pub(super) fn files_listing(temp: &str) -> String {
    format!(
        "for f in {names}; do\n\
         if [ -s {temp}/_files/$f ]; then\n\
         n=$(($(wc -c <{temp}/_files/$f)))\n\
         if [ \"$n\" -gt {sent_up_to} ]; then printf '%s %s unsent\\n' $f $n; \
         else printf '%s %s\\n' $f $n; head -c $n {temp}/_files/$f; fi\n\
         fi\n\
         done\n\
         echo end\n",
        names = STEP_FILES.join(" "),
        sent_up_to = SENT_UP_TO,
    )
}

/// The listing `exec::step_input` writes: `name size\n` + `size` bytes, or `name size
/// unsent\n` alone, repeated, then `end\n`.
pub(super) fn parse_files(mut bytes: &[u8]) -> Result<StepFileContents, StepFilesFormatError> {
    let mut files = Vec::new();
    loop {
        if bytes == b"end\n" {
            return Ok(files);
        }
        if bytes.is_empty() {
            return Err(StepFilesFormatError::NoEnd);
        }
        let Some(eol) = bytes.iter().position(|&b| b == b'\n') else {
            return Err(StepFilesFormatError::NoLineEnd);
        };
        let header = String::from_utf8_lossy(&bytes[..eol]).into_owned();
        let fields: Vec<&str> = header.split(' ').collect();
        let (name, size, sent) = match fields[..] {
            [name, size] => (name, size, true),
            [name, size, "unsent"] => (name, size, false),
            _ => return Err(StepFilesFormatError::Header { header }),
        };
        let Ok(size) = size.parse::<u64>() else {
            return Err(StepFilesFormatError::Size { header });
        };
        let rest = &bytes[eol + 1..];
        let len = if sent {
            usize::try_from(size).unwrap_or(usize::MAX)
        } else {
            0
        };
        if !STEP_FILES.contains(&name) || (!sent && size <= SENT_UP_TO) {
            return Err(StepFilesFormatError::Header { header });
        }
        if rest.len() < len {
            return Err(StepFilesFormatError::Truncated {
                name: name.to_string(),
            });
        }
        files.push(StepFile {
            name: name.to_string(),
            size,
            bytes: rest[..len].to_vec(),
        });
        bytes = &rest[len..];
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn files_parse_back() {
        let files = parse_files(b"set_env 4\nA=1\nstep_summary 2000000 unsent\nend\n").unwrap();
        assert_eq!(
            files,
            vec![
                StepFile {
                    name: "set_env".into(),
                    size: 4,
                    bytes: b"A=1\n".to_vec()
                },
                StepFile {
                    name: "step_summary".into(),
                    size: 2_000_000,
                    bytes: Vec::new()
                },
            ]
        );
        assert_eq!(parse_files(b"end\n"), Ok(Vec::new()));
        use StepFilesFormatError as E;
        let truncated = E::Truncated {
            name: "set_env".into(),
        };
        assert_eq!(parse_files(b"set_env 9\nA=1\nend\n"), Err(truncated));
        for bad in [
            &b"other 0\nend\n"[..],
            b"set_env 4 unsent\nend\n",
            b"set_env\n",
        ] {
            assert!(matches!(parse_files(bad), Err(E::Header { .. })), "{bad:?}");
        }
        assert!(matches!(parse_files(b"set_env x\n"), Err(E::Size { .. })));
        assert_eq!(parse_files(b""), Err(E::NoEnd));
        assert_eq!(parse_files(b"set_env 0\n"), Err(E::NoEnd));
        assert_eq!(parse_files(b"set_env 0"), Err(E::NoLineEnd));
        assert!(parse_files(b"end\nmore").is_err());
    }

    pub(crate) const BOUNDARY: &str = "hybrid-runner-step-files-0123456789abcdef0123456789abcdef";

    /// What the exec's shell writes after the step's output.
    fn marker(files: &str) -> String {
        format!("\n{BOUNDARY}\n{files}end\n")
    }

    /// The lines and files of `stream` read in `chunks` pieces.
    pub(crate) fn read_in(chunks: &[&[u8]]) -> (Vec<String>, StepFilesBack) {
        let mut stdout = StepStdout::new(Some(BOUNDARY));
        let mut lines = Vec::new();
        for chunk in chunks {
            stdout.push(chunk, &mut |l, _| lines.push(l));
        }
        stdout.finish(&mut |l, _| lines.push(l));
        (lines, stdout.files())
    }

    /// The lines and files of `stream`, checked to be the same however it is cut.
    fn read(stream: &[u8]) -> (Vec<String>, StepFilesBack) {
        let whole = read_in(&[stream]);
        let shown = |r: &(Vec<String>, StepFilesBack)| format!("{r:?}");
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(shown(&read_in(&[a, b])), shown(&whole), "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(shown(&read_in(&bytes)), shown(&whole), "byte by byte");
        whole
    }

    pub(crate) fn no_files(back: &StepFilesBack) -> bool {
        matches!(back, StepFilesBack::Files(f) if f.is_empty())
    }

    #[test]
    fn a_last_line_without_newline_reaches_the_log_before_the_boundary() {
        let (lines, files) = read(format!("one\ntwo{}", marker("")).as_bytes());
        assert_eq!(lines, ["one", "two"]);
        assert!(no_files(&files), "{files:?}");
        let (lines, files) = read(format!("one\ntwo\n{}", marker("")).as_bytes());
        assert_eq!(lines, ["one", "two"]);
        assert!(no_files(&files), "{files:?}");
        // A carriage return ends such a line as it ends any line.
        let (lines, _) = read(format!("one\r{}", marker("")).as_bytes());
        assert_eq!(lines, ["one"]);
    }

    #[test]
    fn empty_lines_and_empty_output_are_kept_exactly() {
        let (lines, files) = read(marker("").as_bytes());
        assert!(lines.is_empty(), "{lines:?}");
        assert!(no_files(&files), "{files:?}");
        let (lines, _) = read(format!("\n{}", marker("")).as_bytes());
        assert_eq!(lines, [""]);
        let (lines, _) = read(format!("one\n\n\n{}", marker("")).as_bytes());
        assert_eq!(lines, ["one", "", ""]);
        let (lines, _) = read(format!("\r\n{}", marker("")).as_bytes());
        assert_eq!(lines, [""]);
    }

    #[test]
    fn only_an_empty_line_waits_for_the_next_bytes() {
        let mut stdout = StepStdout::new(Some(BOUNDARY));
        let mut lines = Vec::new();
        stdout.push(b"one\n", &mut |l, _| lines.push(l));
        assert_eq!(lines, ["one"], "a line goes on at once");
        stdout.push(b"\n", &mut |l, _| lines.push(l));
        assert_eq!(
            lines,
            ["one"],
            "an empty line may be the boundary's newline"
        );
        stdout.push(b"h", &mut |l, _| lines.push(l));
        assert_eq!(lines, ["one"], "and the next line may be the boundary");
        stdout.push(b"i\n", &mut |l, _| lines.push(l));
        assert_eq!(lines, ["one", "", "hi"]);
    }

    #[test]
    fn the_files_after_the_boundary_come_back() {
        let stream = format!(
            "log\n{}",
            marker("set_env 8\nA=1\nB=2\nstep_summary 2000000 unsent\n")
        );
        let (lines, files) = read(stream.as_bytes());
        assert_eq!(lines, ["log"]);
        let StepFilesBack::Files(files) = files else {
            panic!("{files:?}");
        };
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].bytes, b"A=1\nB=2\n");
        assert_eq!((files[1].size, files[1].bytes.len()), (2_000_000, 0));
    }

    #[test]
    fn the_greeting_is_dropped_and_only_the_greeting() {
        let greeting = format!("{GREETING}\n");
        let (lines, files) = read(format!("{greeting}one\n{}", marker("")).as_bytes());
        assert_eq!(lines, ["one"]);
        assert!(no_files(&files), "{files:?}");
        // Only at the stream's start, only whole.
        let (lines, _) = read(format!("{greeting}{greeting}{}", marker("")).as_bytes());
        assert_eq!(lines, [GREETING]);
        let (lines, _) = read(format!("{GREETING} and more\n{}", marker("")).as_bytes());
        assert_eq!(lines, [format!("{GREETING} and more")]);
        let (lines, files) = read(&greeting.as_bytes()[..10]);
        assert_eq!(lines, [&GREETING[..10]]);
        assert!(matches!(files, StepFilesBack::Missing));
        // stderr has none.
        let mut stderr = StepStdout::new(None);
        let mut lines = Vec::new();
        stderr.push(greeting.as_bytes(), &mut |l, _| lines.push(l));
        stderr.finish(&mut |l, _| lines.push(l));
        assert_eq!(lines, [GREETING]);
    }

    #[test]
    fn text_like_the_boundary_is_the_steps_output() {
        // Another nonce, the boundary within a line or with more after it on its line,
        // and the start of it at the stream's end.
        let other = format!("{BOUNDARY_PREFIX}ffffffffffffffffffffffffffffffff");
        let printed =
            format!("{other}\nx{BOUNDARY}\n{BOUNDARY} more\n{BOUNDARY}\r\n{BOUNDARY_PREFIX}");
        let (lines, files) = read(format!("{printed}{}", marker("")).as_bytes());
        assert_eq!(
            lines,
            [
                other,
                format!("x{BOUNDARY}"),
                format!("{BOUNDARY} more"),
                BOUNDARY.to_string(),
                BOUNDARY_PREFIX.to_string()
            ]
        );
        assert!(no_files(&files), "{files:?}");
    }

    #[test]
    fn a_step_that_prints_the_boundary_line_ends_its_own_log_there() {
        // The step found the nonce and printed the boundary line: its later lines are
        // read as files, which are not the listing.
        let stream = format!("a\n{BOUNDARY}\nb\n{}", marker(""));
        let (lines, files) = read(stream.as_bytes());
        assert_eq!(lines, ["a"]);
        assert!(
            matches!(
                files,
                StepFilesBack::Malformed(StepFilesFormatError::Header { .. })
            ),
            "{files:?}"
        );
        // However much it prints after it, only FILES_LIMIT bytes are kept.
        let mut stdout = StepStdout::new(Some(BOUNDARY));
        let mut lines = Vec::new();
        stdout.push(format!("{BOUNDARY}\n").as_bytes(), &mut |l, _| {
            lines.push(l)
        });
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..=FILES_LIMIT / chunk.len() {
            stdout.push(&chunk, &mut |l, _| lines.push(l));
        }
        stdout.finish(&mut |l, _| lines.push(l));
        assert!(lines.is_empty());
        assert!(
            stdout
                .files
                .as_ref()
                .is_some_and(|f| f.len() == FILES_LIMIT)
        );
        assert!(matches!(
            stdout.files(),
            StepFilesBack::Malformed(StepFilesFormatError::TooLong { .. })
        ));
    }

    #[test]
    fn without_the_boundary_every_line_stays_and_the_files_are_missing() {
        for (stream, expected) in [
            ("one\ntwo", &["one", "two"][..]),
            ("one\n\n", &["one", ""]),
            ("one\n\nhybrid-runner-st", &["one", "", "hybrid-runner-st"]),
            ("", &[]),
        ] {
            let (lines, files) = read(stream.as_bytes());
            assert_eq!(lines, expected, "{stream:?}");
            assert!(matches!(files, StepFilesBack::Missing), "{files:?}");
        }
    }

    #[test]
    fn a_stream_without_a_boundary_is_lines_only() {
        let mut stderr = StepStdout::new(None);
        let mut lines = Vec::new();
        stderr.push(format!("a\n\n{BOUNDARY}\nb").as_bytes(), &mut |l, _| {
            lines.push(l)
        });
        stderr.finish(&mut |l, _| lines.push(l));
        assert_eq!(lines, ["a", "", BOUNDARY, "b"]);
        assert!(matches!(stderr.files(), StepFilesBack::Missing));
    }
}
