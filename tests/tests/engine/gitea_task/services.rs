//! A Gitea task and the runner's services around it: the daemon's cache server reached
//! by `@actions/cache` across tasks, and the toolkit's GHES gate opened in action bundles.

use super::*;

/// A Gitea task's `actions/cache` client (`@actions/cache` 6.3.0 from npm) reaches the
/// daemon's cache server through `ACTIONS_CACHE_URL` in the v1 protocol (the task's results
/// URL is Gitea's): one task saves, a later task of the repository restores, a task of
/// another repository misses, and the URL's token is masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_task_restores_what_an_earlier_one_saved_through_the_cache_server() {
    let Some(clients) = harness::npm_clients() else {
        return;
    };
    let f = Fixture::new();
    let services = job_services::JobServices::start(job_services::ServicesConfig {
        dir: f.dir.path().join("cache"),
        cache_limit: job_services::DEFAULT_CACHE_LIMIT,
        listen: "127.0.0.1:0".parse().unwrap(),
        advertise_host: None,
        artifact_dir: None,
    })
    .await
    .unwrap();
    let mut settings = f.settings();
    settings.cache = job_services::CacheAccess::Own(std::sync::Arc::new(services));
    settings.envs.push((
        "CACHE_LIB".into(),
        format!(
            "file://{}",
            clients.join("@actions/cache/lib/cache.js").display()
        ),
    ));
    let script = r#"const cache = await import(process.env.CACHE_LIB);
const [cmd, key] = process.argv.slice(2);
if (cmd === 'save') {
  (await import('node:fs')).mkdirSync('data', { recursive: true });
  (await import('node:fs')).writeFileSync('data/f.txt', `saved by ${key}`);
  console.log(`saved id=${await cache.saveCache(['data'], key)}`);
} else {
  const hit = await cache.restoreCache(['data'], key, ['deps-']);
  const text = hit ? (await import('node:fs')).readFileSync('data/f.txt', 'utf8') : '';
  console.log(`restored ${hit ?? 'miss'} ${text}`);
}
"#;
    let payload = |cmd: &str, key: &str| {
        let indented: String = script.lines().map(|l| format!("          {l}\n")).collect();
        format!(
            "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - run: |\n          cat > c.mjs <<'EOF'\n{indented}          EOF\n          node c.mjs {cmd} {key}\n          echo \"url=$ACTIONS_CACHE_URL v2=${{ACTIONS_CACHE_SERVICE_V2:-unset}}\"\n"
        )
    };
    let (run, events) = execute(
        task(
            301,
            &payload("save", "deps-abc"),
            context("https://gitea.example/"),
        ),
        &settings,
    )
    .await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    assert!(
        lines(&events)
            .iter()
            .any(|l| l.starts_with("saved id=") && l != "saved id=-1"),
        "{:#?}",
        lines(&events)
    );
    let (run, events) = execute(
        task(
            302,
            &payload("restore", "deps-zzz"),
            context("https://gitea.example/"),
        ),
        &settings,
    )
    .await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    let all = lines(&events);
    assert!(
        all.iter()
            .any(|l| l == "restored deps-abc saved by deps-abc"),
        "{all:#?}"
    );
    // v1 (no V2 switch), and the token in the URL is masked.
    assert!(
        all.iter()
            .any(|l| l.starts_with("url=http://127.0.0.1:") && l.ends_with("/_cache/***/ v2=unset")),
        "{all:#?}"
    );
    let mut other = context("https://gitea.example/");
    other["repository"] = serde_json::json!("someone/else");
    let (_, events) = execute(task(303, &payload("restore", "deps-zzz"), other), &settings).await;
    assert!(
        lines(&events).iter().any(|l| l == "restored miss "),
        "{:#?}",
        lines(&events)
    );
}

/// In a Gitea task, a repository JavaScript action bundling `@actions/artifact` (its real
/// `isGhes`, taken from the npm package) finds the server no GitHub Enterprise: the runner
/// opened the toolkit's gate, as Gitea's runner does; the same code outside the action's
/// bundle still says GHES.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_toolkit_ghes_gate_is_opened_in_action_bundles_for_gitea() {
    let Some(clients) = harness::npm_clients() else {
        return;
    };
    let config =
        std::fs::read_to_string(clients.join("@actions/artifact/lib/internal/shared/config.js"))
            .unwrap();
    let start = config
        .find("function isGhes()")
        .expect("isGhes in the toolkit");
    let end = start + config[start..].find("\n}").unwrap() + 2;
    let is_ghes = &config[start..end];
    let bundle = format!(
        "{is_ghes}\nclass GHESNotSupportedError extends Error {{}}\nconsole.log('bundle isGhes=' + isGhes());\n"
    );
    let f = Fixture::new();
    let mirror = f.dir.path().join("mirror");
    let action = mirror.join("acme").join("artifact");
    std::fs::create_dir_all(&action).unwrap();
    git(&action, &["init", "-q", "-b", "main"]);
    std::fs::write(
        action.join("action.yml"),
        "name: artifact\nruns:\n  using: node20\n  main: index.js\n",
    )
    .unwrap();
    std::fs::write(action.join("index.js"), &bundle).unwrap();
    std::fs::write(
        f.dir.path().join("plain.js"),
        format!("{is_ghes}\nconsole.log('plain isGhes=' + isGhes());\n"),
    )
    .unwrap();
    git(&action, &["add", "."]);
    git(&action, &["commit", "-q", "-m", "bundle"]);
    git(&action, &["tag", "v4"]);
    let payload = format!(
        "name: CI\n\"on\": push\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - uses: acme/artifact@v4\n      - run: node {}\n",
        f.dir.path().join("plain.js").display()
    );
    let mut ctx = context("https://gitea.example/");
    ctx["gitea_default_actions_url"] =
        serde_json::Value::String(format!("file://{}", mirror.display()));
    let (run, events) = execute(task(61, &payload, ctx), &f.settings()).await;
    assert_eq!(run.result, Outcome::Success, "{:#?}", lines(&events));
    assert!(
        has_line(&events, "bundle isGhes=false"),
        "{:#?}",
        lines(&events)
    );
    assert!(
        has_line(&events, "plain isGhes=true"),
        "{:#?}",
        lines(&events)
    );
}
