//! The format of `AUTH_JWT_PREVIOUS_KEYS_FILE`: verify-only user token keys kept through a
//! rotation, a JSON array such as
//! `[{"alg": "HS256", "secret": "…"}, {"alg": "RS256", "public_key_pem": "…", "kid": "…"}]`.

use std::path::Path;

use serde::Deserialize;

use super::ConfigError;
use super::builder::{key_error, read_key_file};
use crate::secret::Secret;
use crate::token::{JwtAlgorithm, VerifyingKey};

const VAR: &str = "AUTH_JWT_PREVIOUS_KEYS_FILE";

/// One entry of the array.
#[derive(Deserialize)]
struct PreviousKeyEntry {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    public_key_pem: Option<String>,
}

/// The keys of the file at `path`. Errors name the variable and what is wrong, never a key.
pub(super) fn load_previous_keys(path: &Path) -> Result<Vec<VerifyingKey>, ConfigError> {
    let raw = read_key_file(VAR, path)?;
    let entries: Vec<PreviousKeyEntry> =
        serde_json::from_slice(raw.expose()).map_err(|e| ConfigError::Key {
            var: VAR,
            // serde_json's message names a position, never the input's content.
            reason: format!("not a JSON array of keys: {e}"),
        })?;
    entries.into_iter().map(entry_key).collect()
}

fn entry_key(entry: PreviousKeyEntry) -> Result<VerifyingKey, ConfigError> {
    let alg = JwtAlgorithm::from_name(&entry.alg).ok_or_else(|| ConfigError::Key {
        var: VAR,
        reason: format!("unknown alg `{}`", entry.alg),
    })?;
    let key = match (alg, entry.secret, entry.public_key_pem) {
        (JwtAlgorithm::Hs256, Some(secret), _) => Ok(VerifyingKey::hs256(&Secret::from(secret))),
        (JwtAlgorithm::Hs256, None, _) => Err(ConfigError::Key {
            var: VAR,
            reason: "an HS256 entry needs `secret`".into(),
        }),
        (alg, _, Some(pem)) => {
            VerifyingKey::from_public_pem(alg, pem.as_bytes()).map_err(|e| key_error(VAR, e))
        }
        (_, _, None) => Err(ConfigError::Key {
            var: VAR,
            reason: "an asymmetric entry needs `public_key_pem`".into(),
        }),
    }?;
    Ok(match entry.kid {
        Some(kid) => key.with_kid(&kid),
        None => key,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{LONG2, prod};
    use super::*;

    #[test]
    fn asymmetric_key_and_previous_keys_are_loaded_from_files() {
        let dir = std::env::temp_dir().join(format!("portcullis-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let private = dir.join("es256.pem");
        std::fs::write(&private, include_bytes!("../token/testdata/es256.pem")).unwrap();
        let previous = dir.join("previous.json");
        let rs_pub =
            String::from_utf8(include_bytes!("../token/testdata/rs256.pub.pem").to_vec()).unwrap();
        let entries = serde_json::json!([
            {"alg": "HS256", "secret": LONG2, "kid": "old-hs"},
            {"alg": "RS256", "public_key_pem": rs_pub},
        ]);
        std::fs::write(&previous, entries.to_string()).unwrap();
        let c = prod(&[
            ("AUTH_JWT_ALGORITHM", "ES256"),
            ("AUTH_JWT_PRIVATE_KEY_FILE", private.to_str().unwrap()),
            ("AUTH_JWT_PREVIOUS_KEYS_FILE", previous.to_str().unwrap()),
        ])
        .unwrap();
        assert_eq!(c.user_keys.active().algorithm(), JwtAlgorithm::Es256);
        let kids: Vec<_> = c
            .user_keys
            .keys()
            .map(|k| (k.kid().to_owned(), k.algorithm()))
            .collect();
        assert_eq!(kids.len(), 3);
        assert_eq!(kids[1], ("old-hs".to_owned(), JwtAlgorithm::Hs256));
        assert_eq!(kids[2].1, JwtAlgorithm::Rs256);
        assert_eq!(c.user_keys.jwks().keys.len(), 2);

        std::fs::write(&previous, "not json").unwrap();
        let err = prod(&[("AUTH_JWT_PREVIOUS_KEYS_FILE", previous.to_str().unwrap())]).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Key {
                var: "AUTH_JWT_PREVIOUS_KEYS_FILE",
                ..
            }
        ));
        let err = prod(&[
            ("AUTH_JWT_ALGORITHM", "RS256"),
            ("AUTH_JWT_PRIVATE_KEY_FILE", "/nonexistent/key.pem"),
        ])
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Key {
                var: "AUTH_JWT_PRIVATE_KEY_FILE",
                ..
            }
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_entries_name_what_is_missing_without_the_secret() {
        let dir = std::env::temp_dir().join(format!("portcullis-prev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("previous.json");
        for (entries, expected) in [
            (
                serde_json::json!([{"alg": "HS512", "secret": LONG2}]),
                "unknown alg `HS512`",
            ),
            (
                serde_json::json!([{"alg": "HS256"}]),
                "an HS256 entry needs `secret`",
            ),
            (
                serde_json::json!([{"alg": "RS256", "secret": LONG2}]),
                "an asymmetric entry needs `public_key_pem`",
            ),
        ] {
            std::fs::write(&file, entries.to_string()).unwrap();
            match load_previous_keys(&file) {
                Err(ConfigError::Key { var, reason }) => {
                    assert_eq!(var, VAR);
                    assert_eq!(reason, expected);
                    assert!(!reason.contains(LONG2));
                }
                Err(other) => panic!("{entries}: {other:?}"),
                Ok(keys) => panic!("{entries}: {} keys", keys.len()),
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
