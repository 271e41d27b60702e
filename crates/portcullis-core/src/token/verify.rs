//! The verification pipeline shared by every token kind:
//! size → shape → header (`alg: none`, `crit`, algorithm) → key by `kid` → signature →
//! `iss`/`aud` → `exp`/`nbf`/`iat` with leeway → the kind's own claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;
use jsonwebtoken::errors::ErrorKind;
use serde::Deserialize;

use super::claims::KindClaims;
use super::keyring::{JwtAlgorithm, KeyRing, VerifyingKey};
use crate::clock::UnixTime;
use crate::error::TokenError;

/// Largest token accepted, in bytes, unless configured otherwise. Ours are under 1 KiB.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Largest header accepted, in bytes (base64url), checked before decoding it.
const MAX_HEADER_BYTES: usize = 1024;

/// What a token family requires of every token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Required `iss`.
    pub issuer: String,
    /// Required member of `aud`.
    pub audience: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// Largest token accepted, in bytes.
    pub max_token_bytes: usize,
}

/// The parts of a JOSE header the verifier reads. Unknown members are ignored; `crit` is
/// honoured by refusing it, since we implement no extensions.
#[derive(Debug, Deserialize)]
pub struct TokenHeader {
    /// `alg`, as written.
    pub alg: String,
    /// `kid`, if any.
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

impl TokenHeader {
    /// Parses and screens the header of `token`: size, shape, `alg: none`, `crit`, and an
    /// algorithm we support. No key is touched.
    pub fn parse(token: &str, max_token_bytes: usize) -> Result<(Self, JwtAlgorithm), TokenError> {
        if token.len() > max_token_bytes {
            return Err(TokenError::Oversize);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        if h.len() > MAX_HEADER_BYTES {
            return Err(TokenError::Oversize);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(h)
            .map_err(|_| TokenError::Malformed)?;
        let header: Self = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
        if header.alg.eq_ignore_ascii_case("none") {
            return Err(TokenError::AlgNone);
        }
        if header.crit.is_some() {
            return Err(TokenError::UnknownCrit);
        }
        let alg = JwtAlgorithm::from_name(&header.alg).ok_or(TokenError::UnsupportedAlgorithm)?;
        Ok((header, alg))
    }
}

/// A key ring with the policy of its token family: verifies and signs.
#[derive(Debug, Clone)]
pub(crate) struct Verifier {
    pub(crate) ring: KeyRing,
    pub(crate) policy: TokenPolicy,
    // Only the signature and the claims' JSON are left to jsonwebtoken; every claim check is
    // ours, against our injectable clock and with distinct errors. One per algorithm, since
    // jsonwebtoken requires all allowed algorithms to share the key's family.
    validations: [Validation; 4],
}

impl Verifier {
    pub(crate) fn new(ring: KeyRing, policy: TokenPolicy) -> Self {
        let only = |alg: JwtAlgorithm| {
            let mut v = Validation::new(alg.to_jwt());
            v.required_spec_claims.clear();
            v.validate_exp = false;
            v.validate_nbf = false;
            v.validate_aud = false;
            v.leeway = 0;
            v
        };
        Self {
            ring,
            policy,
            validations: JwtAlgorithm::ALL.map(only),
        }
    }

    /// The key that must have signed a token with this header.
    pub(crate) fn key_for(
        &self,
        header: &TokenHeader,
        alg: JwtAlgorithm,
    ) -> Result<&VerifyingKey, TokenError> {
        let key = self
            .ring
            .find(header.kid.as_deref())
            .ok_or(TokenError::UnknownKid)?;
        if key.algorithm() != alg {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        Ok(key)
    }

    pub(crate) fn verify<C: KindClaims>(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<C, TokenError> {
        let (header, alg) = TokenHeader::parse(token, self.policy.max_token_bytes)?;
        let key = self.key_for(&header, alg)?;
        let claims: C =
            jsonwebtoken::decode(token, key.decoding(), &self.validations[alg as usize])
                .map_err(|e| match e.kind() {
                    ErrorKind::InvalidSignature => TokenError::BadSignature,
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        TokenError::AlgorithmNotAllowed
                    }
                    _ => TokenError::Malformed,
                })?
                .claims;
        self.check_registered(claims.registered(), now)?;
        claims.check_kind()?;
        Ok(claims)
    }

    fn check_registered(
        &self,
        r: &super::claims::Registered,
        now: UnixTime,
    ) -> Result<(), TokenError> {
        let leeway = self.policy.leeway_secs;
        let exp = r.exp.ok_or(TokenError::MissingClaim("exp"))?;
        let iss = r.iss.as_deref().ok_or(TokenError::MissingClaim("iss"))?;
        let aud = r.aud.as_ref().ok_or(TokenError::MissingClaim("aud"))?;
        if iss != self.policy.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if !aud.contains(&self.policy.audience) {
            return Err(TokenError::WrongAudience);
        }
        if exp.0.saturating_add(leeway) <= now {
            return Err(TokenError::Expired);
        }
        if r.nbf.is_some_and(|nbf| nbf.0 > now.saturating_add(leeway)) {
            return Err(TokenError::NotYetValid);
        }
        if r.iat.is_some_and(|iat| iat.0 > now.saturating_add(leeway)) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(())
    }

    pub(crate) fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String, MintError> {
        let key = self.ring.active();
        let mut header = jsonwebtoken::Header::new(key.algorithm().to_jwt());
        header.kid = Some(key.kid().to_owned());
        jsonwebtoken::encode(&header, claims, key.encoding()).map_err(|e| MintError(e.to_string()))
    }
}

/// Signing failed (a key that loaded but cannot sign). Not reachable from request input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token signing failed: {0}")]
pub struct MintError(String);
