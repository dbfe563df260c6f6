//! `exec`'s cache server against GitHub's own client, `@actions/cache` from npm (pinned,
//! installed by `.ci/test`), run in `node` steps: save and restore through both protocols
//! (v2 by default, v1 when a job empties `ACTIONS_CACHE_SERVICE_V2`), exact, prefix and
//! missed keys, a 100 MB entry in 32 MiB chunks, a later job and a later run (the server
//! restarted) restoring what an earlier one saved, a tampered entry refused on download,
//! two jobs saving one key at once (the first commit wins), eviction at the size limit,
//! and an upload whose chunks do not add up refused at its commit.

use super::*;

/// The steps' helper: `make DIR BYTES`, `save DIR KEY`, `restore DIR KEY [RESTORE_KEY…]`,
/// each printing one line the tests look for.
const CACHE_SCRIPT: &str = r#"import fs from 'node:fs';
import crypto from 'node:crypto';
const cache = await import(process.env.CACHE_LIB);
const [cmd, dir, arg, ...rest] = process.argv.slice(2);
const sha = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
if (cmd === 'make') {
  fs.mkdirSync(dir, { recursive: true });
  const out = fs.openSync(`${dir}/blob.bin`, 'w');
  for (let left = Number(arg); left > 0; left -= 1 << 20) {
    fs.writeSync(out, crypto.randomBytes(Math.min(left, 1 << 20)));
  }
  fs.closeSync(out);
  console.log(`made ${dir} sha=${sha(`${dir}/blob.bin`)}`);
} else if (cmd === 'save') {
  const id = await cache.saveCache([dir], arg);
  console.log(`saved ${arg} id=${id}`);
} else if (cmd === 'restore') {
  fs.rmSync(dir, { recursive: true, force: true });
  const hit = await cache.restoreCache([dir], arg, rest);
  console.log(`restore ${arg} -> ${hit ?? 'miss'}` + (hit ? ` sha=${sha(`${dir}/blob.bin`)}` : ''));
}
"#;

/// A repository with `workflow` and the helper script, and the `exec` arguments that
/// give the steps the client and the cache folder `cache`.
fn cache_repo(workflow: &str) -> Option<(Repo, Vec<String>)> {
    let clients = harness::npm_clients()?;
    let repo = Repo::with(workflow);
    repo.write("cache.mjs", CACHE_SCRIPT);
    let lib = clients.join("@actions/cache/lib/cache.js");
    let args = vec![
        "--env".to_string(),
        format!("CACHE_LIB=file://{}", lib.display()),
    ];
    Some((repo, args))
}

fn exec_cache(repo: &Repo, args: &[String], cache: &Path, more: &[&str]) -> Run {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["--cache-server-path", cache.to_str().unwrap()]);
    all.extend_from_slice(more);
    repo.exec(&all)
}

/// The value after `prefix` on the line that starts with it.
fn value_after<'a>(out: &'a str, prefix: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest.trim()))
}

#[test]
fn saves_and_restores_through_both_protocols_a_later_job_and_a_later_run() {
    let Some((repo, args)) = cache_repo(
        r#"on: push
jobs:
  save-v2:
    runs-on: ubuntu-latest
    steps:
      - run: node cache.mjs make small 1000000
      - run: node cache.mjs save small small-linux-aaa
  restore-v2:
    needs: save-v2
    runs-on: ubuntu-latest
    steps:
      - run: node cache.mjs restore small small-linux-aaa
      - run: node cache.mjs restore small small-linux-zzz small-linux- small-
      - run: node cache.mjs restore small nothing-here other-
  save-v1:
    runs-on: ubuntu-latest
    env:
      ACTIONS_CACHE_SERVICE_V2: ''
    steps:
      - run: node cache.mjs make big 100000000
      - run: node cache.mjs save big big-linux-v1
  restore-v1:
    needs: save-v1
    runs-on: ubuntu-latest
    env:
      ACTIONS_CACHE_SERVICE_V2: ''
    steps:
      - run: node cache.mjs restore big big-linux-v1
"#,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let run = exec_cache(
        &repo,
        &args,
        &cache,
        &["-j", "restore-v2", "-j", "restore-v1", "--concurrency", "2"],
    );
    run.assert_code(0);
    let out = &run.stdout;
    let small = value_after(out, "made small sha=")
        .expect("small made")
        .to_string();
    let big = value_after(out, "made big sha=")
        .expect("big made")
        .to_string();
    for wanted in [
        format!("restore small-linux-aaa -> small-linux-aaa sha={small}"),
        format!("restore small-linux-zzz -> small-linux-aaa sha={small}"),
        "restore nothing-here -> miss".to_string(),
        format!("restore big-linux-v1 -> big-linux-v1 sha={big}"),
    ] {
        assert!(out.contains(&wanted), "{wanted}\n{}", run.all());
    }
    assert!(
        out.contains("Cache hit for restore-key: small-linux-aaa"),
        "{}",
        run.all()
    );
    // The v2 job uploaded through the signed blob URL (the Azure SDK's progress lines), the
    // v1 job in chunks to the REST API.
    let sent = |job: &str| {
        out.lines()
            .any(|l| l.starts_with(&format!("[{job}]")) && l.contains("Sent "))
    };
    assert!(sent("save-v2") && !sent("save-v1"), "{}", run.all());
    // The token is masked wherever a step prints it.
    assert!(!out.contains("eyJ"), "{}", run.all());

    // A later run (the server restarted on the same folder) restores both, unless an
    // entry's data changed on disk: that download is cut short and the entry removed.
    let entries = cache.join("cache/entries");
    let small_entry = std::fs::read_dir(&entries)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "json")
                && std::fs::read_to_string(p)
                    .unwrap()
                    .contains("small-linux-aaa")
        })
        .expect("the small entry's metadata");
    let data = small_entry.with_extension("data");
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    repo.write(
        ".github/workflows/ci.yml",
        r#"on: push
jobs:
  later:
    runs-on: ubuntu-latest
    steps:
      - run: node cache.mjs restore big big-linux-
      - run: node cache.mjs restore small small-linux-aaa
      - run: node cache.mjs restore small small-linux-aaa
"#,
    );
    let run = exec_cache(&repo, &args, &cache, &[]);
    run.assert_code(0);
    let out = &run.stdout;
    assert!(
        out.contains(&format!("restore big-linux- -> big-linux-v1 sha={big}")),
        "{}",
        run.all()
    );
    assert_eq!(
        out.matches("restore small-linux-aaa -> miss").count(),
        2,
        "the tampered entry fails its download, then is gone: {}",
        run.all()
    );
    assert!(!small_entry.exists(), "the tampered entry was removed");
}

#[test]
fn two_saves_of_one_key_keep_the_first_commit() {
    let Some((repo, args)) = cache_repo(
        r#"on: push
jobs:
  one:
    runs-on: ubuntu-latest
    defaults:
      run:
        working-directory: one
    steps:
      - run: node ../cache.mjs make d 3000000
      - run: node ../cache.mjs save d same-key
  two:
    runs-on: ubuntu-latest
    defaults:
      run:
        working-directory: two
    steps:
      - run: node ../cache.mjs make d 3000000
      - run: node ../cache.mjs save d same-key
"#,
    ) else {
        return;
    };
    repo.write("one/.keep", "");
    repo.write("two/.keep", "");
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let run = exec_cache(&repo, &args, &cache, &["--concurrency", "2"]);
    run.assert_code(0);
    let saved: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.split_once("saved same-key id=").map(|(_, id)| id.trim()))
        .collect();
    assert_eq!(saved.len(), 2, "{}", run.all());
    let committed = saved
        .iter()
        .filter(|id| id.parse::<i64>().unwrap_or(-1) > 0)
        .count();
    assert_eq!(committed, 1, "exactly one save commits: {}", run.all());
    let json = std::fs::read_dir(cache.join("cache/entries"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .count();
    assert_eq!(json, 1, "{}", run.all());
}

#[test]
fn the_least_recently_used_entries_go_past_the_size_limit() {
    let Some((repo, args)) = cache_repo(
        r#"on: push
jobs:
  first:
    runs-on: ubuntu-latest
    steps:
      - run: node cache.mjs make d 200000 && node cache.mjs save d entry-1
  second:
    needs: first
    runs-on: ubuntu-latest
    steps:
      - run: node cache.mjs make d 200000 && node cache.mjs save d entry-2
      - run: node cache.mjs restore d entry-1
  third:
    needs: second
    runs-on: ubuntu-latest
    steps:
      - run: node cache.mjs make d 200000 && node cache.mjs save d entry-3
      - run: node cache.mjs restore d entry-1
      - run: node cache.mjs restore d entry-2
      - run: node cache.mjs restore d entry-3
"#,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // Two entries fit, three do not: entry-2, not restored since it was saved, goes.
    let run = exec_cache(&repo, &args, &cache, &["--cache-server-max-size", "500KiB"]);
    run.assert_code(0);
    let out = &run.stdout;
    for wanted in [
        "restore entry-1 -> entry-1",
        "restore entry-2 -> miss",
        "restore entry-3 -> entry-3",
    ] {
        assert!(out.contains(wanted), "{wanted}\n{}", run.all());
    }
}

#[test]
fn an_upload_whose_chunks_do_not_cover_its_size_is_refused_at_commit() {
    let Some((repo, args)) = cache_repo(
        r#"on: push
jobs:
  corrupt:
    runs-on: ubuntu-latest
    steps:
      - run: |
          base="$ACTIONS_CACHE_URL"
          id=$(curl -sS -X POST -H 'Content-Type: application/json' \
            -d '{"key":"broken","version":"v","cacheSize":20}' "${base}_apis/artifactcache/caches" \
            | sed 's/.*"cacheId":\([0-9]*\).*/\1/')
          curl -sS -X PATCH -H 'Content-Range: bytes 0-9/*' --data-binary 0123456789 \
            "${base}_apis/artifactcache/caches/$id"
          code=$(curl -sS -o body.json -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
            -d '{"size":20}' "${base}_apis/artifactcache/caches/$id")
          echo "commit answered $code: $(cat body.json)"
          echo "lookup answered $(curl -sS -o /dev/null -w '%{http_code}' "${base}_apis/artifactcache/cache?keys=broken&version=v")"
          echo "a forged token answered $(curl -sS -o /dev/null -w '%{http_code}' "${base%/*/}/forged.token.here/_apis/artifactcache/cache?keys=broken&version=v")"
"#,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = exec_cache(&repo, &args, &dir.path().join("cache"), &[]);
    run.assert_code(0);
    let out = &run.stdout;
    assert!(
        out.contains("commit answered 400") && out.contains("the upload is not whole"),
        "{}",
        run.all()
    );
    assert!(out.contains("lookup answered 204"), "{}", run.all());
    assert!(out.contains("a forged token answered 401"), "{}", run.all());
}

#[test]
fn cache_mode_limits_what_each_job_may_do_and_reaches_its_steps() {
    let Some((repo, args)) = cache_repo(
        r#"on: push
cache-mode: read
jobs:
  write-only:
    cache-mode: write-only
    runs-on: ubuntu-latest
    steps:
      - run: echo "mode=$ACTIONS_CACHE_MODE"
      - run: node cache.mjs make d 200000
      - run: node cache.mjs save d wo-key
      - run: node cache.mjs restore d wo-key
  read:
    needs: write-only
    runs-on: ubuntu-latest
    steps:
      - run: node cache.mjs restore d wo-key
      - run: node cache.mjs make d 200000
      - run: node cache.mjs save d read-key
      # A client that does not read ACTIONS_CACHE_MODE: the server refuses it.
      - run: node cache.mjs save d read-key
        env:
          ACTIONS_CACHE_MODE: ''
  none:
    needs: read
    cache-mode: none
    runs-on: ubuntu-latest
    steps:
      - run: node cache.mjs restore d wo-key
"#,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = exec_cache(&repo, &args, &dir.path().join("cache"), &[]);
    run.assert_code(0);
    let out = run.all();
    // Declared modes are shown when the job starts and exported to its steps.
    assert!(out.contains("Cache mode: write-only"), "{out}");
    assert!(out.contains("Cache mode: read"), "{out}");
    assert!(out.contains("mode=write-only"), "{out}");
    // write-only saves but cannot restore even what it saved.
    let id = value_after(&out, "saved wo-key id=").unwrap();
    assert!(id.parse::<i64>().unwrap() > 0, "{out}");
    assert!(out.contains("restore wo-key -> miss"), "{out}");
    assert!(
        out.contains(
            "Cache restore skipped: the effective cache-mode 'write-only' does not permit reads."
        ),
        "{out}"
    );
    // read (the workflow's mode) restores it, and cannot save.
    assert!(out.contains("restore wo-key -> wo-key"), "{out}");
    assert!(
        out.contains("Cache save skipped: the effective cache-mode 'read' does not permit writes."),
        "{out}"
    );
    let saves: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once("saved read-key id=").map(|(_, id)| id.trim()))
        .collect();
    assert_eq!(saves, ["-1", "-1"], "{out}");
    // The server refused the client that ignores the mode: only wo-key was stored.
    let stored: Vec<String> = std::fs::read_dir(dir.path().join("cache/cache/entries"))
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "json").then(|| std::fs::read_to_string(path).ok())?
        })
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].contains("wo-key"), "{stored:?}");
    // none: nothing.
    assert_eq!(out.matches("restore wo-key -> miss").count(), 2, "{out}");
}
