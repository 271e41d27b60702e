//! API keys: tampered, truncated, extended, re-cased, re-prefixed, never stored.

use crate::case::*;
use crate::jws::*;

/// alice's key tampered, truncated, extended, re-cased and re-prefixed, in `X-API-Key` and as
/// a bearer; keys with a valid checksum that no store holds.
pub fn api_keys() -> Table {
    let mut t = Table::default();
    // (label, the bad key from the valid one, want via X-API-Key, want via Bearer)
    type Mutate = fn(&str) -> String;
    fn r(
        label: &'static str,
        f: Mutate,
        header: Want,
        bearer: Want,
    ) -> (&'static str, Mutate, Want, Want) {
        (label, f, header, bearer)
    }
    let rows: Vec<(&str, Mutate, Want, Want)> = vec![
        r(
            "one random char changed",
            |k| flip_at(k, 10),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "first random char changed",
            |k| flip_at(k, 3),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "one checksum char changed",
            |k| flip_at(k, k.len() - 1),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "two chars swapped",
            |k| {
                let mut b = k.as_bytes().to_vec();
                let i = (3..b.len() - 1).find(|&i| b[i] != b[i + 1]).unwrap();
                b.swap(i, i + 1);
                String::from_utf8(b).unwrap()
            },
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "truncated by one char",
            |k| k[..k.len() - 1].to_owned(),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "checksum cut off",
            |k| k[..k.len() - 6].to_owned(),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "truncated to the prefix",
            |_| "ck_".to_owned(),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "truncated to the display prefix",
            |k| k[..11].to_owned(),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "one char appended",
            |k| format!("{k}a"),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "padding appended",
            |k| format!("{k}="),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "a dot appended",
            |k| format!("{k}."),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "random part doubled",
            |k| format!("{k}{}", &k[3..]),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "key twice",
            |k| format!("{k}{k}"),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "random part upper-cased",
            |k| format!("ck_{}", k[3..].to_ascii_uppercase()),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "random part lower-cased",
            |k| format!("ck_{}", k[3..].to_ascii_lowercase()),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "random part case-swapped",
            |k| {
                let swapped: String = k[3..]
                    .chars()
                    .map(|c| {
                        if c.is_ascii_lowercase() {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    })
                    .collect();
                format!("ck_{swapped}")
            },
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        // Not our prefix's shape: as a bearer it is a JWT, and a malformed one.
        r(
            "prefix upper-cased",
            |k| format!("CK_{}", &k[3..]),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "whole key upper-cased",
            |k| k.to_ascii_uppercase(),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "wrong prefix sk_",
            |k| format!("sk_{}", &k[3..]),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "prefix with a dash",
            |k| format!("ck-{}", &k[3..]),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "prefix without the underscore",
            |k| format!("ck{}", &k[3..]),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "prefix doubled",
            |k| format!("ck_{k}"),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "prefix missing",
            |k| k[3..].to_owned(),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "a space inside",
            |k| format!("{} {}", &k[..20], &k[20..]),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "a dash inside",
            |k| format!("{}-{}", &k[..20], &k[21..]),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "valid checksum, never stored",
            |_| crate::api_key::stranger("ck"),
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
        r(
            "valid checksum under another prefix",
            |_| crate::api_key::stranger("sk"),
            INVALID_API_KEY,
            INVALID_TOKEN,
        ),
        r(
            "valid checksum, a stored key's display prefix, never stored",
            |k| {
                // The real key's first 11 characters, one changed after them, re-checksummed.
                crate::api_key::with_checksum(&flip_at(&k[..46], 20))
            },
            INVALID_API_KEY,
            INVALID_API_KEY,
        ),
    ];
    t.add("control: the key in X-API-Key", "", ALICE_KEY, |fx| {
        x_api_key(&fx.alice_key)
    });
    t.add("control: the key as a bearer", "", ALICE_KEY, |fx| {
        bearer(&fx.alice_key)
    });
    t.add(
        "control: the key in X-API-Key between spaces",
        "leading and trailing whitespace is not part of a field value (RFC 9110 §5.5)",
        ALICE_KEY,
        |fx| x_api_key(format!("  {}  ", fx.alice_key)),
    );
    t.add("control: the agent's key", "", AGENT, |fx| {
        x_api_key(&fx.agent_key)
    });
    for (label, mutate, via_header, via_bearer) in rows {
        t.add(format!("X-API-Key, {label}"), "", via_header, move |fx| {
            let bad = mutate(&fx.alice_key);
            assert_ne!(bad, fx.alice_key);
            x_api_key(bad)
        });
        t.add(format!("Bearer, {label}"), "", via_bearer, move |fx| {
            let bad = mutate(&fx.alice_key);
            assert_ne!(bad, fx.alice_key);
            bearer(bad)
        });
    }
    t.add("agent key, one char changed", "", INVALID_API_KEY, |fx| {
        x_api_key(flip_at(&fx.agent_key, 10))
    });
    t.add(
        "the key in the access cookie",
        "cookies carry JWTs",
        INVALID_TOKEN,
        |fx| access_cookie(&fx.alice_key),
    );
    t.add(
        "a JWT in X-API-Key",
        "anything there is an API key",
        INVALID_API_KEY,
        |fx| x_api_key(&fx.alice),
    );
    t.add("X-API-Key empty", "", INVALID_API_KEY, |_| x_api_key(""));
    t.add("X-API-Key only spaces", "", INVALID_API_KEY, |_| {
        x_api_key("   ")
    });
    t.add("X-API-Key garbage", "", INVALID_API_KEY, |_| {
        x_api_key("hello")
    });
    t.add(
        "X-API-Key twice, the same valid key",
        "",
        INVALID_API_KEY,
        |fx| {
            vec![
                hv("x-api-key", &fx.alice_key),
                hv("x-api-key", &fx.alice_key),
            ]
        },
    );
    t.add(
        "X-API-Key twice, valid and garbage",
        "",
        INVALID_API_KEY,
        |fx| vec![hv("x-api-key", &fx.alice_key), hv("x-api-key", "ck_typo")],
    );
    t
}
