//! The OAuth client assertion: a JWT the runner signs with its key and exchanges for an
//! access token (`grant_type=client_credentials`, RFC 7523). As actions/runner makes it
//! (`src/Sdk/WebApi/WebApi/OAuth/VssOAuthJwtBearerAssertion.cs`, `Jwt/JsonWebToken.cs`):
//! header `{"typ":"JWT","alg":…}`, claims `iss` = `sub` = the client id, `aud` = the
//! authorization URL, `nbf` = now, `exp` = now + 5 min, a random `jti`, and no `iat`.
//! Signed RS256, or PS256 (salt as long as the hash) when the credentials ask for FIPS
//! cryptography, as runner-admin registrations do.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::json;

use crate::key::RunnerKey;

/// How long an assertion is valid (`BearerTokenLifetime`).
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// The two algorithms actions/runner signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    Rs256,
    Ps256,
}

impl SigningAlgorithm {
    /// PS256 when the credentials require FIPS cryptography, else RS256.
    pub fn for_credentials(require_fips: bool) -> SigningAlgorithm {
        if require_fips {
            SigningAlgorithm::Ps256
        } else {
            SigningAlgorithm::Rs256
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::Rs256 => "RS256",
            SigningAlgorithm::Ps256 => "PS256",
        }
    }
}

/// A signed client assertion for `client_id` towards `audience`, valid from `now`.
pub fn client_assertion(
    key: &RunnerKey,
    client_id: &str,
    audience: &str,
    algorithm: SigningAlgorithm,
    now: SystemTime,
) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let header = json!({"typ": "JWT", "alg": algorithm.as_str()});
    let claims = json!({
        "sub": client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iss": client_id,
        "aud": audience,
        "nbf": secs,
        "exp": secs + ASSERTION_LIFETIME.as_secs(),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = match algorithm {
        SigningAlgorithm::Rs256 => rsa::pkcs1v15::SigningKey::<Sha256>::new(key.key.clone())
            .sign(signing_input.as_bytes())
            .to_vec(),
        SigningAlgorithm::Ps256 => rsa::pss::SigningKey::<Sha256>::new(key.key.clone())
            .sign(signing_input.as_bytes())
            .to_vec(),
    };
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::signature::Verifier;

    fn parts(jwt: &str) -> (serde_json::Value, serde_json::Value, Vec<u8>, String) {
        let mut it = jwt.split('.');
        let (h, c, s) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        assert!(it.next().is_none());
        let decode = |p: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
        (
            decode(h),
            decode(c),
            URL_SAFE_NO_PAD.decode(s).unwrap(),
            format!("{h}.{c}"),
        )
    }

    #[test]
    fn assertions_verify_with_the_public_key_in_both_algorithms() {
        let key = crate::test_key();
        let public = key.key.to_public_key();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for algorithm in [SigningAlgorithm::Rs256, SigningAlgorithm::Ps256] {
            let jwt = client_assertion(
                &key,
                "client-1",
                "https://auth.example/token",
                algorithm,
                now,
            );
            let (header, claims, signature, input) = parts(&jwt);
            assert_eq!(header["alg"], algorithm.as_str());
            assert_eq!(header["typ"], "JWT");
            assert_eq!(claims["iss"], "client-1");
            assert_eq!(claims["sub"], "client-1");
            assert_eq!(claims["aud"], "https://auth.example/token");
            assert_eq!(claims["nbf"], 1_800_000_000u64);
            assert_eq!(claims["exp"], 1_800_000_300u64);
            assert!(claims.get("iat").is_none());
            assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
            let ok = match algorithm {
                SigningAlgorithm::Rs256 => {
                    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public.clone())
                        .verify(input.as_bytes(), &signature.as_slice().try_into().unwrap())
                        .is_ok()
                }
                SigningAlgorithm::Ps256 => rsa::pss::VerifyingKey::<Sha256>::new(public.clone())
                    .verify(input.as_bytes(), &signature.as_slice().try_into().unwrap())
                    .is_ok(),
            };
            assert!(ok, "{algorithm:?} verifies");
            // Another key's signature does not.
            let tampered = format!("{}x", &input);
            let bad = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public.clone()).verify(
                tampered.as_bytes(),
                &signature.as_slice().try_into().unwrap(),
            );
            assert!(bad.is_err());
        }
        assert_eq!(
            SigningAlgorithm::for_credentials(true),
            SigningAlgorithm::Ps256
        );
    }
}
