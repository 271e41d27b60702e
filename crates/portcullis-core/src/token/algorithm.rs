//! The JWT signature algorithms Portcullis accepts, by their JOSE names.

use std::fmt;

use jsonwebtoken::Algorithm;

/// The JWT signature algorithms Portcullis accepts.
///
/// A key never holds one of these beside its material: the algorithm is the kind of material
/// the key is made of (see [`VerifyingKey::algorithm`](super::VerifyingKey::algorithm)).
///
/// ```
/// use portcullis_core::token::JwtAlgorithm;
/// assert_eq!(JwtAlgorithm::from_name("EdDSA"), Some(JwtAlgorithm::EdDsa));
/// assert_eq!(JwtAlgorithm::from_name("hs256"), None, "JOSE names are case-sensitive");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret.
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl JwtAlgorithm {
    /// Every supported algorithm, in discriminant order.
    pub const ALL: [Self; 4] = [Self::Hs256, Self::Rs256, Self::Es256, Self::EdDsa];

    /// The JOSE name: `HS256`, `RS256`, `ES256`, `EdDSA`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Parses the exact JOSE name (case-sensitive, as RFC 7515 says).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Self::Hs256),
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }

    pub(crate) const fn to_jwt(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }

    /// True for the public-key algorithms (published in JWKS).
    pub const fn is_asymmetric(self) -> bool {
        !matches!(self, Self::Hs256)
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
