//! External identity providers (OpenID Connect issuers) for the corpus: two configured issuers
//! and an attacker, their keys, their JWKS documents and their tokens.
//!
//! A harness that runs [`crate::corpus::external`] configures its authenticator with two
//! external issuers, their keys served from memory (the JWKS of [`Idps::jwks`]):
//!
//! - [`ISSUER_A`]: audience [`AUDIENCE`], algorithms RS256 and ES256, org from the claim
//!   [`ORG_CLAIM`], kind user; one RSA key, [`KID_A`] (`alg: RS256`).
//! - [`ISSUER_B`]: audience [`AUDIENCE`], algorithm ES256, org fixed to the fixture's org, kind
//!   service; one P-256 key, [`KID_B`] (`alg: ES256`).
//!
//! A accepting ES256 too is deliberate: a token of A signed by B's P-256 key is then refused
//! because A does not hold that key, not merely because of its `alg`.
//!
//! The attacker's RSA key ([`Key::Attacker`], `testdata/attacker-rs256.pem`) is held by
//! neither. Tokens are signed with `jsonwebtoken` (the harness's `portcullis-core` chooses its
//! crypto backend); headers and claims are still built as JSON values, so a case can put in
//! them whatever it probes (`jku`, `x5u`, a duplicate `iss`).

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::fixture::Fixture;
use crate::jws::{b64url, unb64url};

/// Issuer A, the RSA one.
pub const ISSUER_A: &str = "https://idp-a.example";
/// Issuer B, the P-256 one.
pub const ISSUER_B: &str = "https://idp-b.example";
/// An issuer nobody configured.
pub const ISSUER_UNKNOWN: &str = "https://idp-c.example";
/// The audience both issuers' tokens carry (and the verifier accepts).
pub const AUDIENCE: &str = "portcullis-api";
/// The `kid` of A's key.
pub const KID_A: &str = "idp-a-rsa-1";
/// The `kid` of B's key.
pub const KID_B: &str = "idp-b-p256-1";
/// The `kid` of the attacker's key.
pub const KID_ATTACKER: &str = "attacker-rsa-1";
/// Where the attacker publishes its JWKS (never fetched: `jku` is not read).
pub const ATTACKER_JWKS: &str = "https://attacker.example/.well-known/jwks.json";
/// Where the attacker publishes a certificate (never fetched: `x5u` is not read).
pub const ATTACKER_X5U: &str = "https://attacker.example/cert.pem";
/// The user A's tokens name.
pub const SUBJECT_A: &str = "idp-a|carol";
/// The service client B's tokens name.
pub const SUBJECT_B: &str = "idp-b|billing-worker";
/// The claim A names the org in.
pub const ORG_CLAIM: &str = "org";

/// The attacker's RSA private key (PKCS#8).
const ATTACKER_PEM: &[u8] = include_bytes!("../testdata/attacker-rs256.pem");

/// Whose private key signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// Issuer A's RSA key (RS256).
    A,
    /// Issuer B's P-256 key (ES256).
    B,
    /// The attacker's RSA key (RS256), held by no issuer.
    Attacker,
}

/// The issuers' keys, as the harness has them (PEM files of its own test data).
#[derive(Clone, Copy, Debug)]
pub struct Idps {
    /// A's RSA private key, PKCS#8 PEM.
    pub a_private: &'static [u8],
    /// A's RSA public key, SPKI PEM (what an algorithm-confusion attacker has).
    pub a_public: &'static [u8],
    /// B's P-256 private key, PKCS#8 PEM.
    pub b_private: &'static [u8],
}

impl Idps {
    /// The key's signing algorithm and `kid`.
    pub fn alg_kid(key: Key) -> (Algorithm, &'static str) {
        match key {
            Key::A => (Algorithm::RS256, KID_A),
            Key::B => (Algorithm::ES256, KID_B),
            Key::Attacker => (Algorithm::RS256, KID_ATTACKER),
        }
    }

    fn encoding(&self, key: Key) -> EncodingKey {
        match key {
            Key::A => EncodingKey::from_rsa_pem(self.a_private),
            Key::B => EncodingKey::from_ec_pem(self.b_private),
            Key::Attacker => EncodingKey::from_rsa_pem(ATTACKER_PEM),
        }
        .expect("a test key PEM")
    }

    /// The public JWK of `key`, as its issuer publishes it: `kid`, `use: sig`, `alg`.
    pub fn jwk(&self, key: Key) -> Value {
        let (alg, kid) = Self::alg_kid(key);
        let jwk = Jwk::from_encoding_key(&self.encoding(key), alg).unwrap();
        let mut v = serde_json::to_value(jwk).unwrap();
        v["kid"] = json!(kid);
        v["use"] = json!("sig");
        v
    }

    /// The JWKS document serving `key` alone.
    pub fn jwks(&self, key: Key) -> Vec<u8> {
        json!({"keys": [self.jwk(key)]}).to_string().into_bytes()
    }

    /// The header `key`'s issuer writes: its `alg`, its `kid`, `typ: JWT`.
    pub fn header(key: Key) -> Value {
        let (alg, kid) = Self::alg_kid(key);
        json!({"alg": format!("{alg:?}"), "typ": "JWT", "kid": kid})
    }

    /// The claims of a valid access token of A for the fixture's time and org: issued now,
    /// valid ten minutes, scoped `openid memory:read`.
    pub fn claims_a(fx: &Fixture) -> Value {
        let now = fx.now();
        json!({
            "iss": ISSUER_A,
            "sub": SUBJECT_A,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 600,
            ORG_CLAIM: fx.org,
            "scope": "openid memory:read",
            "jti": "idp-a-token-1",
        })
    }

    /// The claims of a valid access token of B's service client.
    pub fn claims_b(fx: &Fixture) -> Value {
        let now = fx.now();
        json!({
            "iss": ISSUER_B,
            "sub": SUBJECT_B,
            "aud": [AUDIENCE, "another-api"],
            "iat": now,
            "exp": now + 600,
            "scp": ["memory:read"],
        })
    }

    /// `header` and `claims` signed with `key`'s algorithm, whatever `header` says.
    pub fn sign(&self, header: &Value, claims: &Value, key: Key) -> String {
        self.sign_raw(
            header.to_string().as_bytes(),
            claims.to_string().as_bytes(),
            key,
        )
    }

    /// Raw JSON texts signed with `key` (to send what a `Value` cannot hold).
    pub fn sign_raw(&self, header: &[u8], claims: &[u8], key: Key) -> String {
        let input = format!("{}.{}", b64url(header), b64url(claims));
        let (alg, _) = Self::alg_kid(key);
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding(key), alg).unwrap();
        format!("{input}.{sig}")
    }

    /// A valid token of A.
    pub fn token_a(&self, fx: &Fixture) -> String {
        self.sign(&Self::header(Key::A), &Self::claims_a(fx), Key::A)
    }

    /// A token of A with edited header and claims, signed by `key`.
    pub fn a_forged(
        &self,
        fx: &Fixture,
        key: Key,
        edit: impl FnOnce(&mut Value, &mut Value),
    ) -> String {
        let (mut header, mut claims) = (Self::header(Key::A), Self::claims_a(fx));
        edit(&mut header, &mut claims);
        self.sign(&header, &claims, key)
    }

    /// A valid token of B.
    pub fn token_b(&self, fx: &Fixture) -> String {
        self.sign(&Self::header(Key::B), &Self::claims_b(fx), Key::B)
    }

    /// A's public key as DER (the PEM's base64 body decoded).
    pub fn a_public_der(&self) -> Vec<u8> {
        pem_der(self.a_public)
    }
}

/// The DER inside a PEM: its base64 lines, decoded.
pub fn pem_der(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).unwrap();
    let b64: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.trim().chars())
        .filter(|&c| c != '=')
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    unb64url(&b64)
}
