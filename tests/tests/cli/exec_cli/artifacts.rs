//! `exec --artifact-server-path` against GitHub's own client, `@actions/artifact` from npm
//! (6.2.1, and 2.3.2, which `upload-artifact@v4`/`download-artifact@v4` bundle), in `node`
//! steps: a job uploads a 20 MB artifact (several 8 MiB blocks, sent in parallel) and a
//! `needs` job of the run finds it by name and downloads it whole; the files land under
//! the folder per run and name; a second upload of the name is refused; without the
//! folder the client is told how to get one.

use super::*;
use std::path::PathBuf;

/// `up NAME DIR`, `down NAME DIR`, with the client library `$ARTIFACT_LIB`.
const ARTIFACT_SCRIPT: &str = r#"import fs from 'node:fs';
import path from 'node:path';
const lib = await import(process.env.ARTIFACT_LIB);
const Client = lib.DefaultArtifactClient ?? lib.default.DefaultArtifactClient;
const client = new Client();
const [cmd, name, dir] = process.argv.slice(2);
try {
  if (cmd === 'up') {
    const files = fs.readdirSync(dir).map((f) => path.join(dir, f));
    const r = await client.uploadArtifact(name, files, dir);
    console.log(`uploaded ${name} id=${r.id} size=${r.size}`);
  } else if (cmd === 'down') {
    const { artifact } = await client.getArtifact(name);
    const r = await client.downloadArtifact(artifact.id, { path: dir });
    console.log(`downloaded ${name} into ${r.downloadPath} mismatch=${r.digestMismatch}`);
  }
} catch (e) {
  console.log(`failed ${cmd} ${name}: ${e.message}`);
}
"#;

fn artifact_repo(workflow: &str) -> Option<(Repo, PathBuf)> {
    let clients = harness::npm_clients()?;
    let repo = Repo::with(workflow);
    repo.write("artifact.mjs", ARTIFACT_SCRIPT);
    Some((repo, clients))
}

const WORKFLOW: &str = r#"on: push
jobs:
  up:
    runs-on: ubuntu-latest
    steps:
      - run: |
          mkdir -p out-$LIB_NAME
          head -c 20000000 /dev/urandom > out-$LIB_NAME/big.bin
          echo "hello from up" > out-$LIB_NAME/note.txt
          echo "up sha $(sha256sum < out-$LIB_NAME/big.bin)"
      - run: node artifact.mjs up dist-$LIB_NAME out-$LIB_NAME
      - run: node artifact.mjs up dist-$LIB_NAME out-$LIB_NAME
  down:
    needs: up
    runs-on: ubuntu-latest
    steps:
      - run: node artifact.mjs down dist-$LIB_NAME got-$LIB_NAME
      - run: |
          echo "down sha $(sha256sum < got-$LIB_NAME/big.bin)"
          echo "note says $(cat got-$LIB_NAME/note.txt)"
"#;

#[test]
fn a_needs_job_downloads_what_the_first_job_uploaded_with_both_client_versions() {
    let Some((repo, clients)) = artifact_repo(WORKFLOW) else {
        return;
    };
    for (lib_name, lib) in [
        ("v6", clients.join("@actions/artifact/lib/artifact.js")),
        ("v2", clients.join("artifact-v2/lib/artifact.js")),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = dir.path().join("artifacts");
        let run = repo.exec(&[
            "--artifact-server-path",
            artifacts.to_str().unwrap(),
            "--cache-server-path",
            dir.path().join("cache").to_str().unwrap(),
            "--env",
            &format!("ARTIFACT_LIB=file://{}", lib.display()),
            "--env",
            &format!("LIB_NAME={lib_name}"),
        ]);
        run.assert_code(0);
        let out = &run.stdout;
        let up = value_after(out, "up sha ").expect("the upload's hash");
        let down = value_after(out, "down sha ").expect("the download's hash");
        assert_eq!(up, down, "{}", run.all());
        for wanted in [
            format!("uploaded dist-{lib_name} id="),
            format!("downloaded dist-{lib_name} into got-{lib_name} mismatch=false"),
            "note says hello from up".to_string(),
            // The second upload of the name in the run.
            format!("failed up dist-{lib_name}:"),
        ] {
            assert!(out.contains(&wanted), "{wanted}\n{}", run.all());
        }
        assert!(out.contains("already exists in this run"), "{}", run.all());
        // DIR/<run>/<name>/<name>.zip
        let zips: Vec<PathBuf> = walk(&artifacts)
            .into_iter()
            .filter(|p| p.ends_with(format!("dist-{lib_name}/dist-{lib_name}.zip")))
            .collect();
        assert_eq!(zips.len(), 1, "{zips:?}");
    }
}

#[test]
fn without_an_artifact_folder_the_client_is_told_how_to_get_one() {
    let Some((repo, clients)) = artifact_repo(
        "on: push\njobs:\n  up:\n    runs-on: ubuntu-latest\n    steps:\n      - run: mkdir -p o && echo x > o/x.txt && node artifact.mjs up a o\n",
    ) else {
        return;
    };
    let lib = clients.join("@actions/artifact/lib/artifact.js");
    let dir = tempfile::tempdir().unwrap();
    let run = repo.exec(&[
        "--cache-server-path",
        dir.path().join("cache").to_str().unwrap(),
        "--env",
        &format!("ARTIFACT_LIB=file://{}", lib.display()),
    ]);
    run.assert_code(0);
    assert!(
        run.stdout.contains("failed up a:") && run.stdout.contains("--artifact-server-path DIR"),
        "{}",
        run.all()
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The rest of the output line after `prefix` (not the step's own command line).
fn value_after<'a>(out: &'a str, prefix: &str) -> Option<&'a str> {
    out.lines()
        .filter(|l| !l.contains("$("))
        .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest.trim()))
}
