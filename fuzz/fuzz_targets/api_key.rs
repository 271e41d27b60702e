//! API key parsing on arbitrary strings and prefixes: length, prefix, alphabet and checksum
//! checks must return, never panic, and a key that parses must hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::api_key::{self, ApiKeyPrefix};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line may name a prefix; the rest is the key.
    let (prefix, key) = match text.split_once('\n') {
        Some((p, k)) => match ApiKeyPrefix::new(p) {
            Ok(p) => (p, k),
            Err(_) => (ApiKeyPrefix::default(), k),
        },
        None => (ApiKeyPrefix::default(), text),
    };
    if let Ok(parsed) = api_key::parse(key, &prefix) {
        let _ = parsed.hash();
        let _ = parsed.display_prefix();
    }
});
