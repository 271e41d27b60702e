//! The verification pipeline shared by every token kind, and signing:
//! size → shape → header (`alg: none`, `crit`, algorithm) → key by `kid` → signature →
//! `iss`/`aud` → `exp`/`nbf`/`iat` with leeway → the kind's own claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;

use super::algorithm::JwtAlgorithm;
use super::claims::{KindClaims, Registered};
use super::header::{ExplicitTyp, MAX_HEADER_BYTES, TokenHeader};
use super::hmac::HmacSha256;
use super::key::VerifyingKey;
use super::keyring::KeyRing;
use super::material::VerifyingMaterial;
use crate::clock::UnixTime;
use crate::error::TokenError;

/// Largest token accepted, in bytes, unless configured otherwise. Ours are under 1 KiB.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

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

/// How far a token's header has been read before verification.
#[derive(Clone, Copy)]
pub(crate) enum HeaderRead<'a> {
    /// Not at all: the verifier recognises our own header or parses it.
    Unread,
    /// Our own minted header, recognised in this family's ring: its key and `typ`.
    Minted(&'a VerifyingKey, ExplicitTyp),
    /// Someone else's header, parsed and screened once (by the router).
    Parsed(&'a TokenHeader, JwtAlgorithm),
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

    /// Verifies `token` as a token of kind `C`, reading its header here.
    pub(crate) fn verify<C: KindClaims>(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<C::Verified, TokenError> {
        self.verify_read::<C>(token, HeaderRead::Unread, now)
    }

    /// Verifies `token` as a token of kind `C`, with its header as far as it has been read.
    pub(crate) fn verify_read<C: KindClaims>(
        &self,
        token: &str,
        header: HeaderRead<'_>,
        now: UnixTime,
    ) -> Result<C::Verified, TokenError> {
        if token.len() > self.policy.max_token_bytes {
            return Err(TokenError::Oversize);
        }
        let seg = Segments::split(token)?;
        let (key, typ) = match header {
            HeaderRead::Unread => self.key_for_segment(seg.header, token)?,
            HeaderRead::Minted(key, typ) => (key, typ),
            HeaderRead::Parsed(header, alg) => (
                self.key_for(header, alg)?,
                ExplicitTyp::of(header.typ.as_deref()),
            ),
        };
        if !typ.allows(C::TYP) {
            return Err(TokenError::WrongType);
        }
        verify_signature(key, &seg)?;
        let claims: C = decode_json(seg.payload)?;
        let expires_at = self.check_registered::<C>(claims.registered(), now)?;
        claims.into_verified(expires_at)
    }

    /// Our own minted header, if `segment` is one this family's keys write: the key and the
    /// header's `typ`.
    pub(crate) fn minted(&self, segment: &str) -> Option<HeaderRead<'_>> {
        let (key, typ) = self.ring.by_header_segment_typed(segment)?;
        Some(HeaderRead::Minted(key, typ))
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

    /// `iss`, `aud` (the policy's audience with the kind's suffix) and the times; the `exp`
    /// they passed.
    fn check_registered<C: KindClaims>(
        &self,
        r: &Registered,
        now: UnixTime,
    ) -> Result<UnixTime, TokenError> {
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
        Ok(exp.0)
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
        let signature = key
            .sign(token.as_bytes())
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
    let public = match key.material() {
        VerifyingMaterial::Hs256(mac) => return verify_hs256(mac, seg),
        VerifyingMaterial::Rs256(public)
        | VerifyingMaterial::Es256(public)
        | VerifyingMaterial::EdDsa(public) => public,
    };
    match jsonwebtoken::crypto::verify(
        seg.signature,
        seg.signing_input.as_bytes(),
        &public.decoding,
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

/// Checks an HS256 signature with the key's pre-keyed MAC, in constant time.
fn verify_hs256(mac: &HmacSha256, seg: &Segments<'_>) -> Result<(), TokenError> {
    // An HS256 signature is 32 bytes: 43 base64url characters.
    let mut sig = [0u8; 32];
    if seg.signature.len() != 43 {
        return Err(TokenError::BadSignature);
    }
    URL_SAFE_NO_PAD
        .decode_slice(seg.signature, &mut sig)
        .map_err(|_| TokenError::Malformed)?;
    if mac.verify(seg.signing_input.as_bytes(), &sig) {
        Ok(())
    } else {
        Err(TokenError::BadSignature)
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
