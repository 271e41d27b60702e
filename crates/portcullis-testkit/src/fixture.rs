//! What a harness hands the corpus: the secrets it configured, its kids, valid tokens and keys,
//! and the ids its actors got; and the claims forged from them.

use serde_json::{Value, json};

use crate::jws::{part, seg, sign, sign_seg};

/// The algorithm of the user key ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// HMAC-SHA256 with the user secret.
    Hs256,
    /// RSA PKCS#1 v1.5 with SHA-256.
    Rs256,
    /// Ed25519.
    EdDsa,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

impl Alg {
    /// The JOSE name (`alg` header member).
    pub fn jose(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }
}

/// The ids the harness's actors got (fixed in memory, assigned by the server over HTTP).
#[derive(Clone, Debug)]
pub struct Ids {
    /// The user behind [`Fixture::alice`].
    pub alice: String,
    /// The user behind [`Fixture::bob`].
    pub bob: String,
    /// The id of [`Fixture::alice_key`].
    pub alice_key: String,
    /// The agent behind [`Fixture::run`] and [`Fixture::agent_key`], in [`Fixture::org`].
    pub agent: String,
    /// The agent behind [`Fixture::other_run`], in [`Fixture::other_org`].
    pub other_agent: String,
    /// The id the board actor reports, if the harness checks it.
    pub board: Option<String>,
}

/// Secrets, kids, valid credentials and ids of one harness. Every forged credential of the
/// corpus is built from these alone.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// The time the verifier sees, in Unix seconds (a stopped clock, or the wall clock).
    pub clock: fn() -> u64,
    /// The verifier's leeway on `exp` and `nbf`, in seconds.
    pub leeway: u64,
    /// The algorithm of the user ring.
    pub ring: Alg,
    /// The HS256 user secret the verifier holds, if it holds one.
    pub user_secret: Option<Vec<u8>>,
    /// The HS256 secret of agent run tokens.
    pub agent_secret: Vec<u8>,
    /// For an asymmetric user ring: its public key as PEM.
    pub public_pem: Option<&'static [u8]>,
    /// For an asymmetric user ring: its public key as the JWK the verifier publishes.
    pub jwk: Option<Value>,
    /// The kid of the active user key.
    pub user_kid: String,
    /// The kid of the agent key.
    pub agent_kid: String,
    /// The org of alice, her keys, and the agent.
    pub org: String,
    /// The org of the other agent.
    pub other_org: String,
    /// alice's access token.
    pub alice: String,
    /// bob's access token.
    pub bob: String,
    /// alice's refresh token.
    pub refresh: String,
    /// The agent's run token.
    pub run: String,
    /// The other agent's run token.
    pub other_run: String,
    /// alice's API key.
    pub alice_key: String,
    /// bob's API key.
    pub bob_key: String,
    /// The agent's own API key.
    pub agent_key: String,
    /// Who is who.
    pub ids: Ids,
}

impl Fixture {
    /// The verifier's time now.
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// The HS256 user secret (panics for a fixture without one: such cases are marked).
    pub fn user_secret(&self) -> &[u8] {
        self.user_secret
            .as_deref()
            .expect("this fixture's verifier holds no HS256 user secret")
    }

    /// The claims of a valid access token of alice: hers, issued now, valid ten minutes.
    pub fn user_claims(&self) -> Value {
        fresh(part(&self.alice, 1), self.now())
    }

    /// The claims of a valid run token of the agent: its own, issued now, valid ten minutes.
    pub fn agent_claims(&self) -> Value {
        fresh(part(&self.run, 1), self.now())
    }

    /// The header our HS256 signer would write for a user token.
    pub fn user_header(&self) -> Value {
        json!({"alg": "HS256", "typ": "JWT", "kid": self.user_kid})
    }

    /// The header of an agent run token.
    pub fn agent_header(&self) -> Value {
        json!({"alg": "HS256", "typ": "JWT", "kid": self.agent_kid})
    }

    /// alice's claims edited, under the exact header bytes of her token, signed with the user
    /// secret (HS256 rings only).
    pub fn user_with(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.user_claims();
        edit(&mut claims);
        sign_seg(seg(&self.alice, 0), &claims, self.user_secret())
    }

    /// The agent's claims edited, under the exact header bytes of its run token, signed with
    /// the agent secret.
    pub fn agent_with(&self, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.agent_claims();
        edit(&mut claims);
        sign_seg(seg(&self.run, 0), &claims, &self.agent_secret)
    }

    /// A user token with an edited header and claims, signed with the user secret.
    pub fn user_forged(&self, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let (mut header, mut claims) = (self.user_header(), self.user_claims());
        edit(&mut header, &mut claims);
        sign(&header, &claims, self.user_secret())
    }

    /// An agent run token with an edited header and claims, signed with the agent secret.
    pub fn agent_forged(&self, edit: impl FnOnce(&mut Value, &mut Value)) -> String {
        let (mut header, mut claims) = (self.agent_header(), self.agent_claims());
        edit(&mut header, &mut claims);
        sign(&header, &claims, &self.agent_secret)
    }

    /// A token of `family` (`"user"` or `"agent"`) with edited claims, correctly signed.
    pub fn family_with(&self, family: &str, edit: impl FnOnce(&mut Value)) -> String {
        if family == "user" {
            self.user_with(edit)
        } else {
            self.agent_with(edit)
        }
    }

    /// Checks that the hand-made HMAC and API-key checksum agree with the verifier's own
    /// tokens and keys, so a refusal is never a forging bug.
    pub fn self_check(&self) {
        let [h, p, s] = crate::jws::segments(&self.run);
        let mac = crate::jws::hmac_sha256(&self.agent_secret, format!("{h}.{p}").as_bytes());
        assert_eq!(crate::jws::b64url(&mac), s, "hand-made HMAC differs");
        let body = &self.alice_key[..crate::api_key::BODY_LEN];
        assert_eq!(crate::api_key::with_checksum(body), self.alice_key);
        if self.ring == Alg::Hs256 {
            let [h, p, s] = crate::jws::segments(&self.alice);
            let mac = crate::jws::hmac_sha256(self.user_secret(), format!("{h}.{p}").as_bytes());
            assert_eq!(crate::jws::b64url(&mac), s, "hand-made HMAC differs");
        }
    }
}

/// `claims` issued at `now` and expiring ten minutes later.
fn fresh(mut claims: Value, now: u64) -> Value {
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 600);
    claims
}
