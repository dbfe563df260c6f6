//! `config.sh --url --token` on the runner-admin flow against the fake: the registration
//! token buys a runner whose key the fake's token endpoint then accepts; a wrong token, a
//! V1-only instance and an unknown runner group are refused with messages that say what to
//! do.

use harness::fake_github::FakeGitHub;
use hr_github::registration::DEFAULT_RUNNER_VERSION;
use hr_github::{GitHubUrl, RegisterError, RunnerRequest, TokenSource, register};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn http() -> reqwest::Client {
    harness::install_crypto_provider();
    reqwest::Client::new()
}

fn request(group: Option<&str>) -> RunnerRequest {
    RunnerRequest {
        name: "hr-1".to_string(),
        labels: vec!["kaniko".to_string()],
        ephemeral: false,
        disable_update: true,
        runner_group: group.map(str::to_string),
        version: DEFAULT_RUNNER_VERSION.to_string(),
    }
}

#[test]
fn a_registration_token_buys_a_runner_whose_key_the_service_accepts() {
    let fake = FakeGitHub::start();
    let repo = format!("{}/octo/hello", fake.url());
    fake.add_registration_token(&repo, "REGTOKEN");
    let github = GitHubUrl::parse(&repo).unwrap();
    assert_eq!(github.api, format!("{}/api/v3", fake.url()));
    runtime().block_on(async {
        let registered = register(&http(), &github, "REGTOKEN", &request(Some("gpu")))
            .await
            .unwrap();
        let runners = fake.runners();
        assert_eq!(runners.len(), 1);
        let runner = &runners[0];
        assert_eq!(runner.group_id, 2);
        assert_eq!(runner.version, DEFAULT_RUNNER_VERSION);
        assert_eq!(
            runner.labels,
            [
                "self-hosted",
                "Linux",
                hr_github::registration::architecture_label(),
                "kaniko"
            ]
        );
        let s = &registered.settings;
        assert_eq!(s.agent_id, runner.id);
        assert_eq!(s.pool_name.as_deref(), Some("GPU"));
        assert!(s.use_v2_flow && s.use_runner_admin_flow && s.disable_update);
        assert_eq!(s.server_url_v2, Some(format!("{}/broker/", fake.url())));
        assert_eq!(s.github_url.as_deref(), Some(repo.as_str()));
        assert_eq!(registered.credentials.client_id, runner.client_id);
        assert!(registered.credentials.require_fips_cryptography);
        // The key the fake learnt from the XML verifies the runner's PS256 assertion.
        let source = TokenSource::new(
            http(),
            registered.credentials.clone(),
            registered.key.clone(),
        );
        let token = source.token().await.unwrap();
        assert_eq!(fake.token_owner(&token), Some(runner.client_id.clone()));
        assert_eq!(fake.token_requests()[0].algorithm.as_deref(), Some("PS256"));
        // Without a group name: the default group.
        let registered = register(&http(), &github, "REGTOKEN", &request(None))
            .await
            .unwrap();
        assert_eq!(registered.settings.pool_id, 1);
    });
}

#[test]
fn wrong_tokens_v1_only_instances_and_unknown_groups_are_refused_with_the_remedy() {
    let fake = FakeGitHub::start();
    let repo = format!("{}/octo/hello", fake.url());
    fake.add_registration_token(&repo, "REGTOKEN");
    let github = GitHubUrl::parse(&repo).unwrap();
    runtime().block_on(async {
        let err = register(&http(), &github, "WRONG", &request(None))
            .await
            .unwrap_err();
        assert!(
            matches!(err, RegisterError::Refused { status: 401, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("Bad credentials"), "{err}");
        assert!(
            err.to_string()
                .contains("registration tokens last one hour"),
            "{err}"
        );
        // A token for another repository does not register here.
        let other = GitHubUrl::parse(&format!("{}/octo/other", fake.url())).unwrap();
        let err = register(&http(), &other, "REGTOKEN", &request(None))
            .await
            .unwrap_err();
        assert!(matches!(err, RegisterError::Refused { .. }), "{err:?}");
        let err = register(&http(), &github, "REGTOKEN", &request(Some("Nope")))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(
                "no self-hosted runner group named \"Nope\"; the groups are: Default, GPU"
            ),
            "{err}"
        );
        fake.offer_v1_only();
        let err = register(&http(), &github, "REGTOKEN", &request(None))
            .await
            .unwrap_err();
        assert!(matches!(err, RegisterError::NotV2 { .. }), "{err:?}");
        assert!(err.to_string().contains("speaks V2 only"), "{err}");
    });
    assert!(fake.runners().is_empty());
}
