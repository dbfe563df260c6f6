//! Registers arbitrary secrets with the engine's masker and masks arbitrary text, whole and
//! cut in two (as a line longer than 64 KiB reaches it). Input: secrets separated by NUL,
//! then a NUL-NUL, then the text; the first byte of the text picks the cut.
//!
//! Checked: no registered secret (without `*`, not blank) is left in the masked text, and
//! masking in two pieces prints the same as masking the whole line.
#![no_main]

use hr_engine::mask::Masker;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let (secrets, text) = input.split_once("\0\0").unwrap_or(("", &input));
    let mut masker = Masker::new();
    let secrets: Vec<&str> = secrets.split('\0').take(16).collect();
    for secret in &secrets {
        masker.add(secret);
    }
    let whole = masker.mask(text);
    for secret in &secrets {
        if !secret.trim().is_empty() && !secret.contains(['*', '\n', '\r']) {
            assert!(!whole.contains(secret), "{secret:?} left in {whole:?}");
        }
    }
    let mut cut = text.as_bytes().first().map_or(0, |&b| usize::from(b)) % (text.len() + 1);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let (first, second) = text.split_at(cut);
    let (a, skip) = masker.mask_piece(first, 0, second);
    let (b, rest) = masker.mask_piece(second, skip, "");
    assert_eq!(rest, 0);
    assert_eq!(format!("{a}{b}"), whole, "cut at {cut}");
});
