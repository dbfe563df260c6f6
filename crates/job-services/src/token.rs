//! The tokens a job's steps carry to the runner's services: JSON Web Tokens signed with
//! HMAC-SHA256 (`HS256`) by a key of the runner's own, kept in the services' folder
//! (mode 0600) so that tokens handed out before a restart still verify after it.
//!
//! The claims say whose data a request may touch: the repository (the cache's scope),
//! the run and the job, and `scp` in the form `@actions/artifact` reads its backend ids
//! from (`Actions.Results:<run>:<job>`, GitHub's runtime token shape). Every call is
//! checked: signature, expiry, scope.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// A token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The repository (`owner/name`): caches are kept per repository.
    pub repo: String,
    /// The run's id (artifacts are kept per run).
    pub run: String,
    /// The job's id in the run.
    pub job: String,
    /// `Actions.Results:<run>:<job>`, as GitHub's runtime token carries it.
    pub scp: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// The job's `cache-mode:` (`read`, `write`, `write-only`, `none`) when it declared one,
    /// which the cache service enforces as GitHub's does; absent is `write`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_mode: Option<String>,
}

impl Claims {
    /// Claims for a job of `repo`'s run `run`, valid for `lifetime`.
    pub fn new(repo: &str, run: &str, job: &str, lifetime: Duration) -> Claims {
        let now = now_secs();
        Claims {
            repo: repo.to_string(),
            run: run.to_string(),
            job: job.to_string(),
            scp: format!("Actions.Results:{run}:{job}"),
            exp: now + lifetime.as_secs(),
            iat: now,
            cache_mode: None,
        }
    }

    /// These claims, limited to `cache_mode`.
    pub fn with_cache_mode(mut self, cache_mode: Option<&str>) -> Claims {
        self.cache_mode = cache_mode.map(str::to_string);
        self
    }

    /// Whether the job may restore caches (`read` and `write`).
    pub fn may_restore(&self) -> bool {
        matches!(self.cache_mode.as_deref(), None | Some("read" | "write"))
    }

    /// Whether the job may save caches (`write` and `write-only`).
    pub fn may_save(&self) -> bool {
        matches!(
            self.cache_mode.as_deref(),
            None | Some("write" | "write-only")
        )
    }

    /// Why a restore or a save is refused: the job's mode and what it allows.
    pub fn refusal(&self, what: &str) -> String {
        format!(
            "this job's cache-mode is '{}', which does not allow cache {what}s; set cache-mode: write on the job (or the workflow) to allow them",
            self.cache_mode.as_deref().unwrap_or("write")
        )
    }
}

/// Why a token was refused (the message a client's error shows).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token: the job's ACTIONS_RUNTIME_TOKEN is missing")]
    Missing,
    #[error("the token is not a JSON Web Token of this runner")]
    Malformed,
    #[error("the token's signature does not verify: it was not made by this runner")]
    Signature,
    #[error("the token expired; rerun the job for a new one")]
    Expired,
}

/// The key tokens are signed with.
#[derive(Clone)]
pub struct TokenKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A fresh random key (a run's own, kept nowhere).
    pub fn random() -> std::io::Result<TokenKey> {
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key).map_err(std::io::Error::other)?;
        Ok(TokenKey { key })
    }

    /// The key in `file`, made (32 random bytes, mode 0600) when it does not exist.
    pub fn load_or_create(file: &Path) -> std::io::Result<TokenKey> {
        match std::fs::read(file) {
            Ok(key) if key.len() >= 32 => return Ok(TokenKey { key }),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let fresh = TokenKey::random()?;
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let temp = file.with_extension("tmp");
        {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)?;
            out.write_all(&fresh.key)?;
            out.sync_all()?;
        }
        std::fs::rename(&temp, file)?;
        Ok(fresh)
    }

    fn hmac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    fn mac(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = self.hmac();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    /// `claims` as a signed token.
    pub fn sign(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signed = format!("{header}.{payload}");
        let signature = URL_SAFE_NO_PAD.encode(self.mac(signed.as_bytes()));
        format!("{signed}.{signature}")
    }

    /// The claims of `token` once its signature and expiry check out.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut parts = token.trim().split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.hmac();
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::Signature)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(TokenError::Malformed)?;
        if claims.exp <= now_secs() {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// A signature of `text` (for signed URLs), URL-safe.
    pub fn sign_text(&self, text: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(text.as_bytes()))
    }

    /// Whether `signature` is [`Self::sign_text`] of `text` (in constant time).
    pub fn verify_text(&self, text: &str, signature: &str) -> bool {
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let mut mac = self.hmac();
        mac.update(text.as_bytes());
        mac.verify_slice(&signature).is_ok()
    }
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_mode_travels_in_the_token_and_limits_restores_and_saves() {
        let key = TokenKey::random().unwrap();
        let claims = |mode: Option<&str>| {
            let token = key.sign(
                &Claims::new("o/r", "1", "build", Duration::from_secs(60)).with_cache_mode(mode),
            );
            key.verify(&token).unwrap()
        };
        let all = claims(None);
        assert!(all.may_restore() && all.may_save());
        let read = claims(Some("read"));
        assert!(read.may_restore() && !read.may_save());
        assert!(read.refusal("save").contains("cache-mode is 'read'"));
        let write_only = claims(Some("write-only"));
        assert!(!write_only.may_restore() && write_only.may_save());
        let none = claims(Some("none"));
        assert!(!none.may_restore() && !none.may_save());
    }

    #[test]
    fn tokens_verify_only_with_their_key_and_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        let key = TokenKey::load_or_create(&file).unwrap();
        let claims = Claims::new("acme/app", "17", "build", Duration::from_secs(60));
        assert_eq!(claims.scp, "Actions.Results:17:build");
        let token = key.sign(&claims);
        assert_eq!(key.verify(&token), Ok(claims.clone()));
        // The same key after a restart.
        let again = TokenKey::load_or_create(&file).unwrap();
        assert_eq!(again.verify(&token), Ok(claims.clone()));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let other = TokenKey::random().unwrap();
        assert_eq!(other.verify(&token), Err(TokenError::Signature));
        // A changed payload with the old signature.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                repo: "evil/repo".into(),
                ..claims.clone()
            })
            .unwrap(),
        );
        parts[1] = &forged;
        assert_eq!(key.verify(&parts.join(".")), Err(TokenError::Signature));
        assert_eq!(key.verify("a.b"), Err(TokenError::Malformed));
        let expired = Claims {
            exp: now_secs() - 1,
            ..claims
        };
        assert_eq!(key.verify(&key.sign(&expired)), Err(TokenError::Expired));
        let sig = key.sign_text("cache/7");
        assert!(key.verify_text("cache/7", &sig));
        assert!(!key.verify_text("cache/8", &sig));
    }
}
