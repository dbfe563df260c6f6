//! `hybrid-runner register --github URL --token TOKEN` as a process against the fake: the
//! three files actions/runner keeps, mode 0600, in its own form (byte order mark,
//! camelCase), whose key and credentials then buy a token; `--keep-existing`; and a
//! refused token as a clear error.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use harness::fake_github::FakeGitHub;
use hr_github::{OAuthCredentials, RunnerKey, RunnerSettings, TokenSource};

fn register(dir: &Path, url: &str, token: &str, extra: &[&str]) -> Output {
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!("runner:\n  file: {}\n", dir.join(".runner").display()),
    )
    .unwrap();
    harness::cli::command()
        .arg("register")
        .args(["-c", config.to_str().unwrap(), "--no-interactive"])
        .args(["--github", url, "--token", token])
        .args(extra)
        .env_remove("ACTIONS_RUNNER_INPUT_TOKEN")
        .output()
        .unwrap()
}

fn read(path: &Path) -> String {
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn register_writes_the_runner_files_and_their_key_buys_a_token() {
    let fake = FakeGitHub::start();
    let repo = format!("{}/octo/hello", fake.url());
    fake.add_registration_token(&repo, "REGTOKEN");
    let dir = tempfile::tempdir().unwrap();
    let out = register(
        dir.path(),
        &repo,
        "REGTOKEN",
        &[
            "--name",
            "hr-7",
            "--labels",
            "gpu,pods:kubernetes://node:22",
            "--runner-group",
            "GPU",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["name"], "hr-7");
    assert_eq!(report["runner_group"], "GPU");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("REGTOKEN"));

    let runner = read(&dir.path().join(".runner"));
    assert!(runner.starts_with('\u{feff}'), "{runner}");
    assert!(runner.contains("\"agentName\": \"hr-7\""), "{runner}");
    let settings = RunnerSettings::parse(&runner).unwrap();
    assert_eq!(settings.github_url.as_deref(), Some(repo.as_str()));
    let labels: serde_json::Value =
        serde_json::from_str(runner.trim_start_matches('\u{feff}')).unwrap();
    assert_eq!(
        labels["labels"],
        serde_json::json!(["gpu:host", "pods:kubernetes://node:22"])
    );
    let registered = &fake.runners()[0];
    assert_eq!(registered.name, "hr-7");
    assert!(
        registered
            .labels
            .ends_with(&["gpu".to_string(), "pods".to_string()])
    );

    let credentials = OAuthCredentials::parse(&read(&dir.path().join(".credentials"))).unwrap();
    let params: serde_json::Value = serde_json::from_str(
        read(&dir.path().join(".credentials_rsaparams")).trim_start_matches('\u{feff}'),
    )
    .unwrap();
    let key = RunnerKey::from_rsa_parameters(&params).unwrap();
    harness::install_crypto_provider();
    let token = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            TokenSource::new(reqwest::Client::new(), credentials, key)
                .token()
                .await
                .unwrap()
        });
    assert_eq!(fake.token_owner(&token), Some(registered.client_id.clone()));

    // --keep-existing leaves a usable registration alone, without calling GitHub.
    let out = register(dir.path(), &repo, "USED-UP", &["--keep-existing"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("kept the registration of hr-7"));
    assert_eq!(fake.runners().len(), 1);
}

#[test]
fn a_refused_token_fails_with_the_remedy_and_writes_nothing() {
    let fake = FakeGitHub::start();
    let repo = format!("{}/octo/hello", fake.url());
    let dir = tempfile::tempdir().unwrap();
    let out = register(dir.path(), &repo, "NOT-A-TOKEN", &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Bad credentials") && stderr.contains("registration tokens last one hour"),
        "{stderr}"
    );
    assert!(!dir.path().join(".runner").exists());
    assert!(!dir.path().join(".credentials_rsaparams").exists());
    // A URL that names no repository or organisation is a usage error.
    let out = register(dir.path(), &fake.url(), "X", &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn remove_unregisters_the_runner_and_deletes_its_files() {
    let fake = FakeGitHub::start();
    let repo = format!("{}/octo/hello", fake.url());
    fake.add_registration_token(&repo, "REGTOKEN");
    let dir = tempfile::tempdir().unwrap();
    let out = register(dir.path(), &repo, "REGTOKEN", &["--name", "gone-soon"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fake.runners().len(), 1);
    let remove = |token: &str| {
        harness::cli::command()
            .arg("remove")
            .args(["-c", dir.path().join("config.yaml").to_str().unwrap()])
            .args(["--token", token])
            .env_remove("ACTIONS_RUNNER_INPUT_TOKEN")
            .output()
            .unwrap()
    };
    // A wrong token removes nothing and keeps the files.
    let out = remove("WRONG");
    assert_eq!(out.status.code(), Some(1));
    assert!(dir.path().join(".runner").exists());
    assert_eq!(fake.runners().len(), 1);
    let out = remove("REGTOKEN");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed from"));
    assert!(fake.runners().is_empty());
    for file in [".runner", ".credentials", ".credentials_rsaparams"] {
        assert!(!dir.path().join(file).exists(), "{file}");
    }
    // Nothing left to remove: a usage error.
    let out = remove("REGTOKEN");
    assert_eq!(out.status.code(), Some(2));
}
