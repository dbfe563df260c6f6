//! The runner's RSA key: made at registration (RSA-2048, exponent 65537), kept in
//! `.credentials_rsaparams` as .NET's `RSAParameters` JSON (base64 byte arrays named `d`,
//! `dp`, `dq`, `exponent`, `inverseQ`, `modulus`, `p`, `q`, as actions/runner's
//! `RSAParametersSerializable` in `src/Runner.Listener/Configuration/IRSAKeyManager.cs`
//! writes them), its public half sent to runner-admin as .NET XML (`<RSAKeyValue>`), and
//! used to sign the OAuth client assertion.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BoxedUint, PrivateKey};
use serde_json::{Map, Value};

use crate::files::FileError;

/// The size of the keys this runner makes, as actions/runner makes them.
pub const KEY_BITS: usize = 2048;

/// The runner's private key.
#[derive(Clone, PartialEq, Eq)]
pub struct RunnerKey {
    pub(crate) key: PrivateKey,
}

impl std::fmt::Debug for RunnerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private parts.
        f.debug_struct("RunnerKey")
            .field("bits", &(self.key.size() * 8))
            .finish_non_exhaustive()
    }
}

/// Big-endian bytes of `n` without leading zeros, left-padded to `len` when given.
fn be_bytes(n: &BoxedUint, len: Option<usize>) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let trimmed = &bytes[first..];
    match len {
        Some(len) if trimmed.len() < len => {
            let mut out = vec![0; len - trimmed.len()];
            out.extend_from_slice(trimmed);
            out
        }
        _ => trimmed.to_vec(),
    }
}

fn uint(bytes: &[u8]) -> BoxedUint {
    // Whole 64-bit limbs, as many as the bytes need.
    let bits = (bytes.len().max(1) * 8).next_multiple_of(64) as u32;
    BoxedUint::from_be_slice(bytes, bits).unwrap_or_else(|_| BoxedUint::zero_with_precision(bits))
}

impl RunnerKey {
    /// A new RSA-2048 key from the operating system's random source.
    pub fn generate() -> Result<RunnerKey, FileError> {
        PrivateKey::new(&mut getrandom::SysRng, KEY_BITS)
            .map(|key| RunnerKey { key })
            .map_err(|e| FileError::Key(format!("cannot make an RSA key: {e}")))
    }

    /// The modulus, big-endian (256 bytes for a 2048-bit key).
    pub fn modulus(&self) -> Vec<u8> {
        be_bytes(self.key.n(), None)
    }

    /// The public exponent, big-endian without leading zeros (`AQAB` in base64).
    pub fn exponent(&self) -> Vec<u8> {
        be_bytes(self.key.e(), None)
    }

    /// The public key as .NET writes `RSA.ToXmlString(false)`, the form runner-admin's
    /// `public_key` takes.
    pub fn public_key_xml(&self) -> String {
        format!(
            "<RSAKeyValue><Modulus>{}</Modulus><Exponent>{}</Exponent></RSAKeyValue>",
            STANDARD.encode(self.modulus()),
            STANDARD.encode(self.exponent())
        )
    }

    /// `.credentials_rsaparams` as actions/runner writes it: .NET `RSAParameters`, with
    /// `d` as long as the modulus and the CRT values half as long.
    pub fn to_rsa_parameters(&self) -> Value {
        let n = self.modulus().len();
        let half = n.div_ceil(2);
        let primes = self.key.primes();
        let part = |v: Option<&BoxedUint>, len: usize| {
            Value::String(STANDARD.encode(v.map(|v| be_bytes(v, Some(len))).unwrap_or_default()))
        };
        let inverse_q = self.key.crt_coefficient();
        let mut out = Map::new();
        out.insert("d".into(), part(Some(self.key.d()), n));
        out.insert("dp".into(), part(self.key.dp(), half));
        out.insert("dq".into(), part(self.key.dq(), half));
        out.insert(
            "exponent".into(),
            Value::String(STANDARD.encode(self.exponent())),
        );
        out.insert("inverseQ".into(), part(inverse_q.as_ref(), half));
        out.insert(
            "modulus".into(),
            Value::String(STANDARD.encode(self.modulus())),
        );
        out.insert("p".into(), part(primes.first().map(|p| p.as_ref()), half));
        out.insert("q".into(), part(primes.get(1).map(|q| q.as_ref()), half));
        Value::Object(out)
    }

    /// Reads `.credentials_rsaparams` (keys in any case, as Newtonsoft reads them); the key
    /// is checked for consistency.
    pub fn from_rsa_parameters(doc: &Value) -> Result<RunnerKey, FileError> {
        let field = |name: &str| -> Result<Vec<u8>, FileError> {
            let value = doc
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                .and_then(|(_, v)| v.as_str())
                .ok_or_else(|| FileError::Key(format!("the RSA parameters lack `{name}`")))?;
            STANDARD
                .decode(value.trim())
                .map_err(|e| FileError::Key(format!("`{name}` is not base64: {e}")))
        };
        let (n, e, d, p, q) = (
            field("modulus")?,
            field("exponent")?,
            field("d")?,
            field("p")?,
            field("q")?,
        );
        PrivateKey::from_components(uint(&n), uint(&e), uint(&d), vec![uint(&p), uint(&q)])
            .map(|key| RunnerKey { key })
            .map_err(|e| FileError::Key(format!("the RSA parameters are not a valid key: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_survives_the_dotnet_form_and_has_its_lengths() {
        let key = crate::test_key();
        let params = key.to_rsa_parameters();
        let len = |k: &str| STANDARD.decode(params[k].as_str().unwrap()).unwrap().len();
        assert_eq!(len("modulus"), 256);
        assert_eq!(len("d"), 256);
        for k in ["p", "q", "dp", "dq", "inverseQ"] {
            assert_eq!(len(k), 128, "{k}");
        }
        assert_eq!(params["exponent"], "AQAB");
        let back = RunnerKey::from_rsa_parameters(&params).unwrap();
        assert_eq!(back.modulus(), key.modulus());
        // Newtonsoft reads names in any case.
        let mut pascal = Map::new();
        for (k, v) in params.as_object().unwrap() {
            let mut name = k.clone();
            name[..1].make_ascii_uppercase();
            pascal.insert(name, v.clone());
        }
        let back = RunnerKey::from_rsa_parameters(&Value::Object(pascal)).unwrap();
        assert_eq!(back.exponent(), vec![1, 0, 1]);
        let xml = key.public_key_xml();
        assert!(
            xml.starts_with("<RSAKeyValue><Modulus>")
                && xml.ends_with("<Exponent>AQAB</Exponent></RSAKeyValue>")
        );
        assert!(!format!("{key:?}").contains(params["d"].as_str().unwrap()));
    }

    #[test]
    fn a_broken_key_is_refused_with_the_field() {
        let key = crate::test_key();
        let mut params = key.to_rsa_parameters();
        params["p"] = Value::String(STANDARD.encode([7u8; 128]));
        let err = RunnerKey::from_rsa_parameters(&params).unwrap_err();
        assert!(err.to_string().contains("not a valid key"), "{err}");
        params.as_object_mut().unwrap().remove("d");
        let err = RunnerKey::from_rsa_parameters(&params).unwrap_err();
        assert!(err.to_string().contains("lack `d`"), "{err}");
    }
}
