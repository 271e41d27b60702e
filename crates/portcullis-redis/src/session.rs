//! Sessions as Redis hashes; refresh rotation as optimistic compare-and-swap.
//!
//! A session is the hash `<prefix>session:<sid>` with one field per [`SessionRecord`] field
//! plus `ver`, a counter every write increments. [`SessionStore::load_versioned`] reads the
//! hash with its `ver`; [`SessionStore::swap`] is [`CAS`], a script that writes only if `ver`
//! is still the one read. Core's provided [`SessionStore::refresh`] does the rest: it applies
//! [`SessionRecord::refresh`] between the two and starts over when the swap loses, so of N
//! concurrent refreshes with one token exactly one rotates and the rest see what it left
//! behind. (This is WATCH/MULTI/EXEC's optimistic concurrency, done in one script: WATCH
//! state belongs to a connection, and the connection here is multiplexed among all tasks.)

use std::collections::HashMap;

use async_trait::async_trait;
use portcullis_core::StoreError;
use portcullis_core::api_key::KeyHash;
use portcullis_core::clock::{Clock, SystemClock, UnixTime};
use portcullis_core::ids::{OrgId, SessionId, UserId};
use portcullis_core::session::SessionRecord;
use portcullis_core::store::SessionStore;
use redis::Script;

use crate::{Backend, Retry};

/// Creates the session unless its key exists; indexes it for revoke-all and counting.
///
/// KEYS: session, user set, live zset. ARGV: sid, expires_at, now, live ("1"/"0"), then
/// field/value pairs.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local exp = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIREAT', KEYS[1], exp)
redis.call('SADD', KEYS[2], ARGV[1])
local ttl = redis.call('TTL', KEYS[2])
if ttl < 0 or now + ttl < exp then redis.call('EXPIREAT', KEYS[2], exp) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[3], exp, ARGV[1])
  ttl = redis.call('TTL', KEYS[3])
  if ttl < 0 or now + ttl < exp then redis.call('EXPIREAT', KEYS[3], exp) end
end
return 1
";

/// Writes a new state only if `ver` is still the one read: -1 gone, 0 lost the race,
/// 1 written. The live index keeps the session while it is unrevoked (a swap never writes an
/// expired state: the rule rejects refreshes of expired sessions, and counting skips entries
/// whose score, the expiry, has passed).
///
/// KEYS: session, live zset. ARGV: expected ver, sid, expires_at, live ("1"/"0"), then
/// field/value pairs.
const CAS: &str = r"
local ver = redis.call('HGET', KEYS[1], 'ver')
if not ver then return -1 end
if ver ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('EXPIREAT', KEYS[1], ARGV[3])
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[2])
else
  redis.call('ZREM', KEYS[2], ARGV[2])
end
return 1
";

/// Revokes one session: 0 when there is none.
///
/// KEYS: session, live zset. ARGV: sid.
const REVOKE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'revoked', '1')
redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
";

/// Revokes every session of a user, atomically; returns how many were live at `now`.
/// Forgets ids whose session has expired away.
///
/// KEYS: user set, live zset. ARGV: session key prefix, now.
const REVOKE_ALL: &str = r"
local now = tonumber(ARGV[2])
local live = 0
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. sid
  local s = redis.call('HMGET', key, 'revoked', 'expires_at')
  if s[2] then
    if s[1] == '0' and tonumber(s[2]) > now then live = live + 1 end
    redis.call('HSET', key, 'revoked', '1')
    redis.call('HINCRBY', key, 'ver', 1)
  else
    redis.call('SREM', KEYS[1], sid)
  end
  redis.call('ZREM', KEYS[2], sid)
end
return live
";

/// Counts the live sessions of one org. Walks the live index: O(live sessions), for the
/// admin-only stats route, never the request path.
///
/// KEYS: live zset. ARGV: session key prefix, now, org.
const COUNT_ORG: &str = r"
local n = 0
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf')) do
  if redis.call('HGET', ARGV[1] .. sid, 'org_id') == ARGV[3] then n = n + 1 end
end
return n
";

/// Login sessions in Redis, shared by every instance.
#[derive(Clone)]
pub struct RedisSessionStore {
    backend: Backend,
    scripts: std::sync::Arc<Scripts>,
}

struct Scripts {
    create: Script,
    cas: Script,
    revoke: Script,
    revoke_all: Script,
    count_org: Script,
}

impl RedisSessionStore {
    pub(crate) fn new(backend: Backend) -> Self {
        Self {
            backend,
            scripts: std::sync::Arc::new(Scripts {
                create: Script::new(CREATE),
                cas: Script::new(CAS),
                revoke: Script::new(REVOKE),
                revoke_all: Script::new(REVOKE_ALL),
                count_org: Script::new(COUNT_ORG),
            }),
        }
    }

    fn session_key(&self, id: &SessionId) -> String {
        self.backend.key(&format!("session:{id}"))
    }

    fn user_key(&self, user: &UserId) -> String {
        self.backend.key(&format!("user_sessions:{user}"))
    }

    fn live_key(&self) -> String {
        self.backend.key("live_sessions")
    }

    /// The session and the `ver` it was read at.
    async fn load(&self, id: &SessionId) -> Result<Option<(SessionRecord, u64)>, StoreError> {
        let key = self.session_key(id);
        let fields: HashMap<String, String> = self
            .backend
            .run("read session", Retry::Once, |mut conn| {
                let key = key.clone();
                async move { redis::cmd("HGETALL").arg(key).query_async(&mut conn).await }
            })
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let ver = fields.get("ver").and_then(|v| v.parse::<u64>().ok());
        let parsed = decode(id, &fields).zip(ver);
        parsed
            .map(Some)
            .ok_or_else(|| self.backend.error("read session", "malformed session hash"))
    }
}

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.to_owned()
}

/// The hash fields of a session (without `ver`).
fn encode(s: &SessionRecord) -> Vec<(&'static str, String)> {
    vec![
        ("user_id", s.user_id.to_string()),
        ("org_id", s.org_id.to_string()),
        ("current", s.current.to_hex()),
        ("parent", s.parent.map(|p| p.to_hex()).unwrap_or_default()),
        ("rotated_at", s.rotated_at.to_string()),
        ("created_at", s.created_at.to_string()),
        ("expires_at", s.expires_at.to_string()),
        ("remember_me", flag(s.remember_me)),
        ("revoked", flag(s.revoked)),
        // "" for none, "=" and the text for one: the field is always written, so a swap
        // replaces it, and an empty `User-Agent` still reads back as itself.
        (
            "user_agent",
            s.user_agent
                .as_ref()
                .map(|ua| format!("={ua}"))
                .unwrap_or_default(),
        ),
    ]
}

fn decode(id: &SessionId, f: &HashMap<String, String>) -> Option<SessionRecord> {
    let text = |name: &str| f.get(name).map(String::as_str);
    let time = |name: &str| text(name)?.parse::<UnixTime>().ok();
    let yes = |name: &str| match text(name)? {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    };
    let parent = match text("parent")? {
        "" => None,
        hex => Some(KeyHash::from_hex(hex)?),
    };
    Some(SessionRecord {
        id: id.clone(),
        user_id: text("user_id")?.into(),
        org_id: text("org_id")?.into(),
        current: KeyHash::from_hex(text("current")?)?,
        parent,
        rotated_at: time("rotated_at")?,
        created_at: time("created_at")?,
        expires_at: time("expires_at")?,
        remember_me: yes("remember_me")?,
        revoked: yes("revoked")?,
        // Sessions written before the field existed have none.
        user_agent: match text("user_agent") {
            None | Some("") => None,
            Some(v) => Some(v.strip_prefix('=')?.to_owned()),
        },
    })
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(&self, session: SessionRecord) -> Result<(), StoreError> {
        let keys = [
            self.session_key(&session.id),
            self.user_key(&session.user_id),
            self.live_key(),
        ];
        let now = SystemClock.now();
        let mut args = vec![
            session.id.to_string(),
            session.expires_at.to_string(),
            now.to_string(),
            flag(session.is_live(now)),
        ];
        args.extend(
            encode(&session)
                .into_iter()
                .flat_map(|(k, v)| [k.to_owned(), v]),
        );
        args.extend(["ver".to_owned(), "0".to_owned()]);
        // Never resent: a create applied whose reply was lost would come back as a conflict.
        let created: i64 = self
            .backend
            .run("create session", Retry::Never, |mut conn| {
                let mut call = self.scripts.create.prepare_invoke();
                call.key(&keys[..]).arg(&args[..]);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict("session"))
        }
    }

    async fn load_versioned(
        &self,
        id: &SessionId,
    ) -> Result<Option<(SessionRecord, u64)>, StoreError> {
        self.load(id).await
    }

    /// One Lua script (`CAS`): writes `new` over the state read at `expected_version`.
    async fn swap(
        &self,
        id: &SessionId,
        expected_version: u64,
        new: &SessionRecord,
    ) -> Result<bool, StoreError> {
        let keys = [self.session_key(id), self.live_key()];
        let mut args = vec![
            expected_version.to_string(),
            id.to_string(),
            new.expires_at.to_string(),
            flag(!new.revoked),
        ];
        args.extend(encode(new).into_iter().flat_map(|(k, v)| [k.to_owned(), v]));
        // Never resent: if the first attempt was applied and only its reply was lost, a
        // second one would see its own write as a lost race and take the reuse path.
        let outcome: i64 = self
            .backend
            .run("refresh session", Retry::Never, |mut conn| {
                let mut call = self.scripts.cas.prepare_invoke();
                call.key(&keys[..]).arg(&args[..]);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        // -1 (gone) and 0 (lost the race) both mean nothing was written.
        Ok(outcome == 1)
    }

    async fn revoke(&self, id: &SessionId) -> Result<bool, StoreError> {
        let keys = [self.session_key(id), self.live_key()];
        let sid = id.to_string();
        // Idempotent: revoking twice is revoking once.
        let found: i64 = self
            .backend
            .run("revoke session", Retry::Once, |mut conn| {
                let mut call = self.scripts.revoke.prepare_invoke();
                call.key(&keys[..]).arg(&sid);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        Ok(found == 1)
    }

    async fn revoke_all_for_user(&self, user: &UserId, now: UnixTime) -> Result<u64, StoreError> {
        let keys = [self.user_key(user), self.live_key()];
        let session_prefix = self.backend.key("session:");
        // Idempotent in effect; a repeat would only under-count, so it is not resent.
        let live: u64 = self
            .backend
            .run("revoke user sessions", Retry::Never, |mut conn| {
                let mut call = self.scripts.revoke_all.prepare_invoke();
                call.key(&keys[..]).arg(&session_prefix).arg(now);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        Ok(live)
    }

    /// The user's index, then each session: one read per session of the user (a handful), on
    /// the user's own request, never the request path of others.
    async fn list_for_user(
        &self,
        user: &UserId,
        now: UnixTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut live = Vec::new();
        for id in self.user_session_ids(user).await? {
            if let Some((session, _)) = self.load(&id).await?
                && &session.user_id == user
                && session.is_live(now)
            {
                live.push(session);
            }
        }
        portcullis_core::store::newest_first(&mut live);
        Ok(live)
    }

    async fn count_live(&self, now: UnixTime, org: Option<&OrgId>) -> Result<u64, StoreError> {
        let key = self.live_key();
        if let Some(org) = org {
            let prefix = self.backend.key("session:");
            return self
                .backend
                .run("count org sessions", Retry::Once, |mut conn| {
                    let mut call = self.scripts.count_org.prepare_invoke();
                    call.key(&key).arg(&prefix).arg(now).arg(org.as_str());
                    async move { call.invoke_async(&mut conn).await }
                })
                .await;
        }
        let min = format!("({now}");
        self.backend
            .run("count sessions", Retry::Once, |mut conn| {
                let (key, min) = (key.clone(), min.clone());
                async move {
                    redis::cmd("ZCOUNT")
                        .arg(key)
                        .arg(min)
                        .arg("+inf")
                        .query_async(&mut conn)
                        .await
                }
            })
            .await
    }
}

impl RedisSessionStore {
    /// The ids in `user`'s index (which may name sessions that have expired away).
    async fn user_session_ids(&self, user: &UserId) -> Result<Vec<SessionId>, StoreError> {
        let key = self.user_key(user);
        let ids: Vec<String> = self
            .backend
            .run("list user sessions", Retry::Once, |mut conn| {
                let key = key.clone();
                async move { redis::cmd("SMEMBERS").arg(key).query_async(&mut conn).await }
            })
            .await?;
        Ok(ids.into_iter().map(SessionId::from).collect())
    }
}

impl std::fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("backend", &self.backend)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut s = SessionRecord::new(
            "sid".into(),
            "user:with:colons".into(),
            "acme".into(),
            KeyHash::of(b"a"),
            1_000,
            60,
            true,
        );
        let fields: HashMap<String, String> = encode(&s)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(decode(&s.id, &fields), Some(s.clone()));
        s.parent = Some(KeyHash::of(b"b"));
        s.revoked = true;
        s.user_agent = Some(String::new());
        let fields: HashMap<String, String> = encode(&s)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(decode(&s.id, &fields), Some(s.clone()));
        s.user_agent = Some("=curl/8".into());
        let fields: HashMap<String, String> = encode(&s)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(decode(&s.id, &fields), Some(s.clone()));
        // A hash written before the field existed reads as no `User-Agent`.
        let mut old = fields.clone();
        old.remove("user_agent");
        assert_eq!(
            decode(&s.id, &old),
            Some(SessionRecord {
                user_agent: None,
                ..s
            })
        );
    }
}
