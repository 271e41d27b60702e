//! Shared pieces of the Portcullis benchmarks (`benches/hot_path.rs`) and of the HTTP bench
//! server (`src/bin/bench-server.rs`):
//!
//! - [`Fixture`]: an [`Authenticator`] on in-memory stores with one live session, minting
//!   access tokens and storing API keys, all through the public API.
//! - [`floor`]: what a hand-written HS256 verifier does, piece by piece: the floor the issue's
//!   goals are measured against.
//! - [`peer`]: the claims and `Validation` a team would use with plain `jsonwebtoken`.

// Bench fixtures: a failed setup is a failed bench, reported where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use portcullis_core::api_key::{self, ApiKeyPrefix, ApiKeyRecord, KeyHash, KeyOwner};
use portcullis_core::ids::{ApiKeyId, OrgId, SessionId, UserId};
use portcullis_core::session::SessionRecord;
use portcullis_core::store::Stores;
use portcullis_core::token::{AccessGrant, UserTokenTtl};
use portcullis_core::{AuthConfig, Authenticator, Secret, seed};

/// The HS256 secret everything here signs with unless told otherwise.
pub const DEFAULT_SECRET: &str = "portcullis-bench-hs256-secret-0123456789abcdef";
/// Required `iss` of user tokens (Portcullis's default).
pub const ISSUER: &str = "portcullis";
/// Required `aud` of user tokens (Portcullis's default).
pub const AUDIENCE: &str = "portcullis-api";
/// Clock skew allowed, seconds (Portcullis's default).
pub const LEEWAY_SECS: u64 = 30;
/// The user every token and key belongs to.
pub const USER: &str = "u-bench";
/// Their organisation.
pub const ORG: &str = "acme";

/// Installs jsonwebtoken 11's crypto provider (aws-lc, as Portcullis does) for code that uses
/// jsonwebtoken before any Portcullis key exists. Harmless when one is installed already.
pub fn install_jwt_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// An [`Authenticator`] with default settings on in-memory stores and the system clock, one
/// live session of [`USER`], and helpers to mint its tokens and store API keys.
pub struct Fixture {
    /// The authenticator under test.
    pub auth: Authenticator,
    /// Its configuration, to build more authenticators with cold caches.
    pub config: AuthConfig,
    /// Its stores, shared with those authenticators.
    pub stores: Stores,
    /// The live session every minted token belongs to.
    pub session: SessionId,
}

impl Fixture {
    /// Default configuration but for the secret and the access token lifetime.
    pub async fn new(secret: &str, access_ttl_secs: u64) -> Self {
        let config = AuthConfig::builder()
            .jwt_secret(Secret::from(secret))
            .user_ttl(UserTokenTtl {
                access_secs: access_ttl_secs,
                ..UserTokenTtl::default()
            })
            .build()
            .expect("bench configuration");
        let stores = Stores::memory();
        let auth = Authenticator::builder()
            .config(config.clone())
            .stores(stores.clone())
            .build()
            .expect("bench authenticator");
        let session = SessionId::random();
        let record = SessionRecord::new(
            session.clone(),
            UserId::from(USER),
            OrgId::from(ORG),
            KeyHash::of(b"bench refresh token"),
            auth.clock().now(),
            30 * 24 * 3600,
            false,
        );
        stores.sessions.create(record).await.expect("bench session");
        Self {
            auth,
            config,
            stores,
            session,
        }
    }

    /// The same configuration and stores behind fresh (empty) caches: every token and key is
    /// first-seen again.
    pub fn fresh_authenticator(&self) -> Authenticator {
        Authenticator::builder()
            .config(self.config.clone())
            .stores(self.stores.clone())
            .build()
            .expect("bench authenticator")
    }

    /// A new access token (role `user`) for the fixture's session; each has its own `jti`.
    pub fn mint(&self) -> String {
        self.auth
            .user_tokens()
            .mint_access(AccessGrant {
                user_id: &UserId::from(USER),
                email: "bench@example.com",
                role: "user",
                org_id: &OrgId::from(ORG),
                session_id: &self.session,
            })
            .expect("mint")
            .token
            .expose()
            .to_owned()
    }

    /// A new API key of [`USER`] with `memory:*`, stored; returns the key itself.
    pub async fn api_key(&self) -> String {
        let generated = api_key::generate(&ApiKeyPrefix::default());
        let record = key_record(
            ApiKeyId::random(),
            generated.hash,
            generated.display_prefix.clone(),
            UserId::from(USER),
            OrgId::from(ORG),
            self.auth.clock().now(),
        );
        self.stores
            .api_keys
            .insert(record)
            .await
            .expect("store api key");
        generated.key.expose().to_owned()
    }
}

/// A plain key record (`memory:*`, enabled, no expiry, rate limit or credits) of user `owner`,
/// made by that user: what the benches store.
pub fn key_record(
    id: ApiKeyId,
    hash: KeyHash,
    display_prefix: String,
    owner: UserId,
    org_id: OrgId,
    created_at: portcullis_core::UnixTime,
) -> ApiKeyRecord {
    ApiKeyRecord {
        id,
        name: "bench key".into(),
        hash,
        display_prefix,
        created_by: owner.clone().into(),
        owner: KeyOwner::User(owner),
        org_id,
        permissions: seed::MEMORY_ALL,
        created_at,
        expires_at: None,
        enabled: true,
        rate_limit_per_minute: None,
        last_used_at: None,
        remaining: None,
    }
}

/// The floor: a hand-written HS256 verifier of Portcullis access tokens, with the HMAC key made
/// once, base64url decoded into stack buffers and the claims parsed borrowed. It makes the same
/// decisions Portcullis's verifier makes for such a token (header `alg`/`kid`/`crit`, signature,
/// `iss`, `aud`, `exp`/`nbf`/`iat` with leeway, `type`, required claims) and no others: one
/// key, one algorithm, no key ring, no distinct error reasons.
pub mod floor {
    use aws_lc_rs::hmac;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde::Deserialize;

    /// Largest payload the stack buffer takes (ours are ~300 bytes).
    const PAYLOAD_MAX: usize = 2048;
    /// Largest header the stack buffer takes.
    const HEADER_MAX: usize = 256;

    /// The JOSE header, borrowed.
    #[derive(Debug, Deserialize)]
    pub struct Header<'a> {
        /// `alg`.
        #[serde(borrow)]
        pub alg: &'a str,
        /// `kid`.
        #[serde(borrow, default)]
        pub kid: Option<&'a str>,
        /// `crit`: refused when present.
        #[serde(default)]
        pub crit: Option<serde::de::IgnoredAny>,
    }

    /// An access token's claims, borrowed from the decoded payload.
    #[derive(Debug, Deserialize)]
    pub struct Claims<'a> {
        /// User id.
        #[serde(borrow)]
        pub sub: Option<&'a str>,
        /// Email.
        #[serde(borrow, default)]
        pub email: Option<&'a str>,
        /// Role.
        #[serde(borrow)]
        pub role: Option<&'a str>,
        /// Organisation.
        #[serde(borrow)]
        pub org_id: Option<&'a str>,
        /// `access`.
        #[serde(rename = "type", borrow)]
        pub token_type: Option<&'a str>,
        /// Session.
        #[serde(borrow)]
        pub sid: Option<&'a str>,
        /// Issuer.
        #[serde(borrow)]
        pub iss: Option<&'a str>,
        /// Audience (one string: what Portcullis mints).
        #[serde(borrow)]
        pub aud: Option<&'a str>,
        /// Expiry.
        pub exp: Option<u64>,
        /// Not before.
        #[serde(default)]
        pub nbf: Option<u64>,
        /// Issued at.
        #[serde(default)]
        pub iat: Option<u64>,
        /// Token id.
        #[serde(borrow)]
        pub jti: Option<&'a str>,
    }

    /// The parts of a compact JWS.
    #[derive(Debug, Clone, Copy)]
    pub struct Parts<'a> {
        /// base64url header.
        pub header: &'a str,
        /// base64url payload.
        pub payload: &'a str,
        /// base64url signature.
        pub signature: &'a str,
        /// `header.payload`: what the MAC covers.
        pub signing_input: &'a str,
    }

    /// Splits a token into its three parts.
    pub fn split(token: &str) -> Option<Parts<'_>> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let (header, payload) = signing_input.split_once('.')?;
        if payload.contains('.') {
            return None;
        }
        Some(Parts {
            header,
            payload,
            signature,
            signing_input,
        })
    }

    /// Decodes base64url (no padding) into `buf`; the decoded bytes.
    pub fn decode_b64<'b>(input: &str, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        if base64::decoded_len_estimate(input.len()) > buf.len() {
            return None;
        }
        let n = URL_SAFE_NO_PAD.decode_slice(input, buf).ok()?;
        Some(&buf[..n])
    }

    /// Parses claims borrowed from `json`, which must be UTF-8 as a whole (RFC 8259 §8.1; as
    /// Portcullis checks it, serde_json alone does not check the strings it skips).
    pub fn parse_claims(json: &[u8]) -> Option<Claims<'_>> {
        serde_json::from_str(std::str::from_utf8(json).ok()?).ok()
    }

    /// Seconds since the epoch, from the system clock (as Portcullis reads it).
    pub fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// One key, its kid and the policy.
    pub struct Floor {
        key: hmac::Key,
        kid: String,
        issuer: String,
        audience: String,
        leeway: u64,
    }

    impl Floor {
        /// The HMAC key is made here, once.
        pub fn new(secret: &[u8], kid: &str, issuer: &str, audience: &str, leeway: u64) -> Self {
            Self {
                key: hmac::Key::new(hmac::HMAC_SHA256, secret),
                kid: kid.to_owned(),
                issuer: issuer.to_owned(),
                audience: audience.to_owned(),
                leeway,
            }
        }

        /// Header: decode, parse, `alg` is HS256, `kid` is ours (if present), no `crit`.
        pub fn check_header(&self, header_b64: &str) -> bool {
            let mut buf = [0u8; HEADER_MAX];
            let Some(json) = decode_b64(header_b64, &mut buf) else {
                return false;
            };
            let Ok(text) = std::str::from_utf8(json) else {
                return false;
            };
            let Ok(h) = serde_json::from_str::<Header<'_>>(text) else {
                return false;
            };
            h.alg == "HS256" && h.crit.is_none() && h.kid.is_none_or(|k| k == self.kid)
        }

        /// Decodes the signature and verifies the MAC of the signing input (constant time).
        pub fn verify_mac(&self, parts: &Parts<'_>) -> bool {
            let mut buf = [0u8; 64];
            let Some(tag) = decode_b64(parts.signature, &mut buf) else {
                return false;
            };
            hmac::verify(&self.key, parts.signing_input.as_bytes(), tag).is_ok()
        }

        /// The claim checks of an access token at `now`.
        pub fn check_claims(&self, c: &Claims<'_>, now: u64) -> bool {
            let leeway = self.leeway;
            let (Some(exp), Some(iss), Some(aud)) = (c.exp, c.iss, c.aud) else {
                return false;
            };
            iss == self.issuer
                && aud == self.audience
                && exp.saturating_add(leeway) > now
                && c.nbf.is_none_or(|nbf| nbf <= now.saturating_add(leeway))
                && c.iat.is_none_or(|iat| iat <= now.saturating_add(leeway))
                && c.token_type == Some("access")
                && c.sub.is_some()
                && c.role.is_some()
                && c.org_id.is_some()
                && c.sid.is_some()
                && c.jti.is_some()
        }

        /// The whole hand-written verifier: split, header, MAC, payload, claims, checks; `f`
        /// sees the verified claims.
        pub fn verify<R>(&self, token: &str, f: impl FnOnce(&Claims<'_>) -> R) -> Option<R> {
            if token.len() > 8 * 1024 {
                return None;
            }
            let parts = split(token)?;
            if !self.check_header(parts.header) || !self.verify_mac(&parts) {
                return None;
            }
            let mut buf = [0u8; PAYLOAD_MAX];
            let json = decode_b64(parts.payload, &mut buf)?;
            let claims = parse_claims(json)?;
            if !self.check_claims(&claims, now()) {
                return None;
            }
            Some(f(&claims))
        }
    }
}

/// Plain `jsonwebtoken`, as a team would use it: owned claims and a `Validation` for HS256
/// with `exp`, `iss` and `aud` required.
pub mod peer {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use serde::Deserialize;

    /// An access token's claims, owned.
    #[derive(Debug, Clone, Deserialize)]
    pub struct Claims {
        /// User id.
        pub sub: String,
        /// Email.
        #[serde(default)]
        pub email: Option<String>,
        /// Role.
        pub role: String,
        /// Organisation.
        pub org_id: String,
        /// `access`.
        #[serde(rename = "type")]
        pub token_type: String,
        /// Session.
        pub sid: String,
        /// Issuer.
        pub iss: String,
        /// Audience.
        pub aud: String,
        /// Expiry.
        pub exp: u64,
        /// Issued at.
        #[serde(default)]
        pub iat: Option<u64>,
        /// Token id.
        pub jti: String,
    }

    /// HS256 only; `exp`, `iss`, `aud` required and checked; Portcullis's leeway.
    pub fn validation() -> Validation {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[super::ISSUER]);
        v.set_audience(&[super::AUDIENCE]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        v.leeway = super::LEEWAY_SECS;
        v
    }

    /// The decoding key for `secret`.
    pub fn key(secret: &str) -> DecodingKey {
        DecodingKey::from_secret(secret.as_bytes())
    }

    /// Decodes and validates `token`; also checks `type` as a hand-written layer would.
    pub fn decode(token: &str, key: &DecodingKey, validation: &Validation) -> Option<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, key, validation).ok()?;
        (data.claims.token_type == "access").then_some(data.claims)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use portcullis_core::Credential;

    #[tokio::test]
    async fn floor_and_peer_accept_what_portcullis_accepts_and_refuse_a_forgery() {
        let fx = Fixture::new(DEFAULT_SECRET, 900).await;
        let token = fx.mint();
        fx.auth.resolve(Credential::Bearer(&token)).await.unwrap();
        let kid = fx.auth.user_tokens().key_ring().active().kid().to_owned();
        let floor = floor::Floor::new(
            DEFAULT_SECRET.as_bytes(),
            &kid,
            ISSUER,
            AUDIENCE,
            LEEWAY_SECS,
        );
        assert_eq!(
            floor.verify(&token, |c| c.sid.map(str::to_owned)),
            Some(Some(fx.session.as_str().to_owned()))
        );
        let claims = peer::decode(&token, &peer::key(DEFAULT_SECRET), &peer::validation()).unwrap();
        assert_eq!(claims.sid, fx.session.as_str());

        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(floor.verify(&forged, |_| ()).is_none());
        assert!(peer::decode(&forged, &peer::key(DEFAULT_SECRET), &peer::validation()).is_none());
        assert!(fx.auth.resolve(Credential::Bearer(&forged)).await.is_err());
        let other = floor::Floor::new(b"another secret", &kid, ISSUER, AUDIENCE, LEEWAY_SECS);
        assert!(other.verify(&token, |_| ()).is_none());
    }

    #[tokio::test]
    async fn api_keys_resolve_and_fresh_authenticators_share_the_stores() {
        let fx = Fixture::new(DEFAULT_SECRET, 900).await;
        let key = fx.api_key().await;
        fx.auth.resolve(Credential::ApiKey(&key)).await.unwrap();
        fx.fresh_authenticator()
            .resolve(Credential::ApiKey(&key))
            .await
            .unwrap();
    }
}
