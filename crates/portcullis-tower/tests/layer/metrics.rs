//! What the layer reports to the `metrics` facade: exact counts after a known mix of
//! requests, read from a `DebuggingRecorder` installed for this test's thread only.

use std::collections::BTreeMap;

use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

use super::*;

/// `name{label=value,…}` → value, for every series recorded.
fn series(recorder: &DebuggingRecorder) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
        let (kind, key) = key.into_parts();
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let value = match (kind, value) {
            (MetricKind::Counter, DebugValue::Counter(n)) => n.to_string(),
            (MetricKind::Gauge, DebugValue::Gauge(g)) => g.to_string(),
            // Durations vary; how many were recorded does not.
            (MetricKind::Histogram, DebugValue::Histogram(h)) => format!("{} samples", h.len()),
            (kind, value) => panic!("{name}: {kind:?} with {value:?}"),
        };
        out.insert(name, value);
    }
    out
}

// current_thread: the whole test, and every future it awaits, runs on this thread, the only
// one that reports to this recorder (the other tests of the binary run on their own threads).
#[tokio::test(flavor = "current_thread")]
async fn decisions_caches_and_failures_are_counted_exactly() {
    let recorder = DebuggingRecorder::new();
    let _local = ::metrics::set_default_local_recorder(&recorder);

    let fx = Fx::new();
    let (_, token) = fx.login("u-alice").await;
    let (_, stale) = fx.login("u-bob").await;
    let (key, key_id) = fx.user_key("u-carol").await;
    let unknown_key = api_key::generate(&ApiKeyPrefix::default());

    // No credential: 401 missing_credentials, decided in `call`.
    assert_problem(
        &fx.get_private(&[]).await,
        401,
        "missing_credentials",
        Some(BARE_CHALLENGE),
    );
    // A bearer that is not a JWT.
    assert_401(&fx.get_with_bearer("not.a.jwt").await, "invalid_token");
    // A valid token twice (the second from the resolved-credential cache), then as a cookie
    // (its own cache; the session entry of the first is a hit). First-seen tokens ask the
    // denylist store directly, so the denylist cache is neither asked nor filled
    // (`Authenticator::is_denied`; core's credential_cache tests count its questions).
    assert_actor(
        &fx.get_with_bearer(&token).await,
        "user",
        Some("u-alice"),
        Some("jwt"),
    );
    assert_actor(
        &fx.get_with_bearer(&token).await,
        "user",
        Some("u-alice"),
        Some("jwt"),
    );
    let cookie = access_cookie(&token);
    let r = fx.get_private(&[("cookie", &cookie)]).await;
    assert_actor(&r, "user", Some("u-alice"), Some("cookie"));
    // An API key twice, and a well-formed key nobody stored.
    assert_api_key_actor(&fx.get_with_api_key(&key).await, key_id.as_str());
    assert_api_key_actor(&fx.get_with_api_key(&key).await, key_id.as_str());
    assert_401(
        &fx.get_with_api_key(unknown_key.key.expose()).await,
        "invalid_api_key",
    );
    // A header that cannot be read at all.
    let r = fx
        .send(raw(
            Method::GET,
            PRIVATE,
            &[("authorization", b"Bearer \xff")],
        ))
        .await;
    assert_401(&r, "invalid_token");
    // Bob's token, after it expired.
    fx.clock.advance(ACCESS_TTL + LEEWAY + 1);
    assert_401(&fx.get_with_bearer(&stale).await, "token_expired");
    fx.auth.record_cache_entries().await;

    // A session store that is down: 503, one store error.
    let down = Fx::with_stores(stores_with(|s| s.sessions = Arc::new(Down)));
    let minted = down.access("u-dave", &SessionId::random());
    assert_503(&down.get_with_bearer(minted.token.expose()).await);

    let got = series(&recorder);
    let want: BTreeMap<String, String> = [
        (
            "portcullis_decisions_total{credential=none,outcome=missing_credentials}",
            "1",
        ),
        (
            "portcullis_decisions_total{credential=bearer,outcome=invalid_token}",
            "1",
        ),
        (
            "portcullis_decisions_total{credential=bearer,outcome=ok}",
            "2",
        ),
        (
            "portcullis_decisions_total{credential=cookie,outcome=ok}",
            "1",
        ),
        (
            "portcullis_decisions_total{credential=api_key,outcome=ok}",
            "2",
        ),
        (
            "portcullis_decisions_total{credential=api_key,outcome=invalid_api_key}",
            "1",
        ),
        (
            "portcullis_decisions_total{credential=unreadable,outcome=invalid_token}",
            "1",
        ),
        (
            "portcullis_decisions_total{credential=bearer,outcome=token_expired}",
            "1",
        ),
        (
            "portcullis_decisions_total{credential=bearer,outcome=auth_unavailable}",
            "1",
        ),
        // Only resolutions that waited: not the cached repeats, not `none` or `unreadable`.
        (
            "portcullis_resolve_duration_seconds{credential=bearer}",
            "4 samples",
        ),
        (
            "portcullis_resolve_duration_seconds{credential=cookie}",
            "1 samples",
        ),
        (
            "portcullis_resolve_duration_seconds{credential=api_key}",
            "2 samples",
        ),
        ("portcullis_cache_hits_total{cache=resolved_bearer}", "1"),
        ("portcullis_cache_misses_total{cache=resolved_bearer}", "4"),
        ("portcullis_cache_misses_total{cache=resolved_cookie}", "1"),
        ("portcullis_cache_hits_total{cache=resolved_api_key}", "1"),
        ("portcullis_cache_misses_total{cache=resolved_api_key}", "2"),
        ("portcullis_cache_misses_total{cache=api_keys}", "2"),
        ("portcullis_cache_hits_total{cache=sessions}", "1"),
        ("portcullis_cache_misses_total{cache=sessions}", "2"),
        ("portcullis_cache_entries{cache=resolved_bearer}", "1"),
        ("portcullis_cache_entries{cache=resolved_cookie}", "1"),
        ("portcullis_cache_entries{cache=resolved_api_key}", "1"),
        // The stored key and the negative entry of the unknown one.
        ("portcullis_cache_entries{cache=api_keys}", "2"),
        ("portcullis_cache_entries{cache=sessions}", "1"),
        ("portcullis_cache_entries{cache=agents}", "0"),
        ("portcullis_cache_entries{cache=denylist}", "0"),
        ("portcullis_store_errors_total{store=sessions}", "1"),
        ("portcullis_unavailable_total{}", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(got, want);
}
