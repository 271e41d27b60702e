//! An issuer's public keys, read from its JWKS: each with the algorithms it may verify.

use std::sync::Arc;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};

use super::config::IssuerAlgorithm;
use crate::error::TokenError;

/// One public key of an issuer.
pub(crate) struct ExternalKey {
    pub(crate) kid: Option<Arc<str>>,
    /// What this key may verify: the key's own `alg` if the JWKS states it, else every
    /// algorithm of its kind (RSA, P-256, P-384, Ed25519). Never a symmetric one.
    algorithms: Vec<IssuerAlgorithm>,
    pub(crate) decoding: DecodingKey,
}

impl ExternalKey {
    /// The key from one JWK, if it is a public signing key of a kind we verify with.
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        use IssuerAlgorithm as A;
        if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
            return None;
        }
        let kind: &[IssuerAlgorithm] = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => &[A::Rs256, A::Rs384, A::Rs512, A::Ps256],
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => &[A::Es256],
                EllipticCurve::P384 => &[A::Es384],
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                &[A::EdDsa]
            }
            // Symmetric keys (`kty: oct`) and anything else are never taken from a JWKS.
            _ => return None,
        };
        let algorithms = match jwk.common.key_algorithm {
            Some(stated) => {
                let stated = IssuerAlgorithm::from_name(&stated.to_string())?;
                if !kind.contains(&stated) {
                    return None;
                }
                vec![stated]
            }
            None => kind.to_vec(),
        };
        let decoding = DecodingKey::from_jwk(jwk).ok()?;
        Some(Self {
            kid: jwk.common.key_id.as_deref().map(Arc::from),
            algorithms,
            decoding,
        })
    }
}

/// The keys of one issuer's JWKS that we can verify with.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: Vec<Arc<ExternalKey>>,
}

impl KeySet {
    /// Reads a JWKS document. Keys we cannot use (encryption keys, symmetric keys, curves we
    /// do not verify) are skipped one by one; a document that is not a JWKS is an error.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let doc: Document =
            serde_json::from_slice(body).map_err(|e| format!("not a JWKS document: {e}"))?;
        let keys = doc
            .keys
            .into_iter()
            .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
            .filter_map(|jwk| ExternalKey::from_jwk(&jwk))
            .map(Arc::new)
            .collect::<Vec<_>>();
        if keys.is_empty() {
            return Err("the JWKS holds no signing key we can verify with".to_owned());
        }
        Ok(Self { keys })
    }

    /// How many keys.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key for a token's `kid` and `alg`: the key named `kid`; without a `kid`, the one
    /// key that verifies `alg` (several are ambiguous). `Ok(None)` when no key has that `kid`
    /// — a key set refetch may find it; a key that exists but is not for `alg` is
    /// [`TokenError::AlgorithmNotAllowed`].
    pub(crate) fn find(
        &self,
        kid: Option<&str>,
        alg: IssuerAlgorithm,
    ) -> Result<Option<Arc<ExternalKey>>, TokenError> {
        let key = match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.algorithms.contains(&alg));
                match (fitting.next(), fitting.next()) {
                    (Some(one), None) => Some(one),
                    (None, _) => None,
                    (Some(_), Some(_)) => return Err(TokenError::UnknownKid),
                }
            }
        };
        match key {
            Some(k) if !k.algorithms.contains(&alg) => Err(TokenError::AlgorithmNotAllowed),
            other => Ok(other.cloned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_N: &str = "u1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0_IzW7yWR7QkrmBL7jTKEn5u-qKhbwKfBstIs-bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW_VDL5AaWTg0nLVkjRo9z-40RQzuVaE8AkAFmxZzow3x-VJYKdjykkJ0iT9wCS0DRTXu269V264Vf_3jvredZiKRkgwlL9xNAwxXFg0x_XFw005UWVRIkdgcKWTjpBP2dPwVZ4WWC-9aGVd-Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbcmw";

    fn rsa(kid: &str, alg: Option<&str>, use_: &str) -> serde_json::Value {
        let mut v =
            serde_json::json!({"kty": "RSA", "kid": kid, "use": use_, "n": RSA_N, "e": "AQAB"});
        if let Some(a) = alg {
            v["alg"] = a.into();
        }
        v
    }

    #[test]
    fn usable_keys_are_kept_and_the_rest_skipped() {
        let doc = serde_json::json!({"keys": [
            rsa("sig", None, "sig"),
            rsa("enc", None, "enc"),
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "weird", "kid": "x"},
            rsa("ps", Some("PS256"), "sig"),
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.len(), 2);
        let rs = IssuerAlgorithm::Rs256;
        assert!(set.find(Some("sig"), rs).unwrap().is_some());
        assert!(
            set.find(Some("hmac"), rs).unwrap().is_none(),
            "oct keys are never used"
        );
        assert!(
            set.find(Some("enc"), rs).unwrap().is_none(),
            "encryption keys are skipped"
        );
        assert_eq!(
            set.find(Some("ps"), rs).err(),
            Some(TokenError::AlgorithmNotAllowed),
            "a key's stated alg is the only one it verifies"
        );
        assert_eq!(
            set.find(None, IssuerAlgorithm::Es256)
                .unwrap()
                .map(|k| k.kid.clone()),
            None
        );
        assert_eq!(
            set.find(None, rs).err(),
            None,
            "one RS256-capable key without kid: it"
        );
        assert!(KeySet::parse(b"{\"keys\": []}").is_err());
        assert!(KeySet::parse(b"<html>").is_err());
    }
}
