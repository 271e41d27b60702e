//! An unreachable Redis fails fast with `Unavailable` (never echoing the password), and the
//! stores recover when Redis comes back.

// Test helpers outside #[test] fns unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis_core::StoreError;
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::ids::TokenId;
use portcullis_core::store::Denylist;
use portcullis_redis::{Invalidation, RedisStores};
use tokio::sync::mpsc;

#[tokio::test]
async fn unreachable_redis_is_unavailable_fast_and_keeps_the_password_secret() {
    let started = Instant::now();
    let err = RedisStores::connect("redis://:hunter2@127.0.0.1:1", "p:")
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("unreachable Redis failed after {elapsed:?}: {err}");
    let StoreError::Unavailable(msg) = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(elapsed <= Duration::from_secs(3), "{elapsed:?}");
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(!format!("{err:?}").contains("hunter2"));
    assert!(msg.contains("127.0.0.1:1"), "{msg}");

    // A server that accepts connections but never answers: bounded by the timeouts.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://:hunter2@{}", silent.local_addr().unwrap());
    let started = Instant::now();
    let err = RedisStores::connect(&url, "p:").await.unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("silent Redis failed after {elapsed:?}: {err}");
    assert!(
        matches!(&err, StoreError::Unavailable(m) if !m.contains("hunter2")),
        "{err:?}"
    );
    assert!(elapsed <= Duration::from_secs(3), "{elapsed:?}");

    // A URL that does not parse is not echoed either.
    let err = RedisStores::connect("redis://:hunter2@127.0.0.1:notaport", "p:")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if !m.contains("hunter2")),
        "{err:?}"
    );
}

/// A `redis-server` of our own, on a free port, killed on drop.
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    /// `None` when there is no `redis-server` binary to run.
    fn start(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends `SIGSTOP`/`SIGCONT`/… to this server (our own child) only.
    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `jti` is denied, asked again every 50 ms until the denylist answers (Redis is
/// back); fails the test when it has not answered within 5 s.
async fn denied_once_answering(denylist: &impl Denylist, jti: &TokenId) -> bool {
    let started = Instant::now();
    loop {
        match denylist.is_denied(jti, 0).await {
            Ok(denied) => return denied,
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "no recovery: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_times_out_and_is_used_again_when_it_resumes() {
    let Some(server) = OwnRedis::start(free_port()) else {
        eprintln!("SKIPPED (no redis-server binary to start and stop)");
        return;
    };
    let redis = RedisStores::connect(&server.url(), "hung:").await.unwrap();
    let denylist = redis.denylist();
    let jti = TokenId::random();
    denylist
        .deny(&jti, SystemClock.now() + 3_600)
        .await
        .unwrap();

    server.signal("STOP");
    let started = Instant::now();
    let err = denylist.is_denied(&jti, 0).await.unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("with Redis hung, a check failed after {elapsed:?}: {err}");
    server.signal("CONT");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(elapsed <= Duration::from_secs(3), "{elapsed:?}");

    assert!(denied_once_answering(&denylist, &jti).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_fail_fast_while_redis_is_down_and_recover_when_it_is_back() {
    let port = free_port();
    let Some(mut server) = OwnRedis::start(port) else {
        eprintln!("SKIPPED (no redis-server binary to start and stop)");
        return;
    };
    let redis = RedisStores::connect(&server.url(), "recover:")
        .await
        .unwrap();
    let denylist = redis.denylist();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gaps = tx.clone();
    let _subscription = redis
        .invalidator()
        .on_gap(move || {
            let _ = gaps.send(None);
        })
        .subscribe(move |what| {
            let _ = tx.send(Some(what));
        })
        .await
        .unwrap();
    let jti = TokenId::random();
    denylist
        .deny(&jti, SystemClock.now() + 3_600)
        .await
        .unwrap();
    assert!(denylist.is_denied(&jti, 0).await.unwrap());

    server.stop();
    let started = Instant::now();
    let err = denylist.is_denied(&jti, 0).await.unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("with Redis down, a check failed after {elapsed:?}: {err}");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(elapsed <= Duration::from_secs(3), "{elapsed:?}");
    // The subscriber noticed: messages may be missed.
    let lost = tokio::time::timeout(Duration::from_secs(3), rx.recv()).await;
    assert_eq!(lost.unwrap(), Some(None), "gap reported on loss");

    // Back (empty: this server keeps nothing on disk).
    let _server = OwnRedis::start(port).unwrap();
    let started = Instant::now();
    assert!(!denied_once_answering(&denylist, &jti).await);
    eprintln!("recovered {:?} after Redis came back", started.elapsed());
    denylist
        .deny(&jti, SystemClock.now() + 3_600)
        .await
        .unwrap();
    assert!(denylist.is_denied(&jti, 0).await.unwrap());

    // The subscriber resubscribed (and said so), and receives again.
    let back = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(back.unwrap(), Some(None), "gap reported on resubscription");
    let what = Invalidation::Agent("agent-7".into());
    let deadline = Instant::now() + Duration::from_secs(2);
    while redis.invalidator().send(&what).await.unwrap() == 0 {
        assert!(Instant::now() < deadline, "subscriber did not come back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await;
    assert_eq!(got.unwrap(), Some(Some(what)));
}
