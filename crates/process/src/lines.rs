//! Splits a byte stream into output lines the way a step's log shows them.
//!
//! Lines end at `\n`, a `\r` right before it is dropped, invalid UTF-8 is replaced lossily,
//! a final line without newline still counts, and a line longer than [`MAX_LINE`] bytes is
//! cut into pieces of at most that size (never inside a UTF-8 sequence when avoidable). Each
//! line is handed on with a flag telling whether it is such a piece with more of its line
//! to come (a masker needs both sides of the cut).

/// Longest line handed on in one piece (64 KiB).
pub const MAX_LINE: usize = 64 * 1024;

/// Accumulates bytes and yields complete lines.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Adds a chunk and hands every line it completes to `emit` (with `true` for a piece
    /// of a long line whose rest follows).
    pub fn push(&mut self, chunk: &[u8], emit: &mut impl FnMut(String, bool)) {
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&rest[..pos]);
            rest = &rest[pos + 1..];
            if self.pending.last() == Some(&b'\r') {
                self.pending.pop();
            }
            self.flush_long(emit);
            emit(to_text(&self.pending), false);
            self.pending.clear();
        }
        self.pending.extend_from_slice(rest);
        self.flush_long(emit);
    }

    /// Ends the stream: the unterminated last line, if any, is emitted.
    pub fn finish(&mut self, emit: &mut impl FnMut(String, bool)) {
        if !self.pending.is_empty() {
            emit(to_text(&self.pending), false);
            self.pending.clear();
        }
    }

    /// Emits leading pieces while more than `MAX_LINE` bytes wait without a newline.
    fn flush_long(&mut self, emit: &mut impl FnMut(String, bool)) {
        while self.pending.len() > MAX_LINE {
            let cut = utf8_cut(&self.pending, MAX_LINE);
            emit(to_text(&self.pending[..cut]), true);
            self.pending.drain(..cut);
        }
    }
}

/// A cut position at or before `max` that does not split a UTF-8 sequence, unless the
/// bytes there are not UTF-8 anyway.
fn utf8_cut(bytes: &[u8], max: usize) -> usize {
    let mut cut = max;
    // Continuation bytes look like 0b10xx_xxxx; a sequence has at most 3 of them.
    while cut > max - 3 && bytes.get(cut).is_some_and(|b| b & 0xC0 == 0x80) {
        cut -= 1;
    }
    if bytes.get(cut).is_some_and(|b| b & 0xC0 == 0x80) {
        max
    } else {
        cut
    }
}

fn to_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        let mut s = LineSplitter::default();
        for c in chunks {
            s.push(c, &mut |l, _| out.push(l));
        }
        s.finish(&mut |l, _| out.push(l));
        out
    }

    #[test]
    fn pieces_of_a_cut_line_say_their_rest_follows() {
        let mut line = vec![b'a'; MAX_LINE * 2 + 10];
        line.push(b'\n');
        line.extend_from_slice(b"short");
        let mut flags = Vec::new();
        let mut s = LineSplitter::default();
        s.push(&line, &mut |l, continued| flags.push((l.len(), continued)));
        s.finish(&mut |l, continued| flags.push((l.len(), continued)));
        assert_eq!(
            flags,
            [(MAX_LINE, true), (MAX_LINE, true), (10, false), (5, false)]
        );
    }

    #[test]
    fn lines_across_chunks_and_crlf() {
        assert_eq!(split(&[b"a\r\nb", b"c\n\nd"]), ["a", "bc", "", "d"]);
    }

    #[test]
    fn lone_cr_stays_and_invalid_utf8_is_replaced() {
        assert_eq!(split(&[b"x\ry\n\xff\n"]), ["x\ry", "\u{fffd}"]);
    }

    #[test]
    fn long_line_is_split_at_64k_without_breaking_chars() {
        let mut line = vec![b'a'; MAX_LINE - 1];
        line.extend_from_slice("é".as_bytes()); // 2 bytes straddling the limit
        line.extend_from_slice(b"tail\n");
        let out = split(&[&line]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE - 1);
        assert_eq!(out[1], "étail");
    }

    #[test]
    fn exact_64k_line_is_one_line() {
        let mut line = vec![b'b'; MAX_LINE];
        line.push(b'\n');
        let out = split(&[&line[..1000], &line[1000..]]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), MAX_LINE);
    }
}
