//! A deterministic tar writer: ustar headers, PAX `x` records only for what ustar cannot
//! hold (paths past 100/155 bytes, link targets past 100 bytes, sizes of 8 GiB and more).
//! Every header has the same fixed mtime, uid/gid 0, empty user and group names, and a
//! normalised mode, so the bytes depend only on the entries' paths, kinds and contents.

/// The fixed modification time of every entry: 2000-01-01T00:00:00Z (not 0: some tools,
/// zip among them, refuse dates before 1980).
pub const FIXED_MTIME: u64 = 946_684_800;

const BLOCK: usize = 512;

/// What one header describes.
#[derive(Debug, Clone, Copy)]
pub enum HeaderKind<'a> {
    File { size: u64, executable: bool },
    Dir,
    Symlink { target: &'a str },
}

/// The header block(s) for one entry: an optional PAX record plus the ustar header.
pub fn header(path: &str, kind: HeaderKind<'_>) -> Vec<u8> {
    let (typeflag, mode, size, link) = match kind {
        HeaderKind::File { size, executable } => {
            (b'0', if executable { 0o755 } else { 0o644 }, size, "")
        }
        HeaderKind::Dir => (b'5', 0o755, 0, ""),
        HeaderKind::Symlink { target } => (b'2', 0o777, 0, target),
    };
    let name = match kind {
        HeaderKind::Dir => format!("{path}/"),
        _ => path.to_string(),
    };
    let mut records = Vec::new();
    let split = split_name(&name);
    if split.is_none() {
        records.push(("path", name.clone()));
    }
    if link.len() > 100 {
        records.push(("linkpath", link.to_string()));
    }
    if size >= 0o77777777777 {
        records.push(("size", size.to_string()));
    }
    let mut out = Vec::with_capacity(BLOCK * 3);
    if !records.is_empty() {
        let body = pax_body(&records);
        let pax_name = format!("PaxHeaders/{}", truncate(&name, 80));
        out.extend_from_slice(&ustar(&pax_name, "", b'x', 0o644, body.len() as u64, ""));
        out.extend_from_slice(&body);
        pad(&mut out);
    }
    let (prefix, short) = split.unwrap_or(("", truncate(&name, 100)));
    let short_link = truncate(link, 100);
    let header_size = if size >= 0o77777777777 { 0 } else { size };
    out.extend_from_slice(&ustar(
        short,
        prefix,
        typeflag,
        mode,
        header_size,
        short_link,
    ));
    out
}

/// Zero bytes that pad `len` bytes of content to a whole block.
pub fn padding(len: u64) -> usize {
    let rem = (len % BLOCK as u64) as usize;
    if rem == 0 { 0 } else { BLOCK - rem }
}

/// The end of the archive: two zero blocks.
pub fn trailer() -> [u8; BLOCK * 2] {
    [0; BLOCK * 2]
}

/// Splits a name into ustar's 155-byte prefix and 100-byte name at a `/`, if it fits.
fn split_name(name: &str) -> Option<(&str, &str)> {
    if name.len() <= 100 {
        return Some(("", name));
    }
    let bytes = name.as_bytes();
    // the prefix is at most 155 bytes and the rest at most 100
    (0..bytes.len().min(156))
        .rev()
        .filter(|&i| bytes[i] == b'/')
        .map(|i| (&name[..i], &name[i + 1..]))
        .find(|(prefix, rest)| prefix.len() <= 155 && rest.len() <= 100 && !rest.is_empty())
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn pax_body(records: &[(&str, String)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, value) in records {
        // "<len> key=value\n" where len counts itself
        let rest = key.len() + value.len() + 3;
        let mut len = rest + 1;
        while len.to_string().len() + rest > len {
            len += 1;
        }
        body.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
    }
    body
}

fn ustar(name: &str, prefix: &str, typeflag: u8, mode: u32, size: u64, link: &str) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], FIXED_MTIME);
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

/// Zero-padded octal with a trailing NUL, filling the field.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

fn pad(out: &mut Vec<u8>) {
    let extra = padding(out.len() as u64);
    out.resize(out.len() + extra, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_use_one_block_with_a_valid_checksum() {
        let h = header(
            "a/b.txt",
            HeaderKind::File {
                size: 5,
                executable: false,
            },
        );
        assert_eq!(h.len(), 512);
        assert_eq!(&h[..7], b"a/b.txt");
        assert_eq!(&h[124..135], b"00000000005");
        let stored = u64::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut copy = h.clone();
        copy[148..156].fill(b' ');
        assert_eq!(stored, copy.iter().map(|b| u64::from(*b)).sum::<u64>());
    }

    #[test]
    fn long_names_split_or_get_a_pax_record() {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        let h = header(
            &long,
            HeaderKind::File {
                size: 0,
                executable: true,
            },
        );
        assert_eq!(h.len(), 512, "split into prefix and name");
        let huge = "x".repeat(300);
        let h = header(
            &huge,
            HeaderKind::File {
                size: 0,
                executable: false,
            },
        );
        assert_eq!(h.len(), 512 * 3);
        assert_eq!(h[156], b'x');
        let body = String::from_utf8_lossy(&h[512..1024]);
        assert!(body.starts_with(&format!("310 path={huge}\n")), "{body}");
    }

    #[test]
    fn pax_length_counts_itself() {
        let body = pax_body(&[("path", "a".repeat(93))]);
        let text = String::from_utf8(body).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), text.len());
    }
}
