//! The few files a step sends into its pod, as a POSIX ustar archive (what `tar -x`
//! reads in any image: GNU tar, busybox): folders and regular files with short relative
//! names, mode 0644 (0755 for folders), owned by root, mtime 0.

const BLOCK: usize = 512;

/// One entry: a relative path, and the file's bytes (`None` for a folder).
pub(super) type Entry<'a> = (&'a str, Option<&'a [u8]>);

/// Why the step's files could not be packed.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    /// ustar keeps names to 100 bytes (without the prefix field, which is not used).
    #[error("the name {name} is longer than a tar header holds")]
    NameTooLong { name: String },
}

/// Packs `entries` (parents before children) into a ustar archive.
pub(super) fn pack(entries: &[Entry<'_>]) -> Result<Vec<u8>, TarError> {
    let mut out = Vec::new();
    for (name, data) in entries {
        let (name, mode, kind, size) = match data {
            Some(bytes) => (name.to_string(), "0000644", b'0', bytes.len()),
            None => (
                format!("{}/", name.trim_end_matches('/')),
                "0000755",
                b'5',
                0,
            ),
        };
        if name.len() > 100 {
            return Err(TarError::NameTooLong { name });
        }
        let mut header = [0u8; BLOCK];
        header[..name.len()].copy_from_slice(name.as_bytes());
        put(&mut header[100..108], mode);
        put(&mut header[108..116], "0000000");
        put(&mut header[116..124], "0000000");
        put(&mut header[124..136], &format!("{size:011o}"));
        put(&mut header[136..148], "00000000000");
        header[148..156].copy_from_slice(b"        ");
        header[156] = kind;
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        put(&mut header[265..297], "root");
        put(&mut header[297..329], "root");
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        put(&mut header[148..156], &format!("{sum:06o}"));
        header[155] = b' ';
        out.extend_from_slice(&header);
        if let Some(bytes) = data {
            out.extend_from_slice(bytes);
            let pad = (BLOCK - bytes.len() % BLOCK) % BLOCK;
            out.resize(out.len() + pad, 0);
        }
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    Ok(out)
}

/// Writes `text` and a NUL into `field` (which is long enough by construction).
fn put(field: &mut [u8], text: &str) {
    let n = text.len().min(field.len().saturating_sub(1));
    field[..n].copy_from_slice(&text.as_bytes()[..n]);
    field[n] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_tar_extracts_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let archive = pack(&[
            ("_files", None),
            ("_files/set_env", Some(b"")),
            ("step.sh", Some(b"echo hi\n")),
        ])
        .unwrap();
        assert_eq!(archive.len() % BLOCK, 0);
        let tar_file = dir.path().join("a.tar");
        std::fs::write(&tar_file, &archive).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let status = std::process::Command::new("tar")
            .arg("-x")
            .arg("-f")
            .arg(&tar_file)
            .arg("-C")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read(out.join("step.sh")).unwrap(), b"echo hi\n");
        assert_eq!(std::fs::read(out.join("_files/set_env")).unwrap(), b"");
    }
}
