//! The verification pipeline shared by every token kind:
//! size → shape → header (`alg: none`, `crit`, algorithm) → key by `kid` → signature →
//! `iss`/`aud` → `exp`/`nbf`/`iat` with leeway → the kind's own claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
    /// `typ`, if any (RFC 9068 access tokens carry `at+jwt`).
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// What a header's `typ` says about a token's kind (explicit typing, RFC 8725 §3.11).
///
/// `typ` is not required on verification: the kinds are told apart by signed claims every
/// issuer sets (`type`, and `aud`, which differs for refresh tokens), while tokens minted by
/// other tools with our keys — which the contract accepts (a token without `kid`, PyJWT) — and
/// tokens minted before access tokens were typed carry the generic `JWT`. What `typ` adds is
/// for others: a service verifying our access tokens through the JWKS by RFC 9068. But when a
/// header does name a kind, it must be the kind being verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExplicitTyp {
    /// No `typ`, `JWT`, or anything that names no kind.
    Generic,
    /// `at+jwt` or `application/at+jwt` (RFC 9068), any case.
    Access,
    /// Another `…+jwt` type (a logout token, an ID token, …): never one of ours.
    Other,
}

impl ExplicitTyp {
    /// Classifies a header's `typ` (media types are case-insensitive and may omit
    /// `application/`, RFC 7515 §4.1.9).
    pub fn of(typ: Option<&str>) -> Self {
        let Some(typ) = typ else {
            return Self::Generic;
        };
        let lower = typ.to_ascii_lowercase();
        let bare = lower.strip_prefix("application/").unwrap_or(&lower);
        match bare {
            "at+jwt" => Self::Access,
            t if t.ends_with("+jwt") => Self::Other,
            _ => Self::Generic,
        }
    }

    /// The `typ` value we write for this kind.
    pub(crate) const fn header_value(self) -> &'static str {
        match self {
            Self::Access => "at+jwt",
            Self::Generic | Self::Other => "JWT",
        }
    }

    /// Whether a header typed `self` may carry a token of a kind typed `kind`.
    pub(crate) fn allows(self, kind: Self) -> bool {
        self == Self::Generic || self == kind
    }
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
        let text = std::str::from_utf8(&bytes).map_err(|_| TokenError::Malformed)?;
        let header: Self = serde_json::from_str(text).map_err(|_| TokenError::Malformed)?;
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
///
/// Verification is ours end to end: the header is screened, HS256 signatures are checked with
/// the key's pre-keyed MAC (asymmetric ones by jsonwebtoken's crypto provider), and every
/// claim check runs against our injectable clock with distinct errors.
#[derive(Debug, Clone)]
pub(crate) struct Verifier {
    pub(crate) ring: KeyRing,
    pub(crate) policy: TokenPolicy,
}

impl Verifier {
    pub(crate) fn new(ring: KeyRing, policy: TokenPolicy) -> Self {
        Self { ring, policy }
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
        if token.len() > self.policy.max_token_bytes {
            return Err(TokenError::Oversize);
        }
        let seg = Segments::split(token)?;
        let (key, typ) = self.key_for_segment(seg.header, token)?;
        if !typ.allows(C::TYP) {
            return Err(TokenError::WrongType);
        }
        verify_signature(key, &seg)?;
        let claims: C = decode_json(seg.payload)?;
        self.check_registered::<C>(claims.registered(), now)?;
        claims.check_kind()?;
        Ok(claims)
    }

    /// The key for a token's header segment, and the header's `typ`: our own minted headers
    /// are recognised byte for byte; anything else is parsed and screened (`alg: none`,
    /// `crit`, algorithm, `kid`).
    fn key_for_segment(
        &self,
        header: &str,
        token: &str,
    ) -> Result<(&VerifyingKey, ExplicitTyp), TokenError> {
        if let Some(found) = self.ring.by_header_segment_typed(header) {
            return Ok(found);
        }
        let (header, alg) = TokenHeader::parse(token, self.policy.max_token_bytes)?;
        let typ = ExplicitTyp::of(header.typ.as_deref());
        Ok((self.key_for(&header, alg)?, typ))
    }

    /// `iss`, `aud` (the policy's audience with the kind's suffix) and the times.
    fn check_registered<C: KindClaims>(
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
        let audience = &self.policy.audience;
        if !aud.contains_suffixed(audience, C::AUDIENCE_SUFFIX) {
            return Err(match C::SIBLING_AUDIENCE_SUFFIX {
                Some(sibling) if aud.contains_suffixed(audience, sibling) => TokenError::WrongType,
                _ => TokenError::WrongAudience,
            });
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

    /// Signs `claims` with the active key under the header typed `typ`: exactly the header
    /// segment the fast path of [`verify`](Self::verify) recognises.
    pub(crate) fn sign<T: serde::Serialize>(
        &self,
        claims: &T,
        typ: ExplicitTyp,
    ) -> Result<String, MintError> {
        let key = self.ring.active();
        let payload = serde_json::to_vec(claims).map_err(|e| MintError(e.to_string()))?;
        let mut token = format!(
            "{}.{}",
            key.verifying_key().header_segment(typ),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature =
            jsonwebtoken::crypto::sign(token.as_bytes(), key.encoding(), key.algorithm().to_jwt())
                .map_err(|e| MintError(e.to_string()))?;
        token.push('.');
        token.push_str(&signature);
        Ok(token)
    }
}

/// The three segments of a compact JWS.
struct Segments<'t> {
    header: &'t str,
    payload: &'t str,
    signature: &'t str,
    /// `header.payload`: what the signature covers.
    signing_input: &'t str,
}

impl<'t> Segments<'t> {
    fn split(token: &'t str) -> Result<Self, TokenError> {
        let (signing_input, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(TokenError::Malformed)?;
        if payload.contains('.') {
            return Err(TokenError::Malformed);
        }
        if header.len() > MAX_HEADER_BYTES {
            return Err(TokenError::Oversize);
        }
        Ok(Self {
            header,
            payload,
            signature,
            signing_input,
        })
    }
}

/// Checks the signature with `key` (whose algorithm is the only one it verifies).
fn verify_signature(key: &VerifyingKey, seg: &Segments<'_>) -> Result<(), TokenError> {
    if let Some(mac) = key.hmac() {
        // An HS256 signature is 32 bytes: 43 base64url characters.
        let mut sig = [0u8; 32];
        if seg.signature.len() != 43 {
            return Err(TokenError::BadSignature);
        }
        URL_SAFE_NO_PAD
            .decode_slice(seg.signature, &mut sig)
            .map_err(|_| TokenError::Malformed)?;
        return if mac.verify(seg.signing_input.as_bytes(), &sig) {
            Ok(())
        } else {
            Err(TokenError::BadSignature)
        };
    }
    match jsonwebtoken::crypto::verify(
        seg.signature,
        seg.signing_input.as_bytes(),
        key.decoding(),
        key.algorithm().to_jwt(),
    ) {
        Ok(true) => Ok(()),
        Ok(false) => Err(TokenError::BadSignature),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                TokenError::AlgorithmNotAllowed
            }
            _ => TokenError::Malformed,
        }),
    }
}

/// Decodes a base64url JSON segment into `T`, on the stack when it is small.
fn decode_json<T: serde::de::DeserializeOwned>(segment: &str) -> Result<T, TokenError> {
    const STACK: usize = 1536;
    // JSON is UTF-8 (RFC 8259 §8.1); serde_json does not check the strings it skips, so
    // check the whole text first, as other verifiers do (no parser differential).
    let parse = |bytes: &[u8]| {
        let text = std::str::from_utf8(bytes).map_err(|_| TokenError::Malformed)?;
        serde_json::from_str(text).map_err(|_| TokenError::Malformed)
    };
    if segment.len() <= STACK / 3 * 4 {
        let mut buf = [0u8; STACK];
        let n = URL_SAFE_NO_PAD
            .decode_slice(segment, &mut buf)
            .map_err(|_| TokenError::Malformed)?;
        parse(&buf[..n])
    } else {
        let bytes = URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| TokenError::Malformed)?;
        parse(&bytes)
    }
}

/// Signing failed (a key that loaded but cannot sign). Not reachable from request input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token signing failed: {0}")]
pub struct MintError(String);
