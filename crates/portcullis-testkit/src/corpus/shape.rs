//! The token's shape: tampered, truncated and extended segments; JSON that is not a plain object.

use crate::case::*;
use crate::fixture::Fixture;
use crate::jws::*;

/// Valid tokens with a character changed, cut, emptied, padded, extended, re-cased.
pub fn tampered_tokens() -> Table {
    let mut t = Table::default();
    fn access(fx: &Fixture) -> &str {
        &fx.alice
    }
    fn run(fx: &Fixture) -> &str {
        &fx.run
    }
    type Pick = fn(&Fixture) -> &str;
    let kinds: [(&str, Pick, Want); 2] = [("access", access, ALICE), ("run", run, AGENT)];
    for (kind, pick, accepted) in kinds {
        t.add(
            format!("control: the {kind} token"),
            "",
            accepted,
            move |fx| bearer(pick(fx)),
        );
        t.add(
            format!("control: the {kind} token after two spaces"),
            "RFC 6750: `Bearer` 1*SP token",
            accepted,
            move |fx| vec![hv("authorization", format!("Bearer  {}", pick(fx)))],
        );
        for (i, part) in ["header", "payload", "signature"].into_iter().enumerate() {
            t.add(
                format!("{kind} token, first char of the {part} changed"),
                "",
                INVALID_TOKEN,
                move |fx| {
                    let token = pick(fx);
                    let mut s = segments(token).map(str::to_owned);
                    s[i] = flip_at(&s[i], 0);
                    bearer(s.join("."))
                },
            );
            t.add(
                format!("{kind} token, middle char of the {part} changed"),
                "",
                INVALID_TOKEN,
                move |fx| {
                    let token = pick(fx);
                    let mut s = segments(token).map(str::to_owned);
                    s[i] = flip_at(&s[i], s[i].len() / 2);
                    bearer(s.join("."))
                },
            );
            t.add(
                format!("{kind} token, {part} cut by one char"),
                "",
                INVALID_TOKEN,
                move |fx| {
                    let mut s = segments(pick(fx)).map(str::to_owned);
                    s[i].pop();
                    bearer(s.join("."))
                },
            );
            t.add(
                format!("{kind} token, {part} cut in half"),
                "",
                INVALID_TOKEN,
                move |fx| {
                    let mut s = segments(pick(fx)).map(str::to_owned);
                    let half = s[i].len() / 2;
                    s[i].truncate(half);
                    bearer(s.join("."))
                },
            );
            t.add(
                format!("{kind} token, {part} emptied"),
                "",
                INVALID_TOKEN,
                move |fx| {
                    let mut s = segments(pick(fx)).map(str::to_owned);
                    s[i].clear();
                    bearer(s.join("."))
                },
            );
            t.add(
                format!("{kind} token, {part} missing"),
                "two segments left",
                INVALID_TOKEN,
                move |fx| {
                    let s: Vec<&str> = segments(pick(fx))
                        .into_iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, p)| p)
                        .collect();
                    bearer(s.join("."))
                },
            );
            t.add(
                format!("{kind} token, {part} with base64 padding"),
                "",
                INVALID_TOKEN,
                move |fx| {
                    let mut s = segments(pick(fx)).map(str::to_owned);
                    s[i].push('=');
                    bearer(s.join("."))
                },
            );
            t.add(
                format!("{kind} token, {part} with a space inside"),
                "",
                INVALID_TOKEN,
                move |fx| {
                    let mut s = segments(pick(fx)).map(str::to_owned);
                    s[i].insert(4, ' ');
                    bearer(s.join("."))
                },
            );
        }
        t.add(
            format!("{kind} token, signature with non-canonical trailing bits"),
            "decodes to the same bytes under a lenient base64 decoder",
            INVALID_TOKEN,
            move |fx| {
                let mut s = segments(pick(fx)).map(str::to_owned);
                let last = s[2].pop().unwrap();
                let idx = B64.iter().position(|&c| c == last as u8).unwrap();
                assert_eq!(
                    idx & 3,
                    0,
                    "a canonical HS256 signature ends in 4 data bits"
                );
                s[2].push(char::from(B64[idx | 1]));
                bearer(s.join("."))
            },
        );
        t.add(
            format!("{kind} token, signature in the standard base64 alphabet with padding"),
            "",
            INVALID_TOKEN,
            move |fx| {
                let mut s = segments(pick(fx)).map(str::to_owned);
                s[2] = s[2].replace('-', "+").replace('_', "/") + "=";
                bearer(s.join("."))
            },
        );
        t.add(
            format!("{kind} token, header only"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(seg(pick(fx), 0)),
        );
        t.add(
            format!("{kind} token, payload only"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(seg(pick(fx), 1)),
        );
        t.add(
            format!("{kind} token, only dots"),
            "",
            INVALID_TOKEN,
            |_| bearer(".."),
        );
        t.add(
            format!("{kind} token, truncated to 20 chars"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(&pick(fx)[..20]),
        );
        t.add(
            format!("{kind} token + trailing dot"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(format!("{}.", pick(fx))),
        );
        t.add(
            format!("{kind} token + leading dot"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(format!(".{}", pick(fx))),
        );
        t.add(
            format!("{kind} token + extra segment"),
            "",
            INVALID_TOKEN,
            move |fx| {
                let token = pick(fx);
                bearer(format!("{token}.{}", seg(token, 1)))
            },
        );
        t.add(
            format!("{kind} token + its signature again"),
            "",
            INVALID_TOKEN,
            move |fx| {
                let token = pick(fx);
                bearer(format!("{token}.{}", seg(token, 2)))
            },
        );
        t.add(
            format!("{kind} token twice, dot-joined"),
            "",
            INVALID_TOKEN,
            move |fx| {
                let token = pick(fx);
                bearer(format!("{token}.{token}"))
            },
        );
        t.add(
            format!("{kind} token + a trailing tab"),
            "tab is not SP",
            INVALID_TOKEN,
            move |fx| bearer(format!("{}\t", pick(fx))),
        )
        // An HTTP/1.1 parser strips a field value's trailing whitespace (RFC 9110 §5.5): the
        // layer behind it receives the token alone.
        .on_server(accepted);
        t.add(
            format!("{kind} token + a trailing comma"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(format!("{},", pick(fx))),
        );
        t.add(
            format!("{kind} token + a space and junk"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(format!("{} junk", pick(fx))),
        );
        t.add(
            format!("{kind} token + 1 char"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(format!("{}A", pick(fx))),
        );
        t.add(
            format!("{kind} token upper-cased"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(pick(fx).to_ascii_uppercase()),
        );
        t.add(
            format!("{kind} token lower-cased"),
            "",
            INVALID_TOKEN,
            move |fx| bearer(pick(fx).to_ascii_lowercase()),
        );
        t.add(
            format!("{kind} token, signature tampered, in the cookie"),
            "",
            INVALID_TOKEN,
            move |fx| {
                let mut s = segments(pick(fx)).map(str::to_owned);
                s[2] = flip_at(&s[2], 0);
                access_cookie(s.join("."))
            },
        );
    }
    t
}

/// Claims and headers that are not the plain JSON objects they should be: duplicate members
/// (parser differentials), other JSON types, trailing bytes, deep nesting. All correctly signed.
pub fn json_structure() -> Table {
    let mut t = Table::default();
    t.add(
        "control: raw JSON, signed",
        "the raw forging machinery, no defect",
        ALICE,
        |fx| {
            let (h, c) = (fx.user_header().to_string(), fx.user_claims().to_string());
            bearer(sign_raw(h.as_bytes(), c.as_bytes(), fx.user_secret()))
        },
    );
    /// The user claims as JSON text with `extra` spliced in after the opening brace.
    fn spliced(fx: &Fixture, extra: &str) -> Vec<u8> {
        let claims = fx.user_claims().to_string();
        format!("{{{extra},{}", &claims[1..]).into_bytes()
    }
    type Claims = fn(&Fixture) -> Vec<u8>;
    fn r(label: &'static str, claims: Claims) -> (&'static str, Claims) {
        (label, claims)
    }
    let payloads = [
        r("exp twice, past then future", |fx| {
            spliced(fx, &format!(r#""exp":{}"#, fx.now() - 3600))
        }),
        r("type twice, refresh then access", |fx| {
            spliced(fx, r#""type":"refresh""#)
        }),
        r("sub twice, bob then alice", |fx| {
            spliced(fx, &format!(r#""sub":"{}""#, fx.ids.bob))
        }),
        r("aud twice, foreign then ours", |fx| {
            spliced(fx, r#""aud":"evil-api""#)
        }),
        r("an array", |fx| {
            format!("[{}]", fx.user_claims()).into_bytes()
        }),
        r("a string", |fx| {
            serde_json::to_vec(&fx.user_claims().to_string()).unwrap()
        }),
        r("a number", |_| b"1".to_vec()),
        r("null", |_| b"null".to_vec()),
        r("empty", |_| Vec::new()),
        r("trailing garbage", |fx| {
            format!("{}x", fx.user_claims()).into_bytes()
        }),
        r("two objects", |fx| {
            format!("{0}{0}", fx.user_claims()).into_bytes()
        }),
        r("a byte-order mark first", |fx| {
            format!("\u{feff}{}", fx.user_claims()).into_bytes()
        }),
        r("invalid UTF-8 in an unknown member's string", |fx| {
            let mut claims = spliced(fx, r#""x":"?""#);
            let at = claims.iter().position(|&b| b == b'?').unwrap();
            claims[at] = 0xff;
            claims
        }),
        r("nested 5 000 levels deep", |fx| {
            spliced(
                fx,
                &format!(r#""x":{}{}"#, "[".repeat(5000), "]".repeat(5000)),
            )
        }),
        r("a 200 000-char claim", |fx| {
            spliced(fx, &format!(r#""x":"{}""#, "y".repeat(200_000)))
        }),
    ];
    for (label, claims) in payloads {
        t.add(
            format!("user claims: {label}"),
            "signed with the user secret",
            INVALID_TOKEN,
            move |fx| {
                let header = fx.user_header().to_string();
                bearer(sign_raw(header.as_bytes(), &claims(fx), fx.user_secret()))
            },
        );
    }
    type Header = fn(&Fixture) -> String;
    fn h(label: &'static str, header: Header) -> (&'static str, Header) {
        (label, header)
    }
    let headers = [
        h("alg twice, none then HS256", |fx| {
            format!(r#"{{"alg":"none","alg":"HS256","kid":"{}"}}"#, fx.user_kid)
        }),
        h("alg twice, HS256 then none", |fx| {
            format!(r#"{{"alg":"HS256","alg":"none","kid":"{}"}}"#, fx.user_kid)
        }),
        h("kid twice, agent then user", |fx| {
            format!(
                r#"{{"alg":"HS256","kid":"{}","kid":"{}"}}"#,
                fx.agent_kid, fx.user_kid
            )
        }),
        h("crit twice, [\"exp\"] then null", |fx| {
            format!(
                r#"{{"alg":"HS256","kid":"{}","crit":["exp"],"crit":null}}"#,
                fx.user_kid
            )
        }),
        h("an array", |fx| {
            format!(r#"[{{"alg":"HS256","kid":"{}"}}]"#, fx.user_kid)
        }),
        h("trailing garbage", |fx| {
            format!(r#"{{"alg":"HS256","kid":"{}"}}x"#, fx.user_kid)
        }),
        h("nested 500 levels deep", |fx| {
            format!(
                r#"{{"alg":"HS256","kid":"{}","x":{}{}}}"#,
                fx.user_kid,
                "[".repeat(500),
                "]".repeat(500)
            )
        }),
        h("empty", |_| String::new()),
    ];
    t.add(
        "header: invalid UTF-8 in the typ member",
        "not a JSON text (RFC 8259 §8.1), so not a JOSE header",
        INVALID_TOKEN,
        |fx| {
            let mut header =
                format!(r#"{{"alg":"HS256","typ":"?","kid":"{}"}}"#, fx.user_kid).into_bytes();
            let at = header.iter().position(|&b| b == b'?').unwrap();
            header[at] = 0xff;
            let claims = fx.user_claims().to_string();
            bearer(sign_raw(&header, claims.as_bytes(), fx.user_secret()))
        },
    );
    for (label, header) in headers {
        t.add(
            format!("header: {label}"),
            "signed with the user secret",
            INVALID_TOKEN,
            move |fx| {
                let claims = fx.user_claims().to_string();
                bearer(sign_raw(
                    header(fx).as_bytes(),
                    claims.as_bytes(),
                    fx.user_secret(),
                ))
            },
        );
    }
    t
}
