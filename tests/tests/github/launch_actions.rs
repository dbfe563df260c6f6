//! Resolving a job's actions on the fake launch service: the answer's archive is downloaded
//! with the download token; an action the service does not have is named in the error.

use harness::fake_github::FakeGitHub;
use hr_github::{ActionToResolve, LaunchError, download_archive, resolve_actions};
use serde_json::json;

#[test]
fn actions_resolve_to_archives_and_unknown_ones_are_named() {
    let fake = FakeGitHub::start();
    let archive: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    fake.add_action("actions/checkout@v4", "0123abcd", archive.clone());
    let job = fake.queue_job("c", json!({}));
    let launch = job.message["variables"]["system.github.launch_endpoint"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    harness::install_crypto_provider();
    let http = hr_github::http_client(false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let checkout = ActionToResolve {
                action: "actions/checkout".into(),
                version: "v4".into(),
                path: String::new(),
            };
            let resolved = resolve_actions(
                &http,
                &launch,
                &job.job_token,
                &job.plan_id,
                &job.job_id,
                std::slice::from_ref(&checkout),
            )
            .await
            .unwrap();
            let download = &resolved[&checkout.key()];
            assert_eq!(download.resolved_sha, "0123abcd");
            let into = dir.path().join("checkout.tar.gz");
            let written = download_archive(&http, download, &into).await.unwrap();
            assert_eq!(written, archive.len() as u64);
            assert_eq!(std::fs::read(&into).unwrap(), archive);
            // Without the download token the archive is not served.
            let mut anonymous = download.clone();
            anonymous.authentication = None;
            let err = download_archive(&http, &anonymous, &into)
                .await
                .unwrap_err();
            assert!(
                matches!(err, LaunchError::Failed { status: 404, .. }),
                "{err:?}"
            );

            let missing = ActionToResolve {
                action: "octo/nope".into(),
                version: "v1".into(),
                path: String::new(),
            };
            let err = resolve_actions(
                &http,
                &launch,
                &job.job_token,
                &job.plan_id,
                &job.job_id,
                &[checkout, missing],
            )
            .await
            .unwrap_err();
            assert!(err.to_string().contains("octo/nope@v1"), "{err}");
            // Another job's token resolves nothing.
            let err = resolve_actions(&http, &launch, "wrong", &job.plan_id, &job.job_id, &[])
                .await
                .unwrap_err();
            assert!(
                matches!(err, LaunchError::Failed { status: 401, .. }),
                "{err:?}"
            );
        });
}
