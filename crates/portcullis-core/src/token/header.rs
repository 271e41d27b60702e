//! The JOSE header: as others write it (parsed and screened, [`TokenHeader`]), what its `typ`
//! says ([`ExplicitTyp`]), and the exact bytes our own signer writes ([`HeaderSegments`]),
//! which are recognised without parsing.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::algorithm::JwtAlgorithm;
use crate::error::TokenError;

/// Largest header accepted, in bytes (base64url), checked before decoding it.
pub(crate) const MAX_HEADER_BYTES: usize = 1024;

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
    ///
    /// ```
    /// use portcullis_core::{TokenError, token::{JwtAlgorithm, TokenHeader}};
    /// // {"alg":"HS256","kid":"k1"}
    /// let (header, alg) = TokenHeader::parse("eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30.sig", 8192)?;
    /// assert_eq!((alg, header.kid.as_deref()), (JwtAlgorithm::Hs256, Some("k1")));
    /// // {"alg":"none"}
    /// let none = TokenHeader::parse("eyJhbGciOiJub25lIn0.e30.", 8192).unwrap_err();
    /// assert_eq!(none, TokenError::AlgNone);
    /// # Ok::<(), TokenError>(())
    /// ```
    pub fn parse(token: &str, max_token_bytes: usize) -> Result<(Self, JwtAlgorithm), TokenError> {
        let header = Self::screen(token, max_token_bytes)?;
        let alg = JwtAlgorithm::from_name(&header.alg).ok_or(TokenError::UnsupportedAlgorithm)?;
        Ok((header, alg))
    }

    /// [`parse`](Self::parse) without the algorithm check, for verifiers that accept other
    /// algorithms than ours (an external issuer's): size, shape, `alg: none`, `crit`.
    pub fn screen(token: &str, max_token_bytes: usize) -> Result<Self, TokenError> {
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
        Ok(header)
    }
}

/// The base64url headers our signer writes for one key, typed `JWT` (refresh and agent
/// tokens) and `at+jwt` (access tokens): a token whose header segment is exactly one of these
/// needs no header parsing.
#[derive(Debug)]
pub(crate) struct HeaderSegments {
    generic: String,
    access: String,
}

impl HeaderSegments {
    /// The headers for a key of `alg` named `kid`.
    pub(crate) fn new(alg: JwtAlgorithm, kid: &str) -> Arc<Self> {
        let segment = |typ: ExplicitTyp| {
            let mut header = jsonwebtoken::Header::new(alg.to_jwt());
            header.typ = Some(typ.header_value().to_owned());
            header.kid = Some(kid.to_owned());
            let json = serde_json::to_vec(&header).unwrap_or_default();
            URL_SAFE_NO_PAD.encode(json)
        };
        Arc::new(Self {
            generic: segment(ExplicitTyp::Generic),
            access: segment(ExplicitTyp::Access),
        })
    }

    /// The header segment for `typ`.
    pub(crate) fn get(&self, typ: ExplicitTyp) -> &str {
        match typ {
            ExplicitTyp::Access => &self.access,
            ExplicitTyp::Generic | ExplicitTyp::Other => &self.generic,
        }
    }

    /// The typ of the header `segment` is, if it is one of these.
    pub(crate) fn typ_of(&self, segment: &str) -> Option<ExplicitTyp> {
        if segment == self.access {
            Some(ExplicitTyp::Access)
        } else if segment == self.generic {
            Some(ExplicitTyp::Generic)
        } else {
            None
        }
    }
}
