//! JWT parsing and verification on arbitrary strings: header screening, routing by shape,
//! and verification of every token kind must return, never panic. The seed corpus holds real
//! tokens signed with `SECRET`, so the fuzzer starts from tokens that pass the signature.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_core::token::{
    AgentTokens, Carrier, DEFAULT_MAX_TOKEN_BYTES, KeyRing, SigningKey, TokenFamilies,
    TokenHeader, TokenPolicy, UserTokenTtl, UserTokens,
};
use portcullis_core::{ManualClock, Secret};

const SECRET: &str = "portcullis-fuzz-secret-0123456789abcdef";

fn policy(aud: &str) -> TokenPolicy {
    TokenPolicy {
        issuer: "portcullis".into(),
        audience: aud.into(),
        leeway_secs: 30,
        max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
    }
}

static TOKENS: LazyLock<TokenFamilies> = LazyLock::new(|| {
    let ring = || KeyRing::new(SigningKey::hs256(&Secret::from(SECRET)));
    // The seeds were minted at 1 800 000 000; keep them unexpired.
    let clock = std::sync::Arc::new(ManualClock::new(1_800_000_100));
    TokenFamilies::new(
        UserTokens::new(ring(), policy("portcullis-api"), UserTokenTtl::default())
            .with_clock(clock.clone()),
        AgentTokens::new(ring(), policy("portcullis-agents"), 172_800).with_clock(clock),
    )
});

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let families = &*TOKENS;
    let _ = TokenHeader::parse(token, DEFAULT_MAX_TOKEN_BYTES);
    let _ = families.verify(token, Carrier::Bearer);
    let _ = families.verify(token, Carrier::Cookie);
    let _ = families.users().verify_access(token);
    let _ = families.users().verify_refresh(token);
    let _ = families.agents().verify(token);
});
