//! What the SQLite and PostgreSQL test files share: keeping a test's database alive as long
//! as its stores, and the checks of what only the SQL stores have.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::StoreError;
use portcullis_core::api_key::{ApiKeyRecord, KeyHash, KeyOwner};
use portcullis_core::audit::{AuditCursor, AuditEvent, AuditLog, AuditQuery, AuditSink};
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::ids::{AgentId, ApiKeyId, OrgId, SessionId, TokenId, UserId};
use portcullis_core::session::SessionRecord;
use portcullis_core::store::{AgentRecord, AgentStatus, Denylist, Stores};
use portcullis_core::testing;
use portcullis_core::users::{Account, Users};
use portcullis_sql::{AuditSettings, LastUsedSettings, LastUsedWriter, SqlStores, UserRecord};

/// `stores`, holding `guard` (a temp dir, a database to drop) until the last of them goes.
pub fn with_guard(stores: Stores, guard: impl Send + Sync + 'static) -> Stores {
    Stores {
        denylist: Arc::new(Guarded {
            inner: stores.denylist.clone(),
            _guard: Box::new(guard),
        }),
        ..stores
    }
}

struct Guarded {
    inner: Arc<dyn Denylist>,
    _guard: Box<dyn Send + Sync>,
}

#[async_trait]
impl Denylist for Guarded {
    async fn deny(&self, jti: &TokenId, expires_at: u64) -> Result<(), StoreError> {
        self.inner.deny(jti, expires_at).await
    }

    async fn is_denied(&self, jti: &TokenId, now: u64) -> Result<bool, StoreError> {
        self.inner.is_denied(jti, now).await
    }
}

fn now() -> u64 {
    SystemClock.now()
}

fn user(email: &str) -> UserRecord {
    UserRecord {
        id: UserId::random(),
        email: email.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role: "user".into(),
        org_id: "acme".into(),
        created_at: now(),
    }
}

fn key(owner: KeyOwner) -> ApiKeyRecord {
    ApiKeyRecord {
        name: "sql".into(),
        display_prefix: "ck_abcdefgh".into(),
        created_by: UserId::random().into(),
        owner,
        created_at: now(),
        ..testing::api_key_record(
            ApiKeyId::random(),
            KeyHash::of(ApiKeyId::random().as_str().as_bytes()),
        )
    }
}

/// Users: create, find by email, get, count; a taken email or id is a conflict; the
/// password hash can be replaced; `Debug` hides it.
pub async fn users_round_trip(sql: &SqlStores) {
    let users = sql.users();
    assert_eq!(users.count(None).await.unwrap(), 0);
    let alice = user("alice@example.com");
    users.create(&alice).await.unwrap();
    assert_eq!(
        users.find_by_email("alice@example.com").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(users.get(&alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(users.find_by_email("bob@example.com").await.unwrap(), None);
    assert_eq!(users.get(&UserId::random()).await.unwrap(), None);
    let taken_email = user("alice@example.com");
    assert_eq!(
        users.create(&taken_email).await,
        Err(StoreError::Conflict("user"))
    );
    let taken_id = UserRecord {
        email: "other@example.com".into(),
        ..alice.clone()
    };
    assert_eq!(
        users.create(&taken_id).await,
        Err(StoreError::Conflict("user"))
    );
    users.create(&user("bob@example.com")).await.unwrap();
    assert_eq!(users.count(None).await.unwrap(), 2);
    assert!(users.set_password_hash(&alice.id, "$new").await.unwrap());
    assert_eq!(
        users.get(&alice.id).await.unwrap().unwrap().password_hash,
        "$new"
    );
    assert!(
        !users
            .set_password_hash(&UserId::random(), "$new")
            .await
            .unwrap()
    );
    assert!(!format!("{alice:?}").contains("argon2"));
}

/// The core's `Users` trait over the table: what the lifecycle logs in against. Accounts
/// round-trip, a taken email is a conflict, counts are per org, `created_at` is stamped now,
/// and the trait's answers agree with the inherent methods'.
pub async fn users_trait_round_trip(sql: &SqlStores) {
    let store = sql.users().clone();
    let users: Arc<dyn Users> = Arc::new(store.clone());
    assert_eq!(users.count(None).await.unwrap(), 0);
    let ada = Account {
        id: UserId::random(),
        email: "ada@example.com".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role: "admin".into(),
        org_id: "acme".into(),
    };
    let before = now();
    users.create(&ada).await.unwrap();
    assert_eq!(
        users.find_by_email("ada@example.com").await.unwrap(),
        Some(ada.clone())
    );
    assert_eq!(users.get(&ada.id).await.unwrap(), Some(ada.clone()));
    assert_eq!(users.find_by_email("ADA@example.com").await.unwrap(), None);
    assert_eq!(users.get(&UserId::random()).await.unwrap(), None);
    let record = store.get(&ada.id).await.unwrap().unwrap();
    assert!(record.created_at >= before && record.created_at <= now());
    assert_eq!(Account::from(record), ada);
    let taken = Account {
        id: UserId::random(),
        ..ada.clone()
    };
    assert!(matches!(
        users.create(&taken).await,
        Err(StoreError::Conflict(_))
    ));
    users
        .create(&Account {
            id: UserId::random(),
            email: "bob@example.com".into(),
            org_id: "globex".into(),
            ..ada.clone()
        })
        .await
        .unwrap();
    assert_eq!(users.count(None).await.unwrap(), 2);
    assert_eq!(users.count(Some(&"acme".into())).await.unwrap(), 1);
    assert_eq!(users.count(Some(&"initech".into())).await.unwrap(), 0);
    assert!(users.set_password_hash(&ada.id, "$new").await.unwrap());
    assert_eq!(
        users.get(&ada.id).await.unwrap().unwrap().password_hash,
        "$new"
    );
    assert!(
        !users
            .set_password_hash(&UserId::random(), "$new")
            .await
            .unwrap()
    );
    assert!(!format!("{ada:?}").contains("argon2"));
}

/// `ApiKeyStore::count` and `SqlStores::count_api_keys` agree.
pub async fn api_key_counts_agree(sql: &SqlStores) {
    let stores = sql.stores();
    let acme = "acme".into();
    assert_eq!(stores.api_keys.count(Some(&acme)).await.unwrap(), 0);
    stores
        .api_keys
        .insert(key(KeyOwner::User(UserId::random())))
        .await
        .unwrap();
    assert_eq!(stores.api_keys.count(Some(&acme)).await.unwrap(), 1);
    assert_eq!(sql.count_api_keys(Some(&acme)).await.unwrap(), 1);
    assert_eq!(sql.count_api_keys(None).await.unwrap(), 1);
    assert_eq!(sql.count_api_keys(Some(&"other".into())).await.unwrap(), 0);
}

/// Migrating an up-to-date database changes nothing and does not fail.
pub async fn migrate_again_is_a_no_op(sql: &SqlStores) {
    let users = sql.users();
    users.create(&user("kept@example.com")).await.unwrap();
    sql.migrate().await.unwrap();
    sql.migrate().await.unwrap();
    assert_eq!(users.count(None).await.unwrap(), 1);
}

/// Two instances migrating a fresh database at the same time both succeed.
pub async fn concurrent_migrations_both_succeed(a: &SqlStores, b: &SqlStores) {
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    a.users().create(&user("x@example.com")).await.unwrap();
    assert_eq!(b.users().count(None).await.unwrap(), 1);
}

/// Every other unique value is a conflict too; counts and purging.
pub async fn conflicts_counts_and_purge(sql: &SqlStores) {
    let s = sql.stores();
    let t = now();
    let k = key(KeyOwner::User(UserId::random()));
    s.api_keys.insert(k.clone()).await.unwrap();
    let same_id = ApiKeyRecord {
        hash: KeyHash::of(b"other"),
        ..k.clone()
    };
    assert_eq!(
        s.api_keys.insert(same_id).await,
        Err(StoreError::Conflict("api key"))
    );
    assert_eq!(sql.count_api_keys(None).await.unwrap(), 1);

    let session = SessionRecord::new(
        SessionId::random(),
        UserId::random(),
        "acme".into(),
        KeyHash::of(b"s"),
        t - 100,
        50,
        true,
    );
    s.sessions.create(session.clone()).await.unwrap();
    assert_eq!(
        s.sessions.create(session.clone()).await,
        Err(StoreError::Conflict("session"))
    );
    assert_eq!(s.sessions.get(&session.id).await.unwrap(), Some(session));

    let agent = AgentRecord {
        id: AgentId::random(),
        org_id: "acme".into(),
        name: "a".into(),
        status: AgentStatus::Active,
        created_at: t,
    };
    s.agents.insert(agent.clone()).await.unwrap();
    assert_eq!(
        s.agents.insert(agent).await,
        Err(StoreError::Conflict("agent"))
    );
    assert_eq!(s.agents.count(None).await.unwrap(), 1);

    // Denying again keeps the later expiry.
    let jti = TokenId::random();
    s.denylist.deny(&jti, t + 60).await.unwrap();
    s.denylist.deny(&jti, t + 10).await.unwrap();
    assert!(s.denylist.is_denied(&jti, t + 30).await.unwrap());
    let gone = TokenId::random();
    s.denylist.deny(&gone, t - 1).await.unwrap();

    // The expired session and the expired denial go; the rest stays.
    assert_eq!(sql.purge_expired(t).await.unwrap(), 2);
    assert!(s.denylist.is_denied(&jti, t).await.unwrap());
    assert_eq!(sql.count_api_keys(None).await.unwrap(), 1);
    // Operators' listing: every key, whoever made it.
    let all = sql.all_api_keys().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        Some(&all[0]),
        s.api_keys.get(&all[0].id).await.unwrap().as_ref()
    );
}

/// Extreme values survive the trip: every permission bit, far-future times, big limits.
pub async fn extreme_values_round_trip(sql: &SqlStores) {
    let s = sql.stores();
    let k = ApiKeyRecord {
        permissions: portcullis_core::PermissionSet::ALL,
        expires_at: Some(i64::MAX as u64),
        rate_limit_per_minute: Some(u32::MAX),
        last_used_at: Some(0),
        enabled: false,
        ..key(KeyOwner::Agent(AgentId::random()))
    };
    s.api_keys.insert(k.clone()).await.unwrap();
    assert_eq!(s.api_keys.find_by_hash(&k.hash).await.unwrap(), Some(k));
}

/// The background writer's batches reach the SQL store.
pub async fn last_used_writer_reaches_the_database(sql: &SqlStores) {
    let s = sql.stores();
    let a = key(KeyOwner::User(UserId::random()));
    let b = key(KeyOwner::User(UserId::random()));
    s.api_keys.insert(a.clone()).await.unwrap();
    s.api_keys.insert(b.clone()).await.unwrap();
    let writer = LastUsedWriter::spawn(s.api_keys.clone(), LastUsedSettings::default());
    let sender = writer.sender();
    for (id, at) in [(&a.id, 100), (&b.id, 50), (&a.id, 300), (&a.id, 200)] {
        assert!(sender.record(id.clone(), at));
    }
    writer.shutdown().await;
    let last = |id: ApiKeyId| {
        let keys = s.api_keys.clone();
        async move { keys.get(&id).await.unwrap().unwrap().last_used_at }
    };
    assert_eq!(last(a.id.clone()).await, Some(300));
    assert_eq!(last(b.id.clone()).await, Some(50));
}

fn audit_event(time: u64, org: Option<&str>, action: &str, actor: &str) -> AuditEvent {
    AuditEvent {
        time,
        actor_id: Some(actor.into()),
        actor_kind: "user".into(),
        org_id: org.map(OrgId::from),
        action: action.into(),
        target: Some("t".into()),
        outcome: "success".into(),
        request_id: Some(format!("req-{time}")),
        client: Some("127.0.0.1:1".into()),
    }
}

/// The audit writer batches off the request path and writes what is queued at shutdown; the
/// log reads back newest first through opaque cursors, filtered, scoped to an org; the purge
/// prunes events older than the retention.
pub async fn audit_log_round_trip(sql: &SqlStores) {
    let log = sql.audit_log();
    let page = |q: AuditQuery| {
        let log = log.clone();
        async move { log.query(&q).await.unwrap() }
    };
    let all = || AuditQuery {
        limit: 200,
        ..AuditQuery::default()
    };

    // A batch of 3 is written at once, before the (hour-long) interval; the rest only at
    // shutdown.
    let writer = sql.audit_writer(AuditSettings {
        queue: 100,
        batch: 3,
        interval: Duration::from_secs(3_600),
    });
    for t in 1..=3 {
        writer.record(audit_event(
            1_000 + t,
            Some("acme"),
            "login.succeeded",
            "u1",
        ));
    }
    let mut written = 0;
    for _ in 0..100 {
        written = page(all()).await.items.len();
        if written == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(written, 3, "a full batch is written before the interval");
    writer.record(audit_event(1_004, Some("acme"), "logout", "u1"));
    writer.record(audit_event(1_004, Some("globex"), "logout", "u2"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(page(all()).await.items.len(), 3, "a partial batch waits");
    AuditSink::shutdown(&writer).await;
    assert_eq!(
        page(all()).await.items.len(),
        5,
        "shutdown writes what is queued"
    );
    writer.record(audit_event(1_006, None, "logout", "x"));
    assert_eq!(
        writer.dropped(),
        1,
        "a stopped writer takes nothing, and counts it"
    );
    AuditSink::shutdown(&writer).await; // a second shutdown finds it stopped
    let again = sql.audit_writer(AuditSettings::default());
    again.record(audit_event(1_005, None, "login.refused", "x"));
    AuditSink::shutdown(&again).await;
    assert_eq!(page(all()).await.items.len(), 6);

    // Newest first, every field back as written.
    let items = page(all()).await.items;
    let times: Vec<u64> = items.iter().map(|r| r.event.time).collect();
    assert_eq!(times, [1_005, 1_004, 1_004, 1_003, 1_002, 1_001]);
    assert_eq!(
        items[0].event,
        audit_event(1_005, None, "login.refused", "x")
    );
    // Same time: the later insert first.
    assert!(items[1].id > items[2].id);

    // Pages of 2 through the cursor: every item once, in order, then no cursor.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p = page(AuditQuery {
            limit: 2,
            cursor,
            ..AuditQuery::default()
        })
        .await;
        assert!(p.items.len() <= 2);
        seen.extend(p.items.iter().map(|r| r.id));
        match p.next_cursor {
            // The cursor goes through its text form, as a client holds it.
            Some(c) => cursor = Some(AuditCursor::decode(&c.encode()).unwrap()),
            None => break,
        }
    }
    assert_eq!(seen, items.iter().map(|r| r.id).collect::<Vec<_>>());

    // Filters and org scope.
    let acme = page(AuditQuery {
        org: Some("acme".into()),
        ..all()
    })
    .await
    .items;
    assert_eq!(acme.len(), 4);
    assert!(acme.iter().all(|r| r.event.org_id == Some("acme".into())));
    let logouts = page(AuditQuery {
        action: Some("logout".into()),
        ..all()
    })
    .await
    .items;
    assert_eq!(logouts.len(), 2);
    let u2 = page(AuditQuery {
        actor_id: Some("u2".into()),
        ..all()
    })
    .await
    .items;
    assert_eq!(u2.len(), 1);
    assert_eq!(u2[0].event.org_id, Some("globex".into()));
    let since = page(AuditQuery {
        since: Some(1_004),
        org: Some("acme".into()),
        ..all()
    })
    .await
    .items;
    assert_eq!(since.len(), 1);

    // Retention: 2 seconds back from 1_006 keeps 1_004 and later.
    let sql = sql.clone().with_audit_retention(2);
    sql.purge_expired(1_006).await.unwrap();
    let left: Vec<u64> = sql
        .audit_log()
        .query(&all())
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| r.event.time)
        .collect();
    assert_eq!(left, [1_005, 1_004, 1_004]);
}
