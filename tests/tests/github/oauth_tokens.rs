//! The runner's access tokens: its client assertion, signed with its key, is verified by
//! the fake's token endpoint; the token is kept and fetched again after `invalidate`; a
//! key the service does not know is refused with a message that says what to do.

use harness::fake_github::{FakeGitHub, OAuthClient};
use hr_github::{OAuthCredentials, RunnerKey, TokenError, TokenSource};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn credentials(fake: &FakeGitHub, client_id: &str, fips: bool) -> OAuthCredentials {
    OAuthCredentials {
        client_id: client_id.to_string(),
        authorization_url: fake.authorization_url(),
        oauth_endpoint_url: None,
        require_fips_cryptography: fips,
        authorization_url_v2: None,
        enable_auth_migration_by_default: false,
    }
}

fn http() -> reqwest::Client {
    harness::install_crypto_provider();
    reqwest::Client::new()
}

#[test]
fn a_runner_key_buys_a_token_in_both_algorithms_and_keeps_it() {
    let fake = FakeGitHub::start();
    let key = RunnerKey::generate().unwrap();
    fake.add_client(
        "runner-a",
        OAuthClient {
            modulus: key.modulus(),
            exponent: key.exponent(),
        },
    );
    runtime().block_on(async {
        for (fips, alg) in [(false, "RS256"), (true, "PS256")] {
            let before = fake.token_requests().len();
            let source =
                TokenSource::new(http(), credentials(&fake, "runner-a", fips), key.clone());
            let token = source.token().await.unwrap();
            assert_eq!(fake.token_owner(&token).as_deref(), Some("runner-a"));
            // Kept: no second request.
            assert_eq!(source.token().await.unwrap(), token);
            let requests = fake.token_requests();
            assert_eq!(requests.len(), before + 1);
            assert_eq!(requests[before].algorithm.as_deref(), Some(alg));
            // After invalidate (a 401, or ForceTokenRefresh), a new one.
            source.invalidate().await;
            let next = source.token().await.unwrap();
            assert_ne!(next, token);
            assert_eq!(fake.token_requests().len(), before + 2);
        }
    });
}

#[test]
fn an_unknown_key_is_refused_with_the_remedy() {
    let fake = FakeGitHub::start();
    let registered = RunnerKey::generate().unwrap();
    let other = RunnerKey::generate().unwrap();
    fake.add_client(
        "runner-b",
        OAuthClient {
            modulus: registered.modulus(),
            exponent: registered.exponent(),
        },
    );
    runtime().block_on(async {
        // Signed with a key that is not the registered one.
        let source = TokenSource::new(http(), credentials(&fake, "runner-b", false), other);
        let err = source.token().await.unwrap_err();
        assert!(
            matches!(err, TokenError::Refused { status: 401, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("the signature does not verify"), "{text}");
        assert!(text.contains("register it again"), "{text}");
        // A client the service never registered.
        let source = TokenSource::new(http(), credentials(&fake, "nobody", false), registered);
        let err = source.token().await.unwrap_err();
        assert!(err.to_string().contains("unknown client nobody"), "{err}");
    });
    assert!(fake.token_requests().iter().all(|r| r.outcome.is_err()));
}
