//! Credential extraction (and the board fallback's loopback check) from arbitrary request
//! heads: any header names, values, duplicates and bytes must give credentials or an error,
//! never a panic.
#![no_main]

use http::{HeaderName, HeaderValue, Request};
use libfuzzer_sys::fuzz_target;
use portcullis_core::api_key::ApiKeyPrefix;
use portcullis_tower::{credentials, loopback};

fuzz_target!(|data: &[u8]| {
    // One header per line, `name: value`; lines that are not a valid name/value are skipped.
    let mut req = Request::builder().method(if data.first() == Some(&b'P') { "POST" } else { "GET" });
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            req = req.header(n, v);
        }
    }
    let Ok(req) = req.body(()) else { return };
    let (parts, ()) = req.into_parts();
    let prefix = ApiKeyPrefix::default();
    if let Ok(creds) = credentials::extract(&parts, &prefix) {
        for c in creds.iter() {
            let _ = c.kind();
        }
    }
    let _ = credentials::csrf_matches(&parts.headers);
    let _ = credentials::cookie(&parts.headers, credentials::ACCESS_COOKIE);
    // The board fallback's Host check reads the same head.
    let _ = loopback::addressed_to_loopback(&parts);
});
