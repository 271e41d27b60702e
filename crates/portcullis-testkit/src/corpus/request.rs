//! The request's headers: Authorization shapes and sizes, non-ASCII bytes, conflicting credentials.

use serde_json::json;

use crate::case::*;
use crate::fixture::Fixture;
use crate::jws::*;

/// Authorization values of every scheme, shape and size; duplicated headers; non-ASCII bytes.
pub fn authorization_headers() -> Table {
    let mut t = Table::default();
    let a = |v: &str| vec![hv("authorization", v)];
    t.add("control: Bearer", "", ALICE, |fx| bearer(&fx.alice));
    t.add(
        "lowercase scheme",
        "RFC 7235: the scheme is case-insensitive",
        ALICE,
        |fx| vec![hv("authorization", format!("bearer {}", fx.alice))],
    );
    t.add("uppercase scheme", "", ALICE, |fx| {
        vec![hv("authorization", format!("BEARER {}", fx.alice))]
    });
    t.add("lowercase scheme, garbage", "", INVALID_TOKEN, move |_| {
        a("bearer garbage")
    });
    t.add(
        "garbage",
        "no scheme at all",
        INVALID_CREDENTIALS,
        move |_| a("garbage"),
    );
    t.add(
        "empty",
        "an empty Authorization header is presented and unreadable",
        INVALID_CREDENTIALS,
        move |_| a(""),
    );
    t.add("a single space", "", INVALID_CREDENTIALS, move |_| a(" "));
    t.add("Bearer garbage", "", INVALID_TOKEN, move |_| {
        a("Bearer garbage")
    });
    t.add("Bearer with nothing", "", INVALID_TOKEN, move |_| {
        a("Bearer")
    });
    t.add("Bearer and one space", "", INVALID_TOKEN, move |_| {
        a("Bearer ")
    });
    t.add("Bearer and two spaces", "", INVALID_TOKEN, move |_| {
        a("Bearer  ")
    });
    t.add("Bearer a.b.c", "", INVALID_TOKEN, move |_| {
        a("Bearer a.b.c")
    });
    t.add("Bearer ....", "", INVALID_TOKEN, move |_| a("Bearer ...."));
    t.add(
        "Bearer with a tab",
        "tab is not SP",
        INVALID_CREDENTIALS,
        |fx| vec![hv("authorization", format!("Bearer\t{}", fx.alice))],
    );
    t.add("Bearer without a space", "", INVALID_CREDENTIALS, |fx| {
        vec![hv("authorization", format!("Bearer{}", fx.alice))]
    });
    t.add("Bearer: with a colon", "", INVALID_CREDENTIALS, |fx| {
        vec![hv("authorization", format!("Bearer: {}", fx.alice))]
    });
    t.add("two tokens", "", INVALID_TOKEN, |fx| {
        vec![hv(
            "authorization",
            format!("Bearer {} {}", fx.alice, fx.bob),
        )]
    });
    t.add("two tokens, comma-separated", "", INVALID_TOKEN, |fx| {
        vec![hv(
            "authorization",
            format!("Bearer {}, Bearer {}", fx.alice, fx.bob),
        )]
    });
    t.add("Basic", "", INVALID_CREDENTIALS, move |_| {
        a("Basic dXNlcjpwYXNz")
    });
    t.add(
        "Basic carrying a valid JWT",
        "",
        INVALID_CREDENTIALS,
        |fx| vec![hv("authorization", format!("Basic {}", fx.alice))],
    );
    t.add("Basic with nothing", "", INVALID_CREDENTIALS, move |_| {
        a("Basic")
    });
    t.add("Digest", "", INVALID_CREDENTIALS, move |_| {
        a("Digest username=\"u\", nonce=\"n\"")
    });
    t.add(
        "Token scheme carrying a valid JWT",
        "",
        INVALID_CREDENTIALS,
        |fx| vec![hv("authorization", format!("Token {}", fx.alice))],
    );
    t.add(
        "JWT scheme carrying a valid JWT",
        "",
        INVALID_CREDENTIALS,
        |fx| vec![hv("authorization", format!("JWT {}", fx.alice))],
    );
    t.add(
        "ApiKey scheme carrying a valid key",
        "",
        INVALID_CREDENTIALS,
        |fx| vec![hv("authorization", format!("ApiKey {}", fx.alice_key))],
    );
    // Duplicated headers.
    t.add(
        "two Authorization headers, the same valid token",
        "",
        INVALID_TOKEN,
        |fx| {
            let v = format!("Bearer {}", fx.alice);
            vec![hv("authorization", &v), hv("authorization", &v)]
        },
    );
    t.add(
        "two Authorization headers, two users",
        "",
        INVALID_TOKEN,
        |fx| {
            vec![
                hv("authorization", format!("Bearer {}", fx.alice)),
                hv("authorization", format!("Bearer {}", fx.bob)),
            ]
        },
    );
    t.add(
        "two Authorization headers, valid and Basic",
        "",
        INVALID_TOKEN,
        |fx| {
            vec![
                hv("authorization", format!("Bearer {}", fx.alice)),
                hv("authorization", "Basic dXNlcjpwYXNz"),
            ]
        },
    );
    t.add(
        "two Authorization headers, empty and valid",
        "",
        INVALID_TOKEN,
        |fx| {
            vec![
                hv("authorization", ""),
                hv("authorization", format!("Bearer {}", fx.alice)),
            ]
        },
    );
    t.add(
        "two Authorization headers, valid key and valid token",
        "",
        INVALID_TOKEN,
        |fx| {
            vec![
                hv("authorization", format!("Bearer {}", fx.alice_key)),
                hv("authorization", format!("Bearer {}", fx.alice)),
            ]
        },
    );
    // 60 000 bytes.
    let big = || "a".repeat(60_000);
    t.add("60 000-byte bearer", "", INVALID_TOKEN, move |_| {
        bearer(big())
    });
    t.add("60 000-byte three-part bearer", "", INVALID_TOKEN, |_| {
        let third = "a".repeat(20_000);
        bearer(format!("{third}.{third}.{third}"))
    });
    t.add(
        "valid token + 60 000 bytes of signature",
        "",
        INVALID_TOKEN,
        move |fx| bearer(format!("{}{}", fx.alice, big())),
    );
    t.add(
        "valid token with a 60 000-byte payload",
        "",
        INVALID_TOKEN,
        move |fx| {
            let [h, _, s] = segments(&fx.alice);
            bearer(format!("{h}.{}.{s}", big()))
        },
    );
    t.add(
        "60 000-byte signed token",
        "correctly signed, huge claim",
        INVALID_TOKEN,
        move |fx| bearer(fx.user_with(|c| c["pad"] = json!(big()))),
    );
    t.add(
        "60 000-byte bearer API key",
        "",
        INVALID_API_KEY,
        move |_| bearer(format!("ck_{}", big())),
    );
    t.add("60 000-byte X-API-Key", "", INVALID_API_KEY, move |_| {
        x_api_key(format!("ck_{}", big()))
    });
    t.add(
        "60 000-byte X-API-Key without a prefix",
        "",
        INVALID_API_KEY,
        move |_| x_api_key(big()),
    );
    t.add("60 000-byte Basic", "", INVALID_CREDENTIALS, move |_| {
        vec![hv("authorization", format!("Basic {}", big()))]
    });
    t.add(
        "60 000-byte Authorization without a scheme",
        "",
        INVALID_CREDENTIALS,
        move |_| vec![hv("authorization", big())],
    );
    t.add("60 000-byte access cookie", "", INVALID_TOKEN, move |_| {
        access_cookie(big())
    });
    // Non-ASCII and invalid UTF-8.
    let raw = |name: &'static str, v: &'static [u8]| move |_: &Fixture| vec![hv(name, v)];
    t.add(
        "Bearer, invalid UTF-8",
        "",
        INVALID_TOKEN,
        raw("authorization", b"Bearer \xff\xfe\xfd"),
    );
    t.add(
        "Bearer, UTF-8 non-ASCII",
        "",
        INVALID_TOKEN,
        raw("authorization", "Bearer café.x.y".as_bytes()),
    );
    t.add(
        "Bearer, a lone continuation byte",
        "",
        INVALID_TOKEN,
        raw("authorization", b"Bearer \x80"),
    );
    t.add(
        "invalid UTF-8 before the scheme",
        "",
        INVALID_TOKEN,
        raw("authorization", b"\xffBearer abc"),
    );
    t.add(
        "non-ASCII scheme",
        "",
        INVALID_TOKEN,
        raw("authorization", "Béarer abc".as_bytes()),
    );
    t.add(
        "valid token + an invalid UTF-8 byte",
        "",
        INVALID_TOKEN,
        |fx| {
            let mut v = format!("Bearer {}", fx.alice).into_bytes();
            v.push(0xff);
            vec![hv("authorization", v)]
        },
    );
    t.add(
        "valid token with a non-ASCII char inside",
        "",
        INVALID_TOKEN,
        |fx| {
            let [h, p, s] = segments(&fx.alice);
            vec![hv("authorization", format!("Bearer {h}.{p}é.{s}"))]
        },
    );
    t.add(
        "X-API-Key, invalid UTF-8",
        "",
        INVALID_API_KEY,
        raw("x-api-key", b"ck_\xff\xfe"),
    );
    t.add(
        "X-API-Key, a lone continuation byte",
        "",
        INVALID_API_KEY,
        raw("x-api-key", b"\x80"),
    );
    t.add("valid key + a non-ASCII char", "", INVALID_API_KEY, |fx| {
        x_api_key(format!("{}é", fx.alice_key))
    });
    t.add(
        "Cookie header with invalid UTF-8 around the access cookie",
        "our cookie, present but unreadable: an error, never absence",
        INVALID_TOKEN,
        raw("cookie", b"portcullis_access=\xff.a.b"),
    );
    t.add(
        "Cookie header with invalid UTF-8 and no access cookie",
        "another application's cookie: no credential",
        MISSING,
        raw("cookie", b"junk=\xff\xfe"),
    );
    t
}

/// Two credentials in one request: one actor counts once, two actors are refused.
pub fn conflicting_credentials() -> Table {
    let mut t = Table::default();
    let two = |a: (&str, String), b: (&str, String)| vec![hv(a.0, a.1), hv(b.0, b.1)];
    t.add(
        "control: the same token as bearer and cookie",
        "counts once",
        ALICE,
        move |fx| {
            two(
                ("authorization", format!("Bearer {}", fx.alice)),
                ("cookie", format!("portcullis_access={}", fx.alice)),
            )
        },
    );
    t.add(
        "control: the same key in X-API-Key and bearer",
        "counts once",
        ALICE_KEY,
        move |fx| {
            two(
                ("x-api-key", fx.alice_key.clone()),
                ("authorization", format!("Bearer {}", fx.alice_key)),
            )
        },
    );
    t.add(
        "control: an agent's key and its run token",
        "one actor",
        AGENT,
        move |fx| {
            two(
                ("x-api-key", fx.agent_key.clone()),
                ("authorization", format!("Bearer {}", fx.run)),
            )
        },
    );
    t.add(
        "valid key of A + valid token of B",
        "",
        INVALID_CREDENTIALS,
        move |fx| {
            two(
                ("x-api-key", fx.alice_key.clone()),
                ("authorization", format!("Bearer {}", fx.bob)),
            )
        },
    );
    t.add(
        "valid key of A + valid cookie of B",
        "",
        INVALID_CREDENTIALS,
        move |fx| {
            two(
                ("x-api-key", fx.alice_key.clone()),
                ("cookie", format!("portcullis_access={}", fx.bob)),
            )
        },
    );
    t.add(
        "valid token of A + valid cookie of B",
        "",
        INVALID_CREDENTIALS,
        move |fx| {
            two(
                ("authorization", format!("Bearer {}", fx.alice)),
                ("cookie", format!("portcullis_access={}", fx.bob)),
            )
        },
    );
    t.add(
        "valid key of A + valid key of B as bearer",
        "",
        INVALID_CREDENTIALS,
        move |fx| {
            two(
                ("x-api-key", fx.alice_key.clone()),
                ("authorization", format!("Bearer {}", fx.bob_key)),
            )
        },
    );
    t.add(
        "valid key of A + an agent's run token",
        "",
        INVALID_CREDENTIALS,
        move |fx| {
            two(
                ("x-api-key", fx.alice_key.clone()),
                ("authorization", format!("Bearer {}", fx.run)),
            )
        },
    );
    t.add(
        "agent-7's key + agent-8's run token",
        "",
        INVALID_CREDENTIALS,
        move |fx| {
            two(
                ("x-api-key", fx.agent_key.clone()),
                ("authorization", format!("Bearer {}", fx.other_run)),
            )
        },
    );
    t.add(
        "valid token + a bad key",
        "the key is checked first",
        INVALID_API_KEY,
        move |fx| {
            two(
                ("x-api-key", "ck_typo".into()),
                ("authorization", format!("Bearer {}", fx.alice)),
            )
        },
    );
    t.add(
        "valid token + a tampered key",
        "",
        INVALID_API_KEY,
        move |fx| {
            two(
                ("x-api-key", flip_at(&fx.alice_key, 10)),
                ("authorization", format!("Bearer {}", fx.alice)),
            )
        },
    );
    t.add(
        "valid token + an unknown well-formed key",
        "",
        INVALID_API_KEY,
        move |fx| {
            let stranger = crate::api_key::stranger("ck");
            two(
                ("x-api-key", stranger),
                ("authorization", format!("Bearer {}", fx.alice)),
            )
        },
    );
    t.add(
        "valid token + an empty X-API-Key",
        "",
        INVALID_API_KEY,
        move |fx| {
            two(
                ("x-api-key", String::new()),
                ("authorization", format!("Bearer {}", fx.alice)),
            )
        },
    );
    t.add(
        "valid key + a garbage bearer",
        "",
        INVALID_TOKEN,
        move |fx| {
            two(
                ("x-api-key", fx.alice_key.clone()),
                ("authorization", "Bearer garbage".into()),
            )
        },
    );
    t.add(
        "valid key + a Basic header",
        "",
        INVALID_CREDENTIALS,
        move |fx| {
            two(
                ("x-api-key", fx.alice_key.clone()),
                ("authorization", "Basic dXNlcjpwYXNz".into()),
            )
        },
    );
    t.add(
        "valid token + a tampered cookie",
        "",
        INVALID_TOKEN,
        move |fx| {
            let tampered = flip_at(&fx.alice, fx.alice.len() - 10);
            two(
                ("authorization", format!("Bearer {}", fx.alice)),
                ("cookie", format!("portcullis_access={tampered}")),
            )
        },
    );
    t.add(
        "valid token + a refresh token cookie",
        "",
        WRONG_TOKEN_TYPE,
        move |fx| {
            two(
                ("authorization", format!("Bearer {}", fx.alice)),
                ("cookie", format!("portcullis_access={}", fx.refresh)),
            )
        },
    );
    t.add(
        "tampered token + valid cookie",
        "",
        INVALID_TOKEN,
        move |fx| {
            let tampered = flip_at(&fx.alice, fx.alice.len() - 10);
            two(
                ("authorization", format!("Bearer {tampered}")),
                ("cookie", format!("portcullis_access={}", fx.alice)),
            )
        },
    );
    t.add(
        "valid token + two different access cookies",
        "",
        INVALID_TOKEN,
        move |fx| {
            two(
                ("authorization", format!("Bearer {}", fx.alice)),
                (
                    "cookie",
                    format!(
                        "portcullis_access={}; portcullis_access={}",
                        fx.alice, fx.bob
                    ),
                ),
            )
        },
    );
    t
}

/// Requests that carry no credential at all: `missing_credentials`, or the board behind board
/// fallback ([`Table::with_board_fallback`]).
pub fn no_credential() -> Table {
    let mut t = Table::default();
    t.add(
        "no credentials at all",
        "no header of ours",
        MISSING,
        |_| Vec::new(),
    );
    t.add(
        "unrelated cookies only",
        "no credential either",
        MISSING,
        |_| vec![hv("cookie", "theme=dark; lang=en")],
    );
    t.add(
        "an empty access cookie",
        "a cleared cookie is no credential",
        MISSING,
        |_| access_cookie(""),
    );
    t
}
