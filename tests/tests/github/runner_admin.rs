//! The REST calls of runner pool mode (`hr_github::RunnerAdmin`, through octocrab) against
//! the fake: a PAT buys a JIT runner whose config decodes, buys access tokens and opens a
//! broker session, shows in the list and is deleted; a GitHub App buys installation tokens
//! (again before they expire) and a JIT runner; refused tokens, keys and JWTs, duplicate
//! names, bad requests and runner groups give errors that say what to do and hold no secret.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use harness::fake_github::{FakeGitHub, private_key_pem};
use hr_github::registration::DEFAULT_RUNNER_VERSION;
use hr_github::{
    AdminAuth, AdminError, BrokerClient, GitHubUrl, JitConfig, RunnerAdmin, RunnerIdentity,
    RunnerKey, SigningAlgorithm, TokenSource, client_assertion, jit_labels,
};

const PAT: &str = "ghp_fakepersonalaccesstoken0000000001";

fn runtime() -> tokio::runtime::Runtime {
    harness::install_crypto_provider();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The fake's `octo/hello` with a PAT for it, and its parsed URL.
fn repo_with_pat(fake: &FakeGitHub) -> GitHubUrl {
    let repo = format!("{}/octo/hello", fake.url());
    fake.add_pat(PAT, &repo);
    GitHubUrl::parse(&repo).unwrap()
}

fn labels(extra: &[&str]) -> Vec<String> {
    jit_labels(&extra.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

#[test]
fn a_pat_buys_a_jit_runner_that_works_shows_in_the_list_and_is_deleted() {
    let fake = FakeGitHub::start();
    let github = repo_with_pat(&fake);
    runtime().block_on(async {
        let admin = RunnerAdmin::new(&github, AdminAuth::Pat(PAT.into())).unwrap();
        assert_eq!(admin.runner_group_id(None).await.unwrap(), 1);
        let jit = admin
            .generate_jitconfig("pool-1", 1, &labels(&["gpu"]), "_work")
            .await
            .unwrap();
        assert_eq!(jit.name, "pool-1");

        // The config is the runner's files in the service's form, with a working key.
        let config = JitConfig::decode(&jit.encoded_jit_config).unwrap();
        let settings = &config.settings;
        assert_eq!(settings.agent_id, jit.runner_id);
        assert_eq!(settings.agent_name, "pool-1");
        assert!(settings.ephemeral && settings.use_v2_flow);
        assert_eq!(settings.pool_id, 1);
        assert_eq!(settings.work_folder.as_deref(), Some("_work"));
        let broker_url = format!("{}/broker/", fake.url());
        assert_eq!(settings.server_url_v2.as_deref(), Some(broker_url.as_str()));
        let registered = fake.runners();
        assert_eq!(registered.len(), 1);
        assert_eq!(config.credentials.client_id, registered[0].client_id);
        let http = hr_github::http_client(false).unwrap();
        let tokens = Arc::new(TokenSource::new(
            http.clone(),
            config.credentials.clone(),
            config.key.clone(),
        ));
        let token = tokens.token().await.unwrap();
        assert_eq!(
            fake.token_owner(&token).as_deref(),
            Some(registered[0].client_id.as_str())
        );

        // Listed: offline, then online once its broker session is open.
        let listed = admin.list_runners().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].id, listed[0].name.as_str()),
            (jit.runner_id, "pool-1")
        );
        assert_eq!(listed[0].status, "offline");
        assert!(!listed[0].busy);
        for label in ["self-hosted", "Linux", "X64", "gpu"] {
            assert!(
                listed[0].labels.iter().any(|l| l == label),
                "{label}: {listed:?}"
            );
        }
        let broker = BrokerClient::new(
            http,
            &broker_url,
            Arc::clone(&tokens),
            RunnerIdentity {
                agent_id: jit.runner_id,
                agent_name: jit.name.clone(),
                version: DEFAULT_RUNNER_VERSION.into(),
                disable_update: true,
            },
        );
        broker.create_session("pool host").await.unwrap();
        assert_eq!(admin.list_runners().await.unwrap()[0].status, "online");
        broker.delete_session().await.unwrap();

        assert!(admin.delete_runner(jit.runner_id).await.unwrap());
        assert!(admin.list_runners().await.unwrap().is_empty());
        // Gone already: a second delete says so instead of failing.
        assert!(!admin.delete_runner(jit.runner_id).await.unwrap());
    });
    assert!(fake.runners().is_empty());
}

#[test]
fn the_list_follows_the_link_header_through_every_page() {
    let fake = FakeGitHub::start();
    let github = repo_with_pat(&fake);
    fake.set_max_per_page(2);
    runtime().block_on(async {
        let admin = RunnerAdmin::new(&github, AdminAuth::Pat(PAT.into())).unwrap();
        for i in 1..=5 {
            let name = format!("pool-{i}");
            admin
                .generate_jitconfig(&name, 1, &labels(&[]), "_work")
                .await
                .unwrap();
        }
        let names: Vec<String> = admin
            .list_runners()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["pool-1", "pool-2", "pool-3", "pool-4", "pool-5"]);
    });
}

#[test]
fn a_github_app_buys_installation_tokens_and_a_jit_runner() {
    let fake = FakeGitHub::start();
    let org = format!("{}/octo", fake.url());
    let github = GitHubUrl::parse(&org).unwrap();
    let key = RunnerKey::generate().unwrap();
    fake.add_app(42, &key);
    fake.add_installation(7, 42, &org);
    let app = |key_pem: String, installation_id: u64| AdminAuth::App {
        app_id: 42,
        key_pem,
        installation_id,
    };
    runtime().block_on(async {
        let admin = RunnerAdmin::new(&github, app(private_key_pem(&key), 7)).unwrap();
        let jit = admin
            .generate_jitconfig("org-pool-1", 2, &labels(&[]), "_work")
            .await
            .unwrap();
        let listed = admin.list_runners().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, jit.runner_id);
        assert_eq!(fake.runners()[0].group_id, 2);
        // One token served both calls: it lasts an hour.
        let requests = fake.installation_token_requests();
        assert_eq!(requests.len(), 1);
        assert!(requests[0].outcome.as_ref().unwrap().starts_with("ghs_"));

        // A token with less than 30 s left is replaced before the next call.
        fake.set_installation_token_lifetime(Duration::from_secs(32));
        let short = RunnerAdmin::new(&github, app(private_key_pem(&key), 7)).unwrap();
        short.list_runners().await.unwrap();
        assert_eq!(fake.installation_token_requests().len(), 2);
        tokio::time::sleep(Duration::from_secs(3)).await;
        short.list_runners().await.unwrap();
        assert_eq!(fake.installation_token_requests().len(), 3);

        // A key GitHub does not know for the App: the JWT is refused.
        let other = RunnerKey::generate().unwrap();
        let pem = private_key_pem(&other);
        let wrong = RunnerAdmin::new(&github, app(pem.clone(), 7)).unwrap();
        let err = wrong.list_runners().await.unwrap_err();
        assert!(
            matches!(
                err,
                AdminError::InstallationToken {
                    status: Some(401),
                    ..
                }
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("--app-key-file"), "{text}");
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains(&pem[40..80]),
            "{text}"
        );
        // An installation the App does not have.
        let lost = RunnerAdmin::new(&github, app(private_key_pem(&key), 8)).unwrap();
        let err = lost.list_runners().await.unwrap_err();
        assert_eq!(err.status(), Some(404), "{err:?}");
        assert!(err.to_string().contains("--installation-id"), "{err}");

        // An expired JWT, signed with the right key, is refused with 401.
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let jwt = client_assertion(&key, "42", "x", SigningAlgorithm::Rs256, an_hour_ago);
        let response = reqwest::Client::new()
            .post(format!(
                "{}/api/v3/app/installations/7/access_tokens",
                fake.url()
            ))
            .bearer_auth(jwt)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let refused = fake.installation_token_requests().pop().unwrap();
        assert!(refused.outcome.unwrap_err().contains("('exp')"));
    });
}

#[test]
fn a_bad_pat_is_refused_with_the_remedy_and_never_shown() {
    let fake = FakeGitHub::start();
    let github = repo_with_pat(&fake);
    runtime().block_on(async {
        let wrong = "ghp_wrongtoken0000000000000000000000";
        let admin = RunnerAdmin::new(&github, AdminAuth::Pat(wrong.into())).unwrap();
        let err = admin
            .generate_jitconfig("pool-1", 1, &labels(&[]), "_work")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                AdminError::GenerateJit {
                    status: Some(401),
                    ..
                }
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("Bad credentials"), "{text}");
        assert!(text.contains("check --pat-file"), "{text}");
        assert!(
            text.contains("`repo` scope for a repository runner"),
            "{text}"
        );
        assert!(!text.contains(wrong) && !format!("{err:?}").contains(wrong));
        let err = admin.list_runners().await.unwrap_err();
        assert_eq!(err.status(), Some(401));
        // GitHub takes `token` as well as `Bearer` before a PAT.
        let listed = reqwest::Client::new()
            .get(format!("{}/runners", github.actions_url()))
            .header("Authorization", format!("token {PAT}"))
            .send()
            .await
            .unwrap();
        let status = listed.status().as_u16();
        assert_eq!(status, 200, "{}", listed.text().await.unwrap());

        // A good PAT for another repository: GitHub answers 404.
        let other = GitHubUrl::parse(&format!("{}/octo/other", fake.url())).unwrap();
        let admin = RunnerAdmin::new(&other, AdminAuth::Pat(PAT.into())).unwrap();
        // DELETE's 404 means "already gone"; the list says what is wrong.
        assert!(!admin.delete_runner(1).await.unwrap());
        let err = admin.list_runners().await.unwrap_err();
        assert_eq!(err.status(), Some(404));
        assert!(
            err.to_string().contains("check the owner and repository"),
            "{err}"
        );
    });
}

#[test]
fn duplicate_names_bad_requests_and_unknown_groups_are_refused() {
    let fake = FakeGitHub::start();
    let github = repo_with_pat(&fake);
    runtime().block_on(async {
        let admin = RunnerAdmin::new(&github, AdminAuth::Pat(PAT.into())).unwrap();
        admin
            .generate_jitconfig("pool-1", 1, &labels(&[]), "_work")
            .await
            .unwrap();
        let err = admin
            .generate_jitconfig("POOL-1", 1, &labels(&[]), "_work")
            .await
            .unwrap_err();
        assert!(matches!(err, AdminError::RunnerExists { .. }), "{err:?}");
        assert_eq!(err.status(), Some(409));
        assert!(err.to_string().contains("--name-prefix"), "{err}");
        let err = admin
            .generate_jitconfig("pool-2", 1, &[], "_work")
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(422), "{err:?}");
        assert!(err.to_string().contains("labels"), "{err}");
        let err = admin
            .generate_jitconfig("pool-2", 99, &labels(&[]), "_work")
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(404), "{err:?}");
        assert!(err.to_string().contains("runner group"), "{err}");
    });
    assert_eq!(fake.runners().len(), 1);
}

#[test]
fn runner_groups_are_found_by_name_and_a_missing_one_names_the_others() {
    let fake = FakeGitHub::start();
    let org = format!("{}/octo", fake.url());
    fake.add_pat(PAT, &org);
    let github = GitHubUrl::parse(&org).unwrap();
    runtime().block_on(async {
        let admin = RunnerAdmin::new(&github, AdminAuth::Pat(PAT.into())).unwrap();
        assert_eq!(admin.runner_group_id(Some("gpu")).await.unwrap(), 2);
        assert_eq!(admin.runner_group_id(Some("Default")).await.unwrap(), 1);
        let err = admin.runner_group_id(Some("Nope")).await.unwrap_err();
        assert!(matches!(err, AdminError::NoSuchGroup { .. }), "{err:?}");
        // The GitHub-hosted group is no place for a self-hosted runner.
        assert!(
            err.to_string().contains(
                "no self-hosted runner group named \"Nope\"; the groups are: Default, GPU;"
            ),
            "{err}"
        );
        let err = admin
            .runner_group_id(Some("GitHub Actions"))
            .await
            .unwrap_err();
        assert!(matches!(err, AdminError::NoSuchGroup { .. }), "{err:?}");
    });
}
