//! External issuers' access tokens (OpenID Connect): algorithm confusion with a provider's
//! public key, keys of the other issuer, `jku`/`x5u`/`jwk` naming the attacker's keys, issuers
//! nobody configured, explicit typing, the cookie, and keys too old to trust.
//!
//! The harness configures the two issuers of [`crate::idp`]; a token whose `iss` names one is
//! that issuer's, and only that issuer's keys verify it.

use serde_json::{Value, json};

use crate::case::*;
use crate::fixture::Fixture;
use crate::idp::*;
use crate::jws::*;

/// An edit of a header or of claims.
type Edit = fn(&mut Value);
/// Bytes derived from the issuers' keys.
type Derived = fn(&Idps) -> Vec<u8>;

/// Both issuers' keys fresh (fetched once, at start; the clock stopped since).
pub fn external_issuers(idps: Idps) -> Table {
    let mut t = Table::default();
    controls(&mut t, idps);
    algorithm_confusion(&mut t, idps);
    cross_issuer(&mut t, idps);
    attacker_keys(&mut t, idps);
    unknown_issuers(&mut t, idps);
    claims_and_carriers(&mut t, idps);
    t
}

fn controls(t: &mut Table, idps: Idps) {
    t.add(
        "control: A's token",
        "RS256, A's kid, iss A: the token every forgery below starts from",
        IDP_A,
        move |fx| bearer(idps.token_a(fx)),
    );
    t.add(
        "control: A's token typed at+jwt",
        "RFC 9068 explicit typing",
        IDP_A,
        move |fx| bearer(idps.a_forged(fx, Key::A, |h, _| h["typ"] = json!("at+jwt"))),
    );
    t.add(
        "control: A's token without typ",
        "typ is optional unless the issuer requires at+jwt",
        IDP_A,
        move |fx| bearer(idps.a_forged(fx, Key::A, |h, _| remove(h, "typ"))),
    );
    t.add(
        "control: B's token",
        "ES256, B's kid, iss B, a service client, aud an array",
        IDP_B,
        move |fx| bearer(idps.token_b(fx)),
    );
    t.add(
        "control: our own access token beside the issuers",
        "configuring issuers changes nothing for our tokens",
        ALICE,
        |fx| bearer(&fx.alice),
    );
    t.add(
        "control: our own access token in the access cookie",
        "",
        ALICE,
        |fx| access_cookie(&fx.alice),
    );
    t.add(
        "control: A's token with jku and x5u naming the attacker, signed by A",
        "the headers are ignored, not refused: what is refused below is the attacker's key",
        IDP_A,
        move |fx| {
            bearer(idps.a_forged(fx, Key::A, |h, _| {
                h["jku"] = json!(ATTACKER_JWKS);
                h["x5u"] = json!(ATTACKER_X5U);
            }))
        },
    );
}

/// HS256 keyed with A's public key in every form an attacker can get it in.
fn algorithm_confusion(t: &mut Table, idps: Idps) {
    let hs256_a = json!({"alg": "HS256", "typ": "JWT", "kid": KID_A});
    let secrets: Vec<(&str, Derived)> = vec![
        ("A's public key PEM", |i| i.a_public.to_vec()),
        ("A's public key PEM without its final newline", |i| {
            i.a_public.trim_ascii_end().to_vec()
        }),
        ("A's public key DER", |i| i.a_public_der()),
        ("A's JWK modulus n", |i| {
            unb64url(i.jwk(Key::A)["n"].as_str().unwrap())
        }),
        ("A's JWK as JSON text", |i| {
            i.jwk(Key::A).to_string().into_bytes()
        }),
        ("A's JWKS document", |i| i.jwks(Key::A)),
    ];
    for (label, secret) in secrets {
        let header = hs256_a.clone();
        t.add(
            format!("HS256 keyed with {label}, A's kid, iss A"),
            "the classic algorithm confusion: a provider's public key as an HMAC secret",
            INVALID_TOKEN,
            move |fx| bearer(sign(&header, &Idps::claims_a(fx), &secret(&idps))),
        );
    }
    t.add(
        "HS256 keyed with A's public key PEM, no kid, iss A",
        "no kid to pick a key by: still never HMAC",
        INVALID_TOKEN,
        move |fx| {
            let header = json!({"alg": "HS256", "typ": "JWT"});
            bearer(sign(&header, &Idps::claims_a(fx), idps.a_public))
        },
    );
    t.add(
        "HS256 keyed with our user secret, A's kid, iss A",
        "our HS256 secret is not a key of an external issuer",
        INVALID_TOKEN,
        move |fx| bearer(sign(&hs256_a, &Idps::claims_a(fx), fx.user_secret())),
    );
    t.add(
        "A's real token re-headed as HS256, signature kept",
        "a valid RSA signature under a header claiming HMAC",
        INVALID_TOKEN,
        move |fx| {
            let token = idps.token_a(fx);
            let mut header = part(&token, 0);
            header["alg"] = json!("HS256");
            bearer(reheaded(&token, &header))
        },
    );
    for alg in ["PS256", "RS512", "EdDSA", "rs256"] {
        t.add(
            format!("A's real token re-headed as {alg}, signature kept"),
            "an algorithm A does not accept (or no exact JOSE name)",
            INVALID_TOKEN,
            move |fx| {
                let token = idps.token_a(fx);
                let mut header = part(&token, 0);
                header["alg"] = json!(alg);
                bearer(reheaded(&token, &header))
            },
        );
    }
    for casing in ["none", "None", "NONE"] {
        t.add(
            format!("alg {casing:?}, A's kid, iss A, empty signature"),
            "an unsigned token of A",
            INVALID_TOKEN,
            move |fx| {
                let header = json!({"alg": casing, "typ": "JWT", "kid": KID_A});
                bearer(unsigned(&header, &Idps::claims_a(fx)))
            },
        );
    }
    t.add(
        "alg none, iss A, no signature segment",
        "header.payload",
        INVALID_TOKEN,
        move |fx| {
            let token = unsigned(&json!({"alg": "none"}), &Idps::claims_a(fx));
            bearer(token.trim_end_matches('.'))
        },
    );
    t.add(
        "alg none, A's kid, A's real RS256 signature kept",
        "a token that verifies under A's key but declares alg none",
        INVALID_TOKEN,
        move |fx| {
            let token = idps.token_a(fx);
            bearer(reheaded(&token, &json!({"alg": "none", "kid": KID_A})))
        },
    );
}

/// One issuer's token naming, or signed by, the other issuer's key.
fn cross_issuer(t: &mut Table, idps: Idps) {
    t.add(
        "iss A, B's kid, ES256 signed by B",
        "A accepts ES256 but does not hold B's key",
        INVALID_TOKEN,
        move |fx| bearer(idps.sign(&Idps::header(Key::B), &Idps::claims_a(fx), Key::B)),
    );
    t.add(
        "iss A, no kid, ES256 signed by B",
        "A's only key is RSA: no key fits",
        INVALID_TOKEN,
        move |fx| {
            let mut header = Idps::header(Key::B);
            remove(&mut header, "kid");
            bearer(idps.sign(&header, &Idps::claims_a(fx), Key::B))
        },
    );
    t.add(
        "iss A, A's kid, ES256 signed by B",
        "A's key is RSA (alg RS256): it verifies no ES256 signature",
        INVALID_TOKEN,
        move |fx| {
            let header = json!({"alg": "ES256", "typ": "JWT", "kid": KID_A});
            bearer(idps.sign(&header, &Idps::claims_a(fx), Key::B))
        },
    );
    t.add(
        "iss B, A's kid, RS256 signed by A",
        "B accepts ES256 only, and holds no RSA key",
        INVALID_TOKEN,
        move |fx| {
            let mut claims = Idps::claims_b(fx);
            claims["org"] = json!(fx.org);
            bearer(idps.sign(&Idps::header(Key::A), &claims, Key::A))
        },
    );
    t.add(
        "iss B, B's kid, A's real token's claims re-issued by B",
        "B vouching for A's user is B's token, never A's actor",
        IDP_B,
        move |fx| {
            let mut claims = Idps::claims_a(fx);
            claims["iss"] = json!(ISSUER_B);
            claims["sub"] = json!(SUBJECT_B);
            bearer(idps.sign(&Idps::header(Key::B), &claims, Key::B))
        },
    );
    t.add(
        "A's real token with iss changed to B, signature kept",
        "the payload no longer matches A's signature, and B's keys never made it",
        INVALID_TOKEN,
        move |fx| {
            let token = idps.token_a(fx);
            let mut claims = part(&token, 1);
            claims["iss"] = json!(ISSUER_B);
            bearer(with_seg(&token, 1, |_| {
                b64url(claims.to_string().as_bytes())
            }))
        },
    );
}

/// `jku`, `x5u` and `jwk` naming the attacker's keys: never read, never fetched.
fn attacker_keys(t: &mut Table, idps: Idps) {
    let headers: Vec<(&str, Edit)> = vec![
        ("jku naming the attacker's JWKS", |h| {
            h["jku"] = json!(ATTACKER_JWKS)
        }),
        ("x5u naming the attacker's certificate", |h| {
            h["x5u"] = json!(ATTACKER_X5U)
        }),
        ("jku and x5u naming the attacker", |h| {
            h["jku"] = json!(ATTACKER_JWKS);
            h["x5u"] = json!(ATTACKER_X5U);
        }),
    ];
    for (label, edit) in headers {
        t.add(
            format!("{label}, the attacker's kid, signed by the attacker"),
            "a kid A does not hold: A's own keys are refetched (once), never the attacker's",
            INVALID_TOKEN,
            move |fx| {
                bearer(idps.a_forged(fx, Key::Attacker, |h, _| {
                    h["kid"] = json!(KID_ATTACKER);
                    edit(h);
                }))
            },
        );
        t.add(
            format!("{label}, A's kid, signed by the attacker"),
            "A's kid picks A's key, which the attacker's signature does not verify under",
            INVALID_TOKEN,
            move |fx| bearer(idps.a_forged(fx, Key::Attacker, |h, _| edit(h))),
        );
    }
    t.add(
        "jwk embedding the attacker's public key, the attacker's kid, signed by the attacker",
        "an embedded key is never used",
        INVALID_TOKEN,
        move |fx| {
            let jwk = idps.jwk(Key::Attacker);
            bearer(idps.a_forged(fx, Key::Attacker, |h, _| {
                h["kid"] = json!(KID_ATTACKER);
                h["jwk"] = jwk;
            }))
        },
    );
    t.add(
        "jwk embedding the attacker's public key, no kid, signed by the attacker",
        "no kid: A's one RSA key is tried, never the embedded one",
        INVALID_TOKEN,
        move |fx| {
            let jwk = idps.jwk(Key::Attacker);
            bearer(idps.a_forged(fx, Key::Attacker, |h, _| {
                remove(h, "kid");
                h["jwk"] = jwk;
            }))
        },
    );
    t.add(
        "A's kid, signed by the attacker, no key header",
        "the plain forgery the ones above dress up",
        INVALID_TOKEN,
        move |fx| bearer(idps.a_forged(fx, Key::Attacker, |_, _| {})),
    );
}

/// `iss` values that are not exactly a configured issuer: the token is then ours, and ours
/// refuse it.
fn unknown_issuers(t: &mut Table, idps: Idps) {
    t.add(
        "iss an unconfigured issuer, signed by the attacker, its kid",
        "an issuer nobody configured: our verifier refuses a foreign token",
        INVALID_TOKEN,
        move |fx| {
            let header = Idps::header(Key::Attacker);
            let mut claims = Idps::claims_a(fx);
            claims["iss"] = json!(ISSUER_UNKNOWN);
            bearer(idps.sign(&header, &claims, Key::Attacker))
        },
    );
    t.add(
        "iss an unconfigured issuer, jku naming the attacker's JWKS",
        "nothing is fetched for an unknown issuer",
        INVALID_TOKEN,
        move |fx| {
            let mut header = Idps::header(Key::Attacker);
            header["jku"] = json!(ATTACKER_JWKS);
            let mut claims = Idps::claims_a(fx);
            claims["iss"] = json!(ISSUER_UNKNOWN);
            bearer(idps.sign(&header, &claims, Key::Attacker))
        },
    );
    let near_misses: Vec<(&str, Value)> = vec![
        ("an unconfigured issuer", json!(ISSUER_UNKNOWN)),
        ("A with a trailing slash", json!(format!("{ISSUER_A}/"))),
        ("A upper-cased", json!(ISSUER_A.to_ascii_uppercase())),
        (
            "A over plain http",
            json!(ISSUER_A.replace("https", "http")),
        ),
        ("A with a trailing space", json!(format!("{ISSUER_A} "))),
        ("A as an array", json!([ISSUER_A])),
        ("null", Value::Null),
        ("our own issuer", json!("portcullis")),
    ];
    for (label, iss) in near_misses {
        t.add(
            format!("iss {label}, otherwise A's token, signed by A"),
            "only the exact configured iss routes to A",
            INVALID_TOKEN,
            move |fx| {
                let iss = iss.clone();
                bearer(idps.a_forged(fx, Key::A, |_, c| c["iss"] = iss))
            },
        );
    }
    t.add(
        "no iss, otherwise A's token, signed by A",
        "",
        INVALID_TOKEN,
        move |fx| bearer(idps.a_forged(fx, Key::A, |_, c| remove(c, "iss"))),
    );
    for (label, first, second) in [
        ("an unconfigured issuer, then A", ISSUER_UNKNOWN, ISSUER_A),
        ("A, then an unconfigured issuer", ISSUER_A, ISSUER_UNKNOWN),
    ] {
        t.add(
            format!("iss twice: {label}, signed by A"),
            "a duplicate member: routing and verification must not read different ones",
            INVALID_TOKEN,
            move |fx| {
                let mut claims = Idps::claims_a(fx);
                remove(&mut claims, "iss");
                let rest = claims.to_string();
                let raw = format!(r#"{{"iss":"{first}","iss":"{second}",{}"#, &rest[1..]);
                let header = Idps::header(Key::A).to_string();
                bearer(idps.sign_raw(header.as_bytes(), raw.as_bytes(), Key::A))
            },
        );
    }
}

/// Typing, registered claims, the mapping's claims, and where the token is presented.
fn claims_and_carriers(t: &mut Table, idps: Idps) {
    for typ in ["logout+jwt", "application/logout+jwt", "LOGOUT+JWT"] {
        t.add(
            format!("A's token typed {typ:?}, signed by A"),
            "a valid signature on a token of another kind (RFC 8417 back-channel logout)",
            WRONG_TOKEN_TYPE,
            move |fx| bearer(idps.a_forged(fx, Key::A, |h, _| h["typ"] = json!(typ))),
        );
    }
    t.add(
        "A's token expired, signed by A",
        "exp past, leeway included",
        TOKEN_EXPIRED,
        move |fx| {
            bearer(idps.a_forged(fx, Key::A, |_, c| {
                c["iat"] = json!(fx.now() - 3600);
                c["exp"] = json!(fx.now() - fx.leeway - 1);
            }))
        },
    );
    let edits: Vec<(&str, Edit)> = vec![
        ("for another audience", |c| c["aud"] = json!("another-api")),
        ("without aud", |c| remove(c, "aud")),
        ("without exp", |c| remove(c, "exp")),
        ("without sub", |c| remove(c, "sub")),
        ("with an empty sub", |c| c["sub"] = json!("")),
        ("without the org claim", |c| remove(c, ORG_CLAIM)),
        ("with a numeric org claim", |c| c[ORG_CLAIM] = json!(7)),
    ];
    for (label, edit) in edits {
        t.add(
            format!("A's token {label}, signed by A"),
            "a valid signature over claims the verifier or the mapping refuses",
            INVALID_TOKEN,
            move |fx| bearer(idps.a_forged(fx, Key::A, |_, c| edit(c))),
        );
    }
    t.add(
        "A's token with a flipped signature character",
        "",
        INVALID_TOKEN,
        move |fx| {
            let token = idps.token_a(fx);
            bearer(with_seg(&token, 2, |s| flip_at(s, 10)))
        },
    );
    t.add(
        "A's token in the access cookie",
        "cookies carry only our own tokens: an external one there is a foreign token",
        INVALID_TOKEN,
        move |fx| access_cookie(idps.token_a(fx)),
    );
    t.add(
        "B's token in the access cookie",
        "",
        INVALID_TOKEN,
        move |fx| access_cookie(idps.token_b(fx)),
    );
}

/// A's keys last fetched longer ago than its `max_key_age_secs`, A down; B's keys fresh.
pub fn expired_keys(idps: Idps) -> Table {
    let mut t = Table::default();
    t.add(
        "A's valid token, A's keys too old",
        "fail closed: keys that cannot be refreshed are no longer trusted",
        UNAVAILABLE,
        move |fx| bearer(idps.token_a(fx)),
    );
    t.add(
        "the attacker's kid, A's keys too old",
        "no refetch is attempted through the request either",
        UNAVAILABLE,
        move |fx| {
            bearer(idps.a_forged(fx, Key::Attacker, |h, _| {
                h["kid"] = json!(KID_ATTACKER);
                h["jku"] = json!(ATTACKER_JWKS);
            }))
        },
    );
    t.add(
        "HS256 keyed with A's public key PEM, A's keys too old",
        "refused for its algorithm before the keys are looked at",
        INVALID_TOKEN,
        move |fx| {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": KID_A});
            bearer(sign(&header, &Idps::claims_a(fx), idps.a_public))
        },
    );
    t.add(
        "A's token typed logout+jwt, A's keys too old",
        "refused for its type before the keys are looked at",
        WRONG_TOKEN_TYPE,
        move |fx| bearer(idps.a_forged(fx, Key::A, |h, _| h["typ"] = json!("logout+jwt"))),
    );
    t.add(
        "A's token in the access cookie, A's keys too old",
        "a cookie never reaches A's keys",
        INVALID_TOKEN,
        move |fx| access_cookie(idps.token_a(fx)),
    );
    t.add(
        "control: B's token (B's keys fresh)",
        "one issuer's stale keys do not affect another",
        IDP_B,
        move |fx| bearer(idps.token_b(fx)),
    );
    t.add(
        "control: our own access token",
        "nor our own tokens",
        ALICE,
        |fx: &Fixture| bearer(&fx.alice),
    );
    t
}
