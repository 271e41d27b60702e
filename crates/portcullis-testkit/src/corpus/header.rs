//! The JOSE header: `alg: none`, algorithm confusion, `kid` injection, `crit`.

use serde_json::{Value, json};

use crate::case::*;
use crate::fixture::{Alg, Fixture};
use crate::jws::*;

const NONE_CASINGS: [&str; 6] = ["none", "None", "NONE", "nOnE", "NoNe", "nONE"];

/// `alg: none` in every casing and disguise, with and without a signature.
pub fn alg_none() -> Table {
    let mut t = Table::default();
    t.add(
        "control: the valid access token",
        "the token every forgery below starts from",
        ALICE,
        |fx| bearer(&fx.alice),
    );
    t.add(
        "control: hand-signed access token",
        "the forging machinery, no defect",
        ALICE,
        |fx| bearer(fx.user_forged(|_, _| {})),
    );
    for casing in NONE_CASINGS {
        t.add(
            format!("alg {casing:?}, empty signature"),
            "unsigned token: header.payload.",
            INVALID_TOKEN,
            move |fx| {
                bearer(unsigned(
                    &json!({"alg": casing, "typ": "JWT"}),
                    &fx.user_claims(),
                ))
            },
        );
        t.add(
            format!("alg {casing:?}, kid of the ring, empty signature"),
            "an unsigned token naming our key",
            INVALID_TOKEN,
            move |fx| {
                bearer(unsigned(
                    &json!({"alg": casing, "typ": "JWT", "kid": fx.user_kid}),
                    &fx.user_claims(),
                ))
            },
        );
        t.add(
            format!("alg {casing:?}, valid HMAC signature kept"),
            "a token that verifies under our key but declares alg none",
            INVALID_TOKEN,
            move |fx| {
                bearer(fx.user_forged(|h, _| {
                    h["alg"] = json!(casing);
                }))
            },
        );
        t.add(
            format!("alg {casing:?}, no signature segment"),
            "header.payload, two segments",
            INVALID_TOKEN,
            move |fx| {
                let token = unsigned(&json!({"alg": casing}), &fx.user_claims());
                bearer(token.trim_end_matches('.'))
            },
        );
        t.add(
            format!("alg {casing:?}, kid of the ring, no signature segment"),
            "header.payload naming our key",
            INVALID_TOKEN,
            move |fx| {
                let token = unsigned(
                    &json!({"alg": casing, "kid": fx.user_kid}),
                    &fx.user_claims(),
                );
                bearer(token.trim_end_matches('.'))
            },
        );
        t.add(
            format!("alg {casing:?}, agent run token, empty signature"),
            "an unsigned agent token",
            INVALID_TOKEN,
            move |fx| {
                bearer(unsigned(
                    &json!({"alg": casing, "typ": "JWT", "kid": fx.agent_kid}),
                    &fx.agent_claims(),
                ))
            },
        );
        t.add(
            format!("alg {casing:?} in the access cookie"),
            "an unsigned token as the cookie",
            INVALID_TOKEN,
            move |fx| access_cookie(unsigned(&json!({"alg": casing}), &fx.user_claims())),
        );
    }
    for (name, alg) in [
        ("alg \"none \" (trailing space)", json!("none ")),
        ("alg \"\" (empty)", json!("")),
        ("alg null", Value::Null),
        ("alg 0", json!(0)),
        ("alg [\"none\"]", json!(["none"])),
    ] {
        t.add(
            name,
            "an alg that is none in disguise or no alg at all",
            INVALID_TOKEN,
            move |fx| {
                let alg = alg.clone();
                bearer(fx.user_forged(move |h, _| h["alg"] = alg))
            },
        );
    }
    t.add(
        "alg member missing",
        "a header without alg",
        INVALID_TOKEN,
        |fx| {
            bearer(fx.user_forged(|h, _| {
                h.as_object_mut().unwrap().remove("alg");
            }))
        },
    );
    t
}

/// HS256 ring: tokens claiming an asymmetric (or unsupported) algorithm.
pub fn confusion_against_hs256() -> Table {
    let mut t = Table::default();
    t.add("control: the valid HS256 token", "", ALICE, |fx| {
        bearer(&fx.alice)
    });
    t.add(
        "control: the access token in the access cookie",
        "",
        ALICE,
        |fx| access_cookie(&fx.alice),
    );
    for alg in ["RS256", "EdDSA", "ES256"] {
        t.add(
            format!("claims {alg}, HMAC-signed with the user secret, our kid"),
            "the right MAC under an algorithm the key does not have",
            INVALID_TOKEN,
            move |fx| bearer(fx.user_forged(|h, _| h["alg"] = json!(alg))),
        );
        t.add(
            format!("claims {alg}, HMAC-signed with the user secret, no kid"),
            "tried against the active (HS256) key, which refuses the algorithm",
            INVALID_TOKEN,
            move |fx| {
                bearer(fx.user_forged(|h, _| {
                    h["alg"] = json!(alg);
                    h.as_object_mut().unwrap().remove("kid");
                }))
            },
        );
    }
    // The same attack with a genuine RS256/EdDSA/ES256 signature needs the token API to sign:
    // the tower harness adds those cases (adversarial.rs, `confusion_with_real_signatures`).
    for alg in [
        "HS384", "HS512", "RS512", "PS256", "ES384", "hs256", "Hs256", "HS256 ",
    ] {
        t.add(
            format!("claims unsupported alg {alg:?}, HMAC-signed with the user secret"),
            "only the exact JOSE names of the four supported algorithms",
            INVALID_TOKEN,
            move |fx| bearer(fx.user_forged(|h, _| h["alg"] = json!(alg))),
        );
    }
    t.add(
        "agent token claiming RS256, HMAC-signed with the agent secret",
        "confusion on the agent ring",
        INVALID_TOKEN,
        |fx| bearer(fx.agent_forged(|h, _| h["alg"] = json!("RS256"))),
    );
    t
}

/// An asymmetric ring: its public key used as an HMAC secret.
pub fn confusion_against_asymmetric() -> Table {
    let mut t = Table::default();
    t.add(
        "control: the ring's own token",
        "signed by the ring's private key",
        ALICE,
        |fx| bearer(&fx.alice),
    );
    t.add(
        "control: the agent ring is still HS256",
        "the user ring's algorithm does not change the agents'",
        AGENT,
        |fx| bearer(&fx.run),
    );
    let public = |fx: &Fixture| fx.public_pem.unwrap();
    t.add(
        "HS256 signed with the public key PEM, the ring's kid",
        "the classic algorithm-confusion attack",
        INVALID_TOKEN,
        move |fx| {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.user_kid});
            bearer(sign(&header, &fx.user_claims(), public(fx)))
        },
    );
    t.add(
        "HS256 signed with the public key PEM without its final newline, the ring's kid",
        "the PEM as commonly copied",
        INVALID_TOKEN,
        move |fx| {
            let pem = public(fx);
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.user_kid});
            bearer(sign(&header, &fx.user_claims(), pem.trim_ascii_end()))
        },
    );
    t.add(
        "HS256 signed with the public key PEM, no kid",
        "tried against the active key, which is asymmetric",
        INVALID_TOKEN,
        move |fx| {
            bearer(sign(
                &json!({"alg": "HS256", "typ": "JWT"}),
                &fx.user_claims(),
                public(fx),
            ))
        },
    );
    t.add(
        "HS256 signed with the public key PEM, the ring's header bytes re-headed",
        "the ring's exact header with alg swapped",
        INVALID_TOKEN,
        move |fx| {
            let mut header = part(&fx.alice, 0);
            header["alg"] = json!("HS256");
            bearer(sign(&header, &fx.user_claims(), public(fx)))
        },
    );
    t.add(
        "the ring's real token re-headed as HS256, signature kept",
        "a valid asymmetric signature under a header claiming HMAC",
        INVALID_TOKEN,
        |fx| {
            let mut header = part(&fx.alice, 0);
            header["alg"] = json!("HS256");
            bearer(reheaded(&fx.alice, &header))
        },
    );
    t.add(
        "the ring's real token re-headed with another asymmetric alg",
        "RS256 ⇄ EdDSA ⇄ ES256",
        INVALID_TOKEN,
        |fx| {
            let other = if fx.ring == Alg::Rs256 {
                "EdDSA"
            } else {
                "RS256"
            };
            let mut header = part(&fx.alice, 0);
            header["alg"] = json!(other);
            bearer(reheaded(&fx.alice, &header))
        },
    );
    t.add(
        "HS256 signed with the JWK as secret, the ring's kid",
        "the published JWK's text as an HMAC key",
        INVALID_TOKEN,
        |fx| {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.user_kid});
            let jwk = fx.jwk.as_ref().unwrap().to_string();
            bearer(sign(&header, &fx.user_claims(), jwk.as_bytes()))
        },
    );
    t.add(
        "HS256 signed with the JWK's key material as secret",
        "its modulus (RSA) or point (OKP, EC) as an HMAC key",
        INVALID_TOKEN,
        |fx| {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.user_kid});
            let jwk = fx.jwk.as_ref().unwrap();
            let material = unb64url(jwk["n"].as_str().or(jwk["x"].as_str()).unwrap());
            bearer(sign(&header, &fx.user_claims(), &material))
        },
    );
    t.add(
        "HS256 signed with the user secret the config also holds, the ring's kid",
        "the configured HS256 secret is not a key of an asymmetric ring",
        INVALID_TOKEN,
        |fx| {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.user_kid});
            bearer(sign(&header, &fx.user_claims(), fx.user_secret()))
        },
    )
    .only(
        Side::Tower,
        "the sample server configures no HS256 user secret beside an asymmetric key",
    );
    t.add("alg none with the ring's kid", "", INVALID_TOKEN, |fx| {
        bearer(unsigned(
            &json!({"alg": "none", "kid": fx.user_kid}),
            &fx.user_claims(),
        ))
    });
    t
}

/// `kid` values that try paths, SQL, NUL bytes, sizes and types; kids of the other family.
pub fn kid_injection() -> Table {
    let mut t = Table::default();
    t.add("control: the user kid, hand-signed", "", ALICE, |fx| {
        bearer(fx.user_forged(|_, _| {}))
    });
    t.add("control: the agent kid, hand-signed", "", AGENT, |fx| {
        bearer(fx.agent_forged(|_, _| {}))
    });
    let kids: Vec<(&str, Value)> = vec![
        ("path traversal", json!("../../etc/passwd")),
        ("absolute path", json!("/dev/null")),
        (
            "path traversal after our kid",
            json!("KID/../../../etc/passwd"),
        ),
        ("SQL injection", json!("' OR 1=1 --")),
        ("SQL injection after our kid", json!("KID' OR '1'='1")),
        ("a NUL byte", json!("\u{0}")),
        ("our kid and a NUL byte", json!("KID\u{0}")),
        ("a NUL byte and our kid", json!("\u{0}KID")),
        ("5 000 characters", json!("k".repeat(5000))),
        (
            "our kid padded to 5 000 characters",
            json!("KID".to_owned() + &" ".repeat(5000)),
        ),
        ("non-ASCII", json!("ключ-🔑-clé")),
        ("non-ASCII, emoji last", json!("ключ-🔑")),
        ("our kid with a non-ASCII suffix", json!("KID\u{e9}")),
        ("empty", json!("")),
        ("our kid re-cased", json!("KID-UPPER")),
        ("our kid with a trailing space", json!("KID ")),
        ("a URL", json!("https://evil.example/jwks.json")),
        ("a number", json!(1)),
        ("an array", json!(["KID"])),
        ("an object", json!({"kid": "KID"})),
    ];
    for (label, kid) in kids {
        let kid2 = kid.clone();
        t.add(
            format!("user token, kid {label}"),
            "signed with the user secret: the kid picks the key, never the active one",
            INVALID_TOKEN,
            move |fx| {
                let kid = with_kid(&kid, &fx.user_kid);
                bearer(fx.user_forged(|h, _| h["kid"] = kid))
            },
        );
        t.add(
            format!("agent token, kid {label}"),
            "signed with the agent secret",
            INVALID_TOKEN,
            move |fx| {
                let kid = with_kid(&kid2, &fx.agent_kid);
                bearer(fx.agent_forged(|h, _| h["kid"] = kid))
            },
        );
    }
    t.add(
        "user token under the agent kid",
        "signed with the user secret, naming the agent key",
        INVALID_TOKEN,
        |fx| bearer(fx.user_forged(|h, _| h["kid"] = json!(fx.agent_kid))),
    );
    t.add(
        "agent token under the user kid",
        "signed with the agent secret, naming the user key",
        INVALID_TOKEN,
        |fx| bearer(fx.agent_forged(|h, _| h["kid"] = json!(fx.user_kid))),
    );
    t.add(
        "kid injection in the access cookie",
        "",
        INVALID_TOKEN,
        |fx| access_cookie(fx.user_forged(|h, _| h["kid"] = json!("../../etc/passwd"))),
    );
    t
}

/// `kid` with `KID` replaced by `ours` (and `KID-UPPER` by `ours` upper-cased).
fn with_kid(kid: &Value, ours: &str) -> Value {
    let replace = |s: &str| {
        s.replace("KID-UPPER", &ours.to_ascii_uppercase())
            .replace("KID", ours)
    };
    match kid {
        Value::String(s) => Value::String(replace(s)),
        Value::Array(a) => Value::Array(a.iter().map(|v| with_kid(v, ours)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), with_kid(v, ours)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A JSON member to set (`None`: no change).
pub(crate) type Member = Option<(&'static str, Value)>;

/// `crit` in every shape: we implement no extension, so every one is refused.
pub fn unknown_crit() -> Table {
    let mut t = Table::default();
    t.add(
        "control: an unknown non-critical header member",
        "unknown members are ignored (RFC 7515 §4)",
        ALICE,
        |fx| bearer(fx.user_forged(|h, _| h["x-custom"] = json!(true))),
    );
    let crits: Vec<(&str, Value, Member)> = vec![
        ("[\"exp\"]", json!(["exp"]), None),
        (
            "[\"x-custom\"] with x-custom present",
            json!(["x-custom"]),
            Some(("x-custom", json!(true))),
        ),
        (
            "[\"b64\"] with b64 false (RFC 7797)",
            json!(["b64"]),
            Some(("b64", json!(false))),
        ),
        (
            "[\"b64\"] with b64 true",
            json!(["b64"]),
            Some(("b64", json!(true))),
        ),
        ("[\"b64\"] without b64", json!(["b64"]), None),
        ("[] (empty, forbidden by RFC 7515)", json!([]), None),
        ("\"exp\" (a string, not an array)", json!("exp"), None),
        ("an object", json!({"exp": true}), None),
        ("[1]", json!([1]), None),
    ];
    for (label, crit, extra) in crits {
        let extra2 = extra.clone();
        let crit2 = crit.clone();
        t.add(
            format!("user token, crit {label}"),
            "we implement no extension, so any crit is refused",
            INVALID_TOKEN,
            move |fx| {
                let (crit, extra) = (crit.clone(), extra.clone());
                bearer(fx.user_forged(move |h, _| {
                    h["crit"] = crit;
                    if let Some((k, v)) = extra {
                        h[k] = v;
                    }
                }))
            },
        );
        t.add(
            format!("agent token, crit {label}"),
            "",
            INVALID_TOKEN,
            move |fx| {
                let (crit, extra) = (crit2.clone(), extra2.clone());
                bearer(fx.agent_forged(move |h, _| {
                    h["crit"] = crit;
                    if let Some((k, v)) = extra {
                        h[k] = v;
                    }
                }))
            },
        );
    }
    t.add("crit in the access cookie", "", INVALID_TOKEN, |fx| {
        access_cookie(fx.user_forged(|h, _| h["crit"] = json!(["exp"])))
    });
    t
}
