//! The decision log: outcomes and actors, never a credential.

use super::*;

// ---------------------------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn decisions_are_logged_with_outcomes_and_actors_but_never_a_credential() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("portcullis=debug"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let (token, key, key_id, bad_token, run, broken_token) =
        tracing::subscriber::with_default(subscriber, || {
            rt.block_on(async {
                let fx = Fx::new();
                // Register both decision callsites before the real requests.
                fx.send_logged(get(PRIVATE, &[])).await;
                fx.send_logged(get("/healthz", &[])).await;
                let (_, token) = fx.login("u-alice").await;
                let (key, key_id) = fx.user_key("u-bob").await;
                fx.agent("agent-7").await;
                let run = fx
                    .run_token("agent-7", ORG, "run-42")
                    .token
                    .expose()
                    .to_owned();
                // A real token with a broken signature: looks like a credential in every way.
                let sig = token.rfind('.').unwrap() + 1;
                let bad_token = format!("{}{}", &token[..sig], "A".repeat(token.len() - sig));

                assert_actor(
                    &fx.send_logged(get(PRIVATE, &[("authorization", &bearer(&token))]))
                        .await,
                    "user",
                    Some("u-alice"),
                    Some("jwt"),
                );
                assert_api_key_actor(
                    &fx.send_logged(get(PRIVATE, &[("x-api-key", &key)])).await,
                    key_id.as_str(),
                );
                assert_actor(
                    &fx.send_logged(get(PRIVATE, &[("authorization", &bearer(&run))]))
                        .await,
                    "agent",
                    Some("agent-7"),
                    Some("jwt"),
                );
                assert_401(
                    &fx.send_logged(get(PRIVATE, &[("authorization", &bearer(&bad_token))]))
                        .await,
                    "invalid_token",
                );
                assert_401(
                    &fx.send_logged(get(PRIVATE, &[("cookie", &access_cookie(&bad_token))]))
                        .await,
                    "invalid_token",
                );
                assert_401(
                    &fx.send_logged(get(PRIVATE, &[("authorization", "Basic dXNlcjpodW50ZXIy")]))
                        .await,
                    "invalid_credentials",
                );
                assert_problem(
                    &fx.send_logged(get(PRIVATE, &[])).await,
                    401,
                    "missing_credentials",
                    Some(BARE_CHALLENGE),
                );

                // A store failure: its message must not be logged either.
                let broken = Fx::with_stores(stores_with(|s| s.sessions = Arc::new(Down)));
                let broken_token = broken
                    .access("u-carol", &SessionId::random())
                    .token
                    .expose()
                    .to_owned();
                assert_503(
                    &broken
                        .send_logged(get(PRIVATE, &[("authorization", &bearer(&broken_token))]))
                        .await,
                );
                (token, key, key_id, bad_token, run, broken_token)
            })
        });

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // Outcomes, credential kinds and actors are there.
    for expected in [
        "auth decision",
        "allow",
        "u-alice",
        key_id.as_str(),
        "agent-7",
        "invalid_token",
        "invalid_credentials",
        "missing_credentials",
        "auth_unavailable",
        "bearer",
        "api_key",
        "cookie",
    ] {
        assert!(logs.contains(expected), "log lacks {expected:?}:\n{logs}");
    }
    // Credentials, their parts and secrets are not.
    let signature = |t: &str| t.rsplit('.').next().unwrap().to_owned();
    let payload = |t: &str| t.split('.').nth(1).unwrap().to_owned();
    for secret in [
        token.as_str(),
        &signature(&token),
        &payload(&token),
        key.as_str(),
        &key[11..],
        bad_token.as_str(),
        &signature(&bad_token),
        run.as_str(),
        &signature(&run),
        broken_token.as_str(),
        "dXNlcjpodW50ZXIy",
        "hunter2",
        STORE_MESSAGE,
        USER_SECRET,
        AGENT_SECRET,
    ] {
        assert!(
            !logs.contains(secret),
            "log contains a secret {secret:?}:\n{logs}"
        );
    }
}
