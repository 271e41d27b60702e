//! Memory under a flood of forged credentials: 1 000 000 distinct forged API keys (each with
//! a valid checksum, so each reaches the store and leaves a negative cache entry) and
//! 1 000 000 distinct forged tokens (right header and claims, wrong signature), through
//! `Authenticator::resolve`. Prints the process's resident memory before, after each flood,
//! and the configured cache bounds: the growth must stay within the caches' sizes.
//!
//!   cargo run --release -p portcullis-bench --bin forged-flood [-- COUNT]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use portcullis_bench::{DEFAULT_SECRET, Fixture};
use portcullis_core::api_key::{self, ApiKeyPrefix};
use portcullis_core::cache::CacheConfig;
use portcullis_core::{AuthError, Credential};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let count: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fx = Fixture::new(DEFAULT_SECRET, 900).await;
        let auth = &fx.auth;
        let valid = fx.mint();
        let cache = CacheConfig::default();
        println!(
            "caches: {} entries each (keys, sessions, agents, denied jtis), {} MiB of resolved credentials each",
            cache.capacity,
            cache.resolved_bytes >> 20
        );
        let before = rss_kib();
        println!("RSS before: {} MiB", before / 1024);

        let prefix = ApiKeyPrefix::default();
        let started = Instant::now();
        for _ in 0..count {
            let key = api_key::generate(&prefix);
            let got = auth.resolve(Credential::ApiKey(key.key.expose())).await;
            assert_eq!(got, Err(AuthError::InvalidApiKey));
        }
        let after_keys = rss_kib();
        println!(
            "after {count} distinct forged API keys ({:.1} s): RSS {} MiB (+{} MiB)",
            started.elapsed().as_secs_f64(),
            after_keys / 1024,
            after_keys.saturating_sub(before) / 1024
        );

        let (signing_input, _) = valid.rsplit_once('.').unwrap();
        let started = Instant::now();
        for n in 0..count {
            let forged = format!("{signing_input}.{n:043}");
            let got = auth.resolve(Credential::Bearer(&forged)).await;
            assert!(matches!(got, Err(AuthError::InvalidToken(_))), "{got:?}");
        }
        let after_tokens = rss_kib();
        println!(
            "after {count} distinct forged tokens ({:.1} s): RSS {} MiB (+{} MiB over the keys)",
            started.elapsed().as_secs_f64(),
            after_tokens / 1024,
            after_tokens.saturating_sub(after_keys) / 1024
        );
        // The valid token still resolves: the floods evicted nothing that matters.
        auth.resolve(Credential::Bearer(&valid)).await.unwrap();
    });
}
