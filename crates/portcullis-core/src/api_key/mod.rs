//! API keys: `<prefix>_<43 random base62 chars><6-char checksum>`.
//!
//! The random part carries 256 bits (43 × log2 62 ≈ 256.0). The checksum is CRC-32 of
//! everything before it, so a typo or a forged key dies in [`parse`] before any lookup.
//! Keys are stored only as their SHA-256 [`KeyHash`].

//!
//! [`format`](mod@format) is the key as a string (prefix, generation, parsing, checksum); [`record`] is the
//! key as stored (owner, creator, permissions, expiry). The hash that links them is
//! [`KeyHash`], shared with refresh tokens.

pub mod format;
pub mod record;

pub use crate::key_hash::KeyHash;
pub use format::{
    ApiKeyPrefix, GeneratedApiKey, InvalidPrefix, MAX_PREFIX_LEN, PresentedApiKey, generate, parse,
};
pub use record::{ApiKeyRecord, KeyCreator, KeyOwner, KeysOf};
