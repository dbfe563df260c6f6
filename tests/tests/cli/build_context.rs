//! The build context end to end: `.dockerignore` cases from Docker's documentation on a real
//! folder, a byte-identical archive across runs, thread counts, mtimes and modes, the
//! archive unpacked by `tar`, symlinks stored and never followed, and the `context` command.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use hr_image::context::{ContextOptions, EntryKind, list, pack};
use sha2::{Digest, Sha256};

fn write(root: &Path, path: &str, content: &str) {
    let full = root.join(path);
    fs::create_dir_all(full.parent().unwrap()).unwrap();
    fs::write(full, content).unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn options(root: &Path, threads: usize) -> ContextOptions {
    let mut options = ContextOptions::new(root);
    options.threads = threads;
    options
}

fn paths(root: &Path) -> Vec<String> {
    list(&options(root, 1))
        .unwrap()
        .into_iter()
        .map(|e| match e.kind {
            EntryKind::Dir => format!("{}/", e.path),
            _ => e.path,
        })
        .collect()
}

fn packed_bytes(root: &Path, threads: usize) -> (Vec<u8>, String) {
    let mut out = Vec::new();
    let packed = pack(&options(root, threads), &mut out).unwrap();
    assert_eq!(packed.compressed_size, out.len() as u64);
    (out, packed.sha256)
}

/// A folder with some of everything, big enough to span many gzip chunks.
fn sample(root: &Path) {
    write(root, "README.md", "# readme\n");
    write(root, "NOTES.md", "notes\n");
    write(root, "docs/guide.md", "guide\n");
    write(root, "src/main.go", "package main\n");
    write(root, "src/deep/x/util.go", "package x\n");
    write(root, "somedir/temporary.txt", "t\n");
    write(root, "somedir/subdir/temporary.txt", "t\n");
    write(root, "temp1", "t\n");
    write(root, "temp12", "t\n");
    let big: String = (0..200_000)
        .map(|i| format!("line {i} {}\n", i * 7919 % 10007))
        .collect();
    write(root, "data/big.txt", &big);
    for i in 0..50 {
        write(root, &format!("many/f{i:03}.txt"), &"x".repeat(i * 97));
    }
}

#[test]
fn docker_docs_patterns_on_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    sample(root);
    write(
        root,
        ".dockerignore",
        "# comment\n*/temp*\n*/*/temp*\ntemp?\n**/*.go\n*.md\n!README.md\n/data\n./many/\n",
    );
    let got = paths(root);
    assert_eq!(
        got,
        [
            ".dockerignore",
            "README.md",
            "docs/",
            "docs/guide.md",
            "somedir/",
            "somedir/subdir/",
            "src/",
            "src/deep/",
            "src/deep/x/",
            "temp12",
        ]
    );
}

#[test]
fn reinclude_inside_an_excluded_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "node_modules/a/index.js", "a");
    write(root, "node_modules/keep/me.js", "k");
    write(root, "node_modules/keep/other.js", "o");
    write(root, "Dockerfile", "FROM scratch\n");
    write(
        root,
        ".dockerignore",
        "node_modules\n!node_modules/keep/me.js\nDockerfile\n.dockerignore\n",
    );
    let mut opts = options(root, 1);
    opts.always_include = vec!["Dockerfile".into()];
    let got: Vec<String> = list(&opts).unwrap().into_iter().map(|e| e.path).collect();
    // Dockerfile and .dockerignore are sent even when ignored, like Docker's CLI does
    assert_eq!(
        got,
        [".dockerignore", "Dockerfile", "node_modules/keep/me.js"]
    );
    // without always_include the Dockerfile stays out
    assert!(!paths(root).contains(&"Dockerfile".to_string()));
}

#[test]
fn same_folder_same_bytes_whatever_threads_times_or_modes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    sample(root);
    let (first, sha) = packed_bytes(root, 1);
    assert!(first.len() > 200_000, "spans several chunks");
    let (second, sha_again) = packed_bytes(root, 1);
    assert_eq!(sha, sha_again);
    assert_eq!(first, second);
    let (two, sha_two) = packed_bytes(root, 2);
    assert_eq!(sha, sha_two);
    assert_eq!(first, two);
    assert_eq!(packed_bytes(root, 7).1, sha);
    assert_eq!(hex(&Sha256::digest(&first)), sha);

    // new mtimes and a read-only bit change nothing; an executable bit or content does
    let status = Command::new("touch")
        .args(["-d", "2011-05-05"])
        .arg(root.join("README.md"))
        .status()
        .unwrap();
    assert!(status.success());
    use std::os::unix::fs::PermissionsExt;
    let file = root.join("NOTES.md");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(packed_bytes(root, 2).1, sha);
    fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();
    let exec_sha = packed_bytes(root, 2).1;
    assert_ne!(exec_sha, sha);
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    write(root, "NOTES.md", "notes!\n");
    assert_ne!(packed_bytes(root, 2).1, sha);
}

#[test]
fn archive_unpacks_to_exactly_the_listed_entries() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    sample(root);
    write(
        root,
        &format!("{}/{}", "d".repeat(140), "f".repeat(120)),
        "long",
    );
    write(root, "empty", "");
    write(root, ".dockerignore", "temp*\n");
    let listed = paths(root);
    let archive = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let mut file = fs::File::create(&archive).unwrap();
    pack(&options(root, 2), &mut file).unwrap();
    drop(file);
    assert!(
        Command::new("gzip")
            .arg("-t")
            .arg(&archive)
            .status()
            .unwrap()
            .success()
    );
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut unpacked: Vec<String> = walkdir::WalkDir::new(out.path())
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let rel = e
                .path()
                .strip_prefix(out.path())
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            if e.file_type().is_dir() {
                format!("{rel}/")
            } else {
                rel
            }
        })
        .collect();
    unpacked.sort();
    let mut expected = listed.clone();
    expected.sort();
    assert_eq!(unpacked, expected);
    assert!(!listed.iter().any(|p| p.starts_with("temp")));
    let big = fs::read(out.path().join("data/big.txt")).unwrap();
    assert_eq!(big, fs::read(root.join("data/big.txt")).unwrap());
}

#[test]
fn symlinks_are_stored_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.txt", "a");
    std::os::unix::fs::symlink("/etc/passwd", root.join("passwd")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
    std::os::unix::fs::symlink("../../outside", root.join("up")).unwrap();
    let entries = list(&options(root, 1)).unwrap();
    let links: Vec<(&str, &EntryKind)> = entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Symlink { .. }))
        .map(|e| (e.path.as_str(), &e.kind))
        .collect();
    assert_eq!(links.len(), 3);
    assert!(entries.iter().all(|e| !e.path.starts_with("etc/")));
    let (bytes, _) = packed_bytes(root, 2);
    let mut decoded = Vec::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut decoded)
        .unwrap();
    let passwd = fs::read(Path::new("/etc/passwd")).unwrap_or_default();
    let needle = &passwd[..passwd.len().min(32)];
    assert!(needle.len() < 8 || !decoded.windows(needle.len()).any(|w| w == needle));
    let listing = Command::new("tar")
        .arg("-tvzf")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(text.contains("passwd -> /etc/passwd"), "{text}");
    assert!(text.contains("up -> ../../outside"), "{text}");
}

#[test]
fn context_command_prints_list_counts_and_the_archive_sha() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ctx");
    sample(&root);
    write(&root, ".dockerignore", "many\ndata\n");
    let archive = dir.path().join("out.tar.gz");
    let output = harness::cli::command()
        .arg("context")
        .arg(&root)
        .arg("--list")
        .arg("-o")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let sha = lines.last().unwrap().strip_prefix("sha256:").unwrap();
    let on_disk = hex(&Sha256::digest(fs::read(&archive).unwrap()));
    assert_eq!(sha, on_disk);
    assert!(lines.contains(&"src/"));
    assert!(lines.contains(&"src/deep/x/util.go"));
    assert!(!lines.iter().any(|l| l.starts_with("many")));
    let files = list(&options(&root, 1))
        .unwrap()
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File { .. }))
        .count();
    assert!(
        lines.contains(&format!("files: {files}").as_str()),
        "{text}"
    );
    assert!(lines[lines.len() - 2].starts_with("size: "));

    // without --list: just the three summary lines, same sha
    let short = harness::cli::command()
        .args(["context", "--threads", "1"])
        .arg(&root)
        .output()
        .unwrap();
    let short = String::from_utf8(short.stdout).unwrap();
    assert_eq!(short.lines().count(), 3);
    assert_eq!(short.lines().last().unwrap(), format!("sha256:{sha}"));

    // A pack that fails leaves the previous archive as it was: the archive is written to a
    // temporary file beside it and renamed only when complete.
    let before = std::fs::read(&archive).unwrap();
    let bad_name = std::ffi::OsStr::from_bytes(b"not-utf8-\xff");
    std::fs::write(root.join(bad_name), "x").unwrap();
    let failed = harness::cli::command()
        .args(["context", "-o"])
        .arg(&archive)
        .arg(&root)
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("not valid UTF-8"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        before,
        "the archive changed"
    );
    let leftovers: Vec<_> = std::fs::read_dir(archive.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let missing = harness::cli::command()
        .arg("context")
        .arg(dir.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}
