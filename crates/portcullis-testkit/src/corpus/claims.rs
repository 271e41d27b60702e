//! The claims: time claims, `iss`/`aud`/`type` and required members, token kinds and families.

use serde_json::{Value, json};

use super::header::Member;
use crate::case::*;
use crate::jws::*;

/// What a time-claim value must give.
#[derive(Clone, Copy)]
enum Outcome {
    /// Accepted: the token's actor.
    Ok,
    /// Refused with this want.
    No(Want),
}

/// A time-claim value from the verifier's time and leeway (`None`: the claim is removed).
type TimeValue = fn(u64, u64) -> Option<Value>;

/// Whether a row sits one second from a boundary: on a running clock it would flip.
const ON_THE_EDGE: bool = true;

/// `exp`, `nbf` and `iat` missing, of every wrong type, absurd, and at the edges of the leeway.
pub fn time_claims() -> Table {
    use Outcome::{No, Ok};
    let bad = No(INVALID_TOKEN);
    let expired = No(TOKEN_EXPIRED);
    // Wrong types and absurd values refused for all three claims.
    let shared: Vec<(&str, TimeValue)> = vec![
        ("a numeric string", |now, _| {
            Some(json!((now + 600).to_string()))
        }),
        ("a date string", |_, _| Some(json!("2030-01-01T00:00:00Z"))),
        ("a bool", |_, _| Some(json!(true))),
        ("an object", |now, _| Some(json!({"$date": now + 600}))),
        ("an array", |now, _| Some(json!([now + 600]))),
        ("negative", |now, _| Some(json!(-((now + 600) as i64)))),
        ("-1", |_, _| Some(json!(-1))),
        ("1e300", |_, _| Some(json!(1e300))),
        ("2^64 as a float", |_, _| {
            Some(json!(18_446_744_073_709_551_616.0_f64))
        }),
        ("i64::MIN", |_, _| Some(json!(i64::MIN))),
    ];
    let exp: Vec<(&str, TimeValue, Outcome, bool)> = vec![
        ("missing", |_, _| None, bad, false),
        ("null", |_, _| Some(Value::Null), bad, false),
        ("0", |_, _| Some(json!(0)), expired, false),
        ("1", |_, _| Some(json!(1)), expired, false),
        ("u64::MAX", |_, _| Some(json!(u64::MAX)), Ok, false),
        (
            "a fraction in the future",
            |now, _| Some(json!(now as f64 + 600.5)),
            Ok,
            false,
        ),
        (
            "a fraction in the past",
            |now, _| Some(json!(now as f64 - 3600.5)),
            expired,
            false,
        ),
        (
            "an hour ago",
            |now, _| Some(json!(now - 3600)),
            expired,
            false,
        ),
        (
            "exactly the leeway ago",
            |now, leeway| Some(json!(now - leeway)),
            expired,
            false,
        ),
        (
            "one second inside the leeway",
            |now, leeway| Some(json!(now - leeway + 1)),
            Ok,
            ON_THE_EDGE,
        ),
    ];
    let not_before: Vec<(&str, TimeValue, Outcome, bool)> = vec![
        ("missing", |_, _| None, Ok, false),
        ("0", |_, _| Some(json!(0)), Ok, false),
        ("1", |_, _| Some(json!(1)), Ok, false),
        ("u64::MAX", |_, _| Some(json!(u64::MAX)), bad, false),
        (
            "a fraction in the past",
            |now, _| Some(json!(now as f64 - 0.5)),
            Ok,
            false,
        ),
        (
            "exactly the leeway ahead",
            |now, leeway| Some(json!(now + leeway)),
            Ok,
            false,
        ),
        (
            "one second past the leeway ahead",
            |now, leeway| Some(json!(now + leeway + 1)),
            bad,
            ON_THE_EDGE,
        ),
        (
            "a year ahead",
            |now, _| Some(json!(now + 365 * 24 * 3600)),
            bad,
            false,
        ),
    ];
    let mut t = Table::default();
    for family in ["user", "agent"] {
        let accepted = if family == "user" { ALICE } else { AGENT };
        t.add(
            format!("control: {family} token, hand-signed"),
            "",
            accepted,
            move |fx| bearer(fx.family_with(family, |_| {})),
        );
        for claim in ["exp", "nbf", "iat"] {
            let specific = if claim == "exp" { &exp } else { &not_before };
            let rows = shared
                .iter()
                .map(|&(label, v)| (label, v, bad, false))
                .chain(specific.iter().copied());
            for (label, value, outcome, on_the_edge) in rows {
                let want = match outcome {
                    Ok => accepted,
                    No(w) => w,
                };
                let case = t.add(
                    format!("{family} token, {claim} {label}"),
                    format!("{claim} {label}, everything else valid and signed"),
                    want,
                    move |fx| {
                        let value = value(fx.now(), fx.leeway);
                        bearer(fx.family_with(family, move |c| match value {
                            Some(v) => c[claim] = v,
                            None => remove(c, claim),
                        }))
                    },
                );
                if on_the_edge {
                    case.only(
                        Side::Tower,
                        "one second from the boundary: needs the stopped clock",
                    );
                }
            }
        }
    }
    t
}

/// `iss`, `aud` and `type` wrong, re-cased, mistyped or missing; required members missing.
pub fn iss_aud_type() -> Table {
    let mut t = Table::default();
    let user: Vec<(&str, Member, Want)> = vec![
        ("iss missing", Some(("iss", Value::Null)), INVALID_TOKEN),
        (
            "iss foreign",
            Some(("iss", json!("https://evil.example"))),
            INVALID_TOKEN,
        ),
        (
            "iss re-cased",
            Some(("iss", json!("Portcullis"))),
            INVALID_TOKEN,
        ),
        (
            "iss with a trailing space",
            Some(("iss", json!("portcullis "))),
            INVALID_TOKEN,
        ),
        (
            "iss an array",
            Some(("iss", json!(["portcullis"]))),
            INVALID_TOKEN,
        ),
        ("iss a number", Some(("iss", json!(1))), INVALID_TOKEN),
        ("aud missing", Some(("aud", Value::Null)), INVALID_TOKEN),
        (
            "aud the agent audience",
            Some(("aud", json!("portcullis-agents"))),
            INVALID_TOKEN,
        ),
        (
            "aud foreign",
            Some(("aud", json!("evil-api"))),
            INVALID_TOKEN,
        ),
        (
            "aud re-cased",
            Some(("aud", json!("Portcullis-API"))),
            INVALID_TOKEN,
        ),
        (
            "aud an empty array",
            Some(("aud", json!([]))),
            INVALID_TOKEN,
        ),
        (
            "aud an array of foreigners",
            Some(("aud", json!(["evil-api", "portcullis-agents"]))),
            INVALID_TOKEN,
        ),
        (
            "aud an array naming us",
            Some(("aud", json!(["evil-api", "portcullis-api"]))),
            ALICE,
        ),
        ("aud a number", Some(("aud", json!(1))), INVALID_TOKEN),
        ("type missing", Some(("type", Value::Null)), INVALID_TOKEN),
        (
            "type refresh",
            Some(("type", json!("refresh"))),
            WRONG_TOKEN_TYPE,
        ),
        (
            "type re-cased ACCESS",
            Some(("type", json!("ACCESS"))),
            WRONG_TOKEN_TYPE,
        ),
        ("type empty", Some(("type", json!(""))), WRONG_TOKEN_TYPE),
        (
            "type agent",
            Some(("type", json!("agent"))),
            WRONG_TOKEN_TYPE,
        ),
        ("type a number", Some(("type", json!(1))), INVALID_TOKEN),
        (
            "type an array",
            Some(("type", json!(["access"]))),
            INVALID_TOKEN,
        ),
        ("sub missing", Some(("sub", Value::Null)), INVALID_TOKEN),
        ("sub a number", Some(("sub", json!(1))), INVALID_TOKEN),
        ("sid missing", Some(("sid", Value::Null)), INVALID_TOKEN),
        ("jti missing", Some(("jti", Value::Null)), INVALID_TOKEN),
        (
            "org_id missing",
            Some(("org_id", Value::Null)),
            INVALID_TOKEN,
        ),
        ("role missing", Some(("role", Value::Null)), INVALID_TOKEN),
        ("control: no change", None, ALICE),
    ];
    let agent: Vec<(&str, Member, Want)> = vec![
        ("iss missing", Some(("iss", Value::Null)), INVALID_TOKEN),
        (
            "iss foreign",
            Some(("iss", json!("https://evil.example"))),
            INVALID_TOKEN,
        ),
        ("aud missing", Some(("aud", Value::Null)), INVALID_TOKEN),
        (
            "aud the user audience",
            Some(("aud", json!("portcullis-api"))),
            INVALID_TOKEN,
        ),
        (
            "aud an array naming us",
            Some(("aud", json!(["x", "portcullis-agents"]))),
            AGENT,
        ),
        (
            "type access",
            Some(("type", json!("access"))),
            WRONG_TOKEN_TYPE,
        ),
        (
            "type agent",
            Some(("type", json!("agent"))),
            WRONG_TOKEN_TYPE,
        ),
        ("sub missing", Some(("sub", Value::Null)), INVALID_TOKEN),
        (
            "company_id missing",
            Some(("company_id", Value::Null)),
            INVALID_TOKEN,
        ),
        (
            "run_id missing",
            Some(("run_id", Value::Null)),
            INVALID_TOKEN,
        ),
        // Optional on run tokens (CONTRACT.md): other orchestrators mint none.
        ("jti missing", Some(("jti", Value::Null)), AGENT),
        (
            "extra claims",
            Some(("responsible_user_id", json!({"kind": "limited"}))),
            AGENT,
        ),
        ("control: no change", None, AGENT),
    ];
    for (family, rows) in [("user", user), ("agent", agent)] {
        for (label, edit, want) in rows {
            t.add(
                format!("{family} token, {label}"),
                "signed correctly; Null means the claim is removed",
                want,
                move |fx| {
                    let edit = edit.clone();
                    bearer(fx.family_with(family, move |c| {
                        if let Some((k, v)) = edit {
                            if v.is_null() {
                                remove(c, k);
                            } else {
                                c[k] = v;
                            }
                        }
                    }))
                },
            );
        }
    }
    t
}

/// Refresh tokens as access tokens, user and agent families crossed, orgs and subjects swapped.
pub fn token_kinds() -> Table {
    let mut t = Table::default();
    t.add("control: the access token", "", ALICE, |fx| {
        bearer(&fx.alice)
    });
    t.add("control: the run token", "", AGENT, |fx| bearer(&fx.run));
    t.add(
        "refresh token as bearer",
        "a real refresh token used as an access token",
        WRONG_TOKEN_TYPE,
        |fx| bearer(&fx.refresh),
    );
    t.add(
        "refresh token as the access cookie",
        "",
        WRONG_TOKEN_TYPE,
        |fx| access_cookie(&fx.refresh),
    );
    // A user token signed with the agent secret.
    t.add(
        "user token signed with the agent secret, agent kid",
        "routed to the agent family by its kid; the user audience is not the agents'",
        INVALID_TOKEN,
        |fx| {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": fx.agent_kid});
            bearer(sign(&header, &fx.user_claims(), &fx.agent_secret))
        },
    );
    t.add(
        "user token signed with the agent secret, the agent's exact header",
        "the fast path for our own header bytes",
        INVALID_TOKEN,
        |fx| {
            bearer(sign_seg(
                seg(&fx.run, 0),
                &fx.user_claims(),
                &fx.agent_secret,
            ))
        },
    );
    t.add(
        "user token signed with the agent secret, user kid",
        "the user key does not verify it",
        INVALID_TOKEN,
        |fx| bearer(sign(&fx.user_header(), &fx.user_claims(), &fx.agent_secret)),
    );
    t.add(
        "user token signed with the agent secret, no kid",
        "routed to the user family by its type claim",
        INVALID_TOKEN,
        |fx| {
            bearer(sign(
                &json!({"alg": "HS256", "typ": "JWT"}),
                &fx.user_claims(),
                &fx.agent_secret,
            ))
        },
    );
    t.add(
        "user token signed with the agent secret, agent kid, agent iss and aud",
        "a valid agent-family token that carries a user `type`: agents carry none",
        WRONG_TOKEN_TYPE,
        |fx| {
            let mut claims = fx.user_claims();
            claims["aud"] = json!("portcullis-agents");
            bearer(sign(&fx.agent_header(), &claims, &fx.agent_secret))
        },
    );
    t.add(
        "user token signed with the agent secret, in the access cookie",
        "cookies carry user tokens only",
        INVALID_TOKEN,
        |fx| {
            access_cookie(sign(
                &fx.agent_header(),
                &fx.user_claims(),
                &fx.agent_secret,
            ))
        },
    );
    // An agent token signed with the user secret.
    t.add(
        "agent token signed with the user secret, user kid",
        "verified by the user key; the agent audience is not the users'",
        INVALID_TOKEN,
        |fx| {
            bearer(sign(
                &fx.user_header(),
                &fx.agent_claims(),
                fx.user_secret(),
            ))
        },
    );
    t.add(
        "agent token signed with the user secret, the user's exact header",
        "",
        INVALID_TOKEN,
        |fx| {
            bearer(sign_seg(
                seg(&fx.alice, 0),
                &fx.agent_claims(),
                fx.user_secret(),
            ))
        },
    );
    t.add(
        "agent token signed with the user secret, agent kid",
        "the agent key does not verify it",
        INVALID_TOKEN,
        |fx| {
            bearer(sign(
                &fx.agent_header(),
                &fx.agent_claims(),
                fx.user_secret(),
            ))
        },
    );
    t.add(
        "agent token signed with the user secret, no kid",
        "routed to the agent family (no type claim), whose key does not verify it",
        INVALID_TOKEN,
        |fx| {
            bearer(sign(
                &json!({"alg": "HS256", "typ": "JWT"}),
                &fx.agent_claims(),
                fx.user_secret(),
            ))
        },
    );
    t.add(
        "agent token signed with the user secret, user kid, user iss and aud",
        "a user-family token without `type`",
        INVALID_TOKEN,
        |fx| {
            let mut claims = fx.agent_claims();
            claims["aud"] = json!("portcullis-api");
            bearer(sign(&fx.user_header(), &claims, fx.user_secret()))
        },
    );
    t.add(
        "control: a run token minted elsewhere",
        "another orchestrator holding the agent secret: its own adapter and run",
        AGENT,
        |fx| {
            bearer(fx.agent_with(|c| {
                c["adapter_type"] = json!("process");
                c["run_id"] = json!("run-elsewhere");
                c["jti"] = json!("jti-elsewhere");
            }))
        },
    );
    t.add(
        "the real run token in the access cookie",
        "cookies carry user tokens only",
        INVALID_TOKEN,
        |fx| access_cookie(&fx.run),
    );
    // company_id.
    t.add(
        "agent token whose company_id is another org",
        "the agent lives in its org; the token names the other org",
        INVALID_TOKEN,
        |fx| {
            let other = fx.other_org.clone();
            bearer(fx.agent_with(|c| c["company_id"] = json!(other)))
        },
    );
    t.add(
        "agent token whose company_id is its org re-cased",
        "",
        INVALID_TOKEN,
        |fx| bearer(fx.agent_with(|c| c["company_id"] = json!(fx.org.to_uppercase()))),
    );
    t.add(
        "agent token whose company_id is empty",
        "",
        INVALID_TOKEN,
        |fx| bearer(fx.agent_with(|c| c["company_id"] = json!(""))),
    );
    t.add(
        "agent token of agent-8 claiming agent-7's org",
        "the other agent lives in the other org",
        INVALID_TOKEN,
        |fx| bearer(fx.agent_with(|c| c["sub"] = json!(fx.ids.other_agent))),
    );
    t.add("agent token of an unknown agent", "", INVALID_TOKEN, |fx| {
        bearer(fx.agent_with(|c| c["sub"] = json!("agent-ghost")))
    });
    t.add(
        "user token naming another user's session",
        "signed, but bob does not own alice's sid",
        TOKEN_REVOKED,
        |fx| bearer(fx.user_with(|c| c["sub"] = json!(fx.ids.bob))),
    );
    t.add(
        "user token naming an unknown session",
        "",
        TOKEN_REVOKED,
        |fx| bearer(fx.user_with(|c| c["sid"] = json!("no-such-session"))),
    );
    t
}
