//! The test kit of Portcullis: forging credentials by hand, and the adversarial corpus.
//!
//! Issue 14, point 6: one adversarial corpus, run through every harness (the tower layer through
//! `oneshot`, the real server over HTTP), instead of one copied suite per harness.
//!
//! - [`jws`]: base64url, HMAC-SHA256 and compact JWS built by hand, and segment surgery, so a
//!   forged token differs from a valid one in exactly the defect its case names.
//! - [`api_key`]: API keys with a valid checksum that were never stored.
//! - [`idp`]: external identity providers — two issuers and an attacker, their keys, JWKS and
//!   RS256/ES256 tokens (signed with `jsonwebtoken`, the one thing not done by hand).
//! - [`fixture`]: what a harness hands the corpus — secrets, kids, valid tokens and keys, ids —
//!   and the claims forged from them.
//! - [`case`]: a case (name, credential built from the fixture, expected outcome), tables of them,
//!   the check of one reply and the runner over a [`Harness`].
//! - [`corpus`]: the tables themselves, described once.
//!
//! The kit imports nothing from `portcullis-core`: tokens are forged from the secrets a harness
//! configured, so the corpus does not move when the token API does.
#![forbid(unsafe_code)]
// Test code: a forging step that fails is a broken fixture, and panics say so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod api_key;
pub mod case;
pub mod corpus;
pub mod fixture;
pub mod idp;
pub mod jws;

pub use case::{
    Challenge, Harness, Headers, Reply, Side, Table, Want, Who, assert_no_failures, run,
};
pub use fixture::{Alg, Fixture, Ids};
pub use idp::Idps;
