//! The store operations: every query, written once as code generic over the database.
//!
//! [`Ops<DB>`] holds them as associated functions of one `impl` block whose `where` clause
//! says, once, what sqlx must provide for `DB` (an executor on its connections, and encoding
//! and decoding of the column types used here). Rules that are not SQL (rotation, batching,
//! migration planning) live outside; what differs between databases is [`Backend`].

use std::marker::PhantomData;

use portcullis_core::StoreError;
use portcullis_core::api_key::{ApiKeyRecord, KeyCreator, KeyHash, KeysOf};
use portcullis_core::audit::{AuditEvent, AuditQuery, AuditRecord};
use portcullis_core::clock::UnixTime;
use portcullis_core::ids::{AgentId, ApiKeyId, OrgId, SessionId, TokenId, UserId};
use portcullis_core::session::SessionRecord;
use portcullis_core::store::{AgentRecord, Credits};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

use super::{Backend, ExpiringTable};
use crate::codec;
use crate::error::{conflict_or_unavailable, unavailable};
use crate::migrate::{self as plan, Applied};
use crate::users::UserRecord;

fn err(e: sqlx::Error) -> StoreError {
    unavailable(&e)
}

macro_rules! api_key_columns {
    () => {
        "id, name, key_hash, display_prefix, created_by, creator_user, owner_kind, owner_id, \
         org_id, permissions, created_at, expires_at, enabled, rate_limit_per_minute, last_used_at, \
         remaining"
    };
}

macro_rules! session_columns {
    () => {
        "id, user_id, org_id, current_hash, parent_hash, rotated_at, created_at, expires_at, \
         remember_me, revoked, user_agent"
    };
}

/// The operations on a database `DB`; `Ops::<DB>::op(pool, …)`, never a value.
pub(crate) struct Ops<DB>(PhantomData<DB>);

// The bounds sit here, not on `Backend`: a trait's `where` clauses are not implied where the
// trait is used, so every generic caller would have to repeat them.
impl<DB: Backend> Ops<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    &'static str: ColumnIndex<DB::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB>,
    for<'q> String: Encode<'q, DB>,
    for<'q> i64: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> bool: Encode<'q, DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'r> bool: Decode<'r, DB> + Type<DB>,
{
    /// The column `name` of `row`.
    fn col<'r, T>(row: &'r DB::Row, name: &'static str) -> Result<T, StoreError>
    where
        T: Decode<'r, DB> + Type<DB>,
    {
        row.try_get(name).map_err(|e| unavailable(&e))
    }

    // ---- migrations ----

    /// Applies every migration not yet applied, in one transaction.
    pub(crate) async fn migrate(pool: &Pool<DB>) -> Result<(), StoreError> {
        let mut tx = pool.begin_with(DB::MIGRATION_BEGIN).await.map_err(err)?;
        if let Some(lock) = DB::MIGRATION_LOCK {
            sqlx::query(lock).execute(&mut *tx).await.map_err(err)?;
        }
        sqlx::query(plan::CREATE_TABLE)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        let applied = sqlx::query("SELECT version, checksum FROM _portcullis_migrations")
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?
            .iter()
            .map(|row| {
                Ok(Applied {
                    version: Self::col(row, "version")?,
                    checksum: Self::col(row, "checksum")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        for m in plan::pending(DB::MIGRATIONS, &applied)? {
            sqlx::raw_sql(m.sql).execute(&mut *tx).await.map_err(err)?;
            sqlx::query(
                "INSERT INTO _portcullis_migrations (version, description, checksum, applied_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(m.version)
            .bind(m.description)
            .bind(m.checksum())
            .bind(codec::time(plan::now()))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    // ---- API keys ----

    fn api_key(row: &DB::Row) -> Result<ApiKeyRecord, StoreError> {
        let owner_kind: String = Self::col(row, "owner_kind")?;
        Ok(ApiKeyRecord {
            id: Self::col::<String>(row, "id")?.into(),
            name: Self::col(row, "name")?,
            hash: codec::hash_from("key_hash", &Self::col::<Vec<u8>>(row, "key_hash")?)?,
            display_prefix: Self::col(row, "display_prefix")?,
            created_by: KeyCreator {
                actor: Self::col(row, "created_by")?,
                user: Self::col::<Option<String>>(row, "creator_user")?.map(UserId::from),
            },
            owner: codec::owner_from(&owner_kind, Self::col(row, "owner_id")?)?,
            org_id: Self::col::<String>(row, "org_id")?.into(),
            permissions: codec::permissions_from(&Self::col::<String>(row, "permissions")?)?,
            created_at: codec::time_from("created_at", Self::col(row, "created_at")?)?,
            expires_at: codec::opt_time_from("expires_at", Self::col(row, "expires_at")?)?,
            enabled: Self::col(row, "enabled")?,
            rate_limit_per_minute: codec::rate_limit_from(Self::col(
                row,
                "rate_limit_per_minute",
            )?)?,
            last_used_at: codec::opt_time_from("last_used_at", Self::col(row, "last_used_at")?)?,
            remaining: codec::credits_from(Self::col(row, "remaining")?)?,
        })
    }

    pub(crate) async fn api_key_insert(
        pool: &Pool<DB>,
        r: &ApiKeyRecord,
    ) -> Result<(), StoreError> {
        let (owner_kind, owner_id) = codec::owner(&r.owner);
        sqlx::query(concat!(
            "INSERT INTO api_keys (",
            api_key_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(r.id.as_str())
        .bind(&r.name)
        .bind(&r.hash.0[..])
        .bind(&r.display_prefix)
        .bind(&r.created_by.actor)
        .bind(r.created_by.user.as_ref().map(UserId::as_str))
        .bind(owner_kind)
        .bind(owner_id)
        .bind(r.org_id.as_str())
        .bind(codec::permissions(r.permissions))
        .bind(codec::time(r.created_at))
        .bind(r.expires_at.map(codec::time))
        .bind(r.enabled)
        .bind(r.rate_limit_per_minute.map(i64::from))
        .bind(r.last_used_at.map(codec::time))
        .bind(r.remaining.map(codec::credits).transpose()?)
        .execute(pool)
        .await
        .map_err(|e| conflict_or_unavailable(e, "api key"))?;
        Ok(())
    }

    pub(crate) async fn api_key_find_by_hash(
        pool: &Pool<DB>,
        hash: &KeyHash,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys WHERE key_hash = $1"
        ))
        .bind(&hash.0[..])
        .fetch_optional(pool)
        .await
        .map_err(err)?
        .as_ref()
        .map(Self::api_key)
        .transpose()
    }

    /// The key whose current hash is `hash` (with `None`), or whose last reroll replaced
    /// `hash` (with that hash's deadline).
    pub(crate) async fn api_key_find_presented(
        pool: &Pool<DB>,
        hash: &KeyHash,
    ) -> Result<Option<(ApiKeyRecord, Option<UnixTime>)>, StoreError> {
        let Some(row) = sqlx::query(concat!(
            "SELECT ",
            api_key_columns!(),
            ", previous_hash_expires_at FROM api_keys WHERE key_hash = $1 OR previous_hash = $1 \
             ORDER BY CASE WHEN key_hash = $1 THEN 0 ELSE 1 END LIMIT 1"
        ))
        .bind(&hash.0[..])
        .fetch_optional(pool)
        .await
        .map_err(err)?
        else {
            return Ok(None);
        };
        let record = Self::api_key(&row)?;
        if record.hash == *hash {
            return Ok(Some((record, None)));
        }
        let until = codec::opt_time_from(
            "previous_hash_expires_at",
            Self::col(&row, "previous_hash_expires_at")?,
        )?
        // A replaced hash without a deadline is kept by no reroll of ours: not presentable.
        .unwrap_or(0);
        Ok(Some((record, Some(until))))
    }

    /// A new secret for key `id`, in one statement: the replaced hash is kept until
    /// `previous_until`, or forgotten without it. Every `SET` reads the row as it was, so
    /// `previous_hash` takes the hash being replaced.
    pub(crate) async fn api_key_reroll(
        pool: &Pool<DB>,
        id: &ApiKeyId,
        new_hash: &KeyHash,
        display_prefix: &str,
        previous_until: Option<UnixTime>,
    ) -> Result<bool, StoreError> {
        let sql = if previous_until.is_some() {
            "UPDATE api_keys SET previous_hash = key_hash, previous_hash_expires_at = $4, \
             key_hash = $2, display_prefix = $3 WHERE id = $1"
        } else {
            "UPDATE api_keys SET previous_hash = NULL, previous_hash_expires_at = $4, \
             key_hash = $2, display_prefix = $3 WHERE id = $1"
        };
        let done = sqlx::query(sql)
            .bind(id.as_str())
            .bind(&new_hash.0[..])
            .bind(display_prefix)
            .bind(previous_until.map(codec::time))
            .execute(pool)
            .await
            .map_err(|e| conflict_or_unavailable(e, "api key"))?;
        Ok(DB::rows_affected(&done) > 0)
    }

    /// The hash key `id`'s last reroll replaced, with its deadline.
    pub(crate) async fn api_key_previous_hash(
        pool: &Pool<DB>,
        id: &ApiKeyId,
    ) -> Result<Option<(KeyHash, UnixTime)>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT previous_hash, previous_hash_expires_at FROM api_keys WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(pool)
        .await
        .map_err(err)?
        else {
            return Ok(None);
        };
        let Some(hash) = Self::col::<Option<Vec<u8>>>(&row, "previous_hash")? else {
            return Ok(None);
        };
        let until = codec::opt_time_from(
            "previous_hash_expires_at",
            Self::col(&row, "previous_hash_expires_at")?,
        )?
        .unwrap_or(0);
        Ok(Some((codec::hash_from("previous_hash", &hash)?, until)))
    }

    pub(crate) async fn api_key_get(
        pool: &Pool<DB>,
        id: &ApiKeyId,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(pool)
        .await
        .map_err(err)?
        .as_ref()
        .map(Self::api_key)
        .transpose()
    }

    pub(crate) async fn api_key_list(
        pool: &Pool<DB>,
        of: &KeysOf,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let (sql, id) = match of {
            KeysOf::Actor(id) => (
                concat!(
                    "SELECT ",
                    api_key_columns!(),
                    " FROM api_keys WHERE created_by = $1 ORDER BY created_at, id"
                ),
                id.as_str(),
            ),
            KeysOf::User(user) => (
                concat!(
                    "SELECT ",
                    api_key_columns!(),
                    " FROM api_keys WHERE creator_user = $1 ORDER BY created_at, id"
                ),
                user.as_str(),
            ),
        };
        Self::api_key_rows(pool, sql, Some(id)).await
    }

    pub(crate) async fn api_key_list_all(pool: &Pool<DB>) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys ORDER BY created_at, id"
        );
        Self::api_key_rows(pool, sql, None).await
    }

    /// The keys `sql` selects, with `$1` bound to `id` when there is one.
    async fn api_key_rows(
        pool: &Pool<DB>,
        sql: &'static str,
        id: Option<&str>,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut query = sqlx::query(sql);
        if let Some(id) = id {
            query = query.bind(id);
        }
        query
            .fetch_all(pool)
            .await
            .map_err(err)?
            .iter()
            .map(Self::api_key)
            .collect()
    }

    pub(crate) async fn api_key_set_enabled(
        pool: &Pool<DB>,
        id: &ApiKeyId,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE api_keys SET enabled = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(enabled)
            .execute(pool)
            .await
            .map_err(err)?;
        Ok(DB::rows_affected(&done) > 0)
    }

    /// Takes `n` credits from key `id` in one conditional statement: the database serialises
    /// it per row, so concurrent takes on any number of instances never go below zero. Only
    /// when nothing was taken does a second read tell why.
    pub(crate) async fn api_key_take_credits(
        pool: &Pool<DB>,
        id: &ApiKeyId,
        n: u64,
    ) -> Result<Credits, StoreError> {
        let Ok(n) = i64::try_from(n) else {
            // More than any key can hold.
            return Ok(match Self::api_key_credits(pool, id).await? {
                None => Credits::NotFound,
                Some(None) => Credits::Unlimited,
                Some(Some(_)) => Credits::Exhausted,
            });
        };
        let taken = sqlx::query(
            "UPDATE api_keys SET remaining = remaining - $2 \
             WHERE id = $1 AND remaining >= $2 RETURNING remaining",
        )
        .bind(id.as_str())
        .bind(n)
        .fetch_optional(pool)
        .await
        .map_err(err)?;
        if let Some(row) = taken {
            let left = codec::credits_from(Self::col(&row, "remaining")?)?;
            return left
                .map(|left| Credits::Taken { left })
                .ok_or_else(|| codec::malformed("remaining"));
        }
        Ok(match Self::api_key_credits(pool, id).await? {
            None => Credits::NotFound,
            Some(None) => Credits::Unlimited,
            Some(Some(_)) => Credits::Exhausted,
        })
    }

    pub(crate) async fn api_key_return_credits(
        pool: &Pool<DB>,
        id: &ApiKeyId,
        n: u64,
    ) -> Result<(), StoreError> {
        // More than any key can hold was never taken.
        let Ok(n) = i64::try_from(n) else {
            return Ok(());
        };
        sqlx::query(
            "UPDATE api_keys SET remaining = remaining + $2 \
             WHERE id = $1 AND remaining IS NOT NULL",
        )
        .bind(id.as_str())
        .bind(n)
        .execute(pool)
        .await
        .map_err(err)?;
        Ok(())
    }

    /// The credits of key `id`: `None` without such a key, `Some(None)` when unlimited.
    async fn api_key_credits(
        pool: &Pool<DB>,
        id: &ApiKeyId,
    ) -> Result<Option<Option<u64>>, StoreError> {
        sqlx::query("SELECT remaining FROM api_keys WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(pool)
            .await
            .map_err(err)?
            .map(|row| codec::credits_from(Self::col(&row, "remaining")?))
            .transpose()
    }

    pub(crate) async fn api_key_delete(pool: &Pool<DB>, id: &ApiKeyId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_keys WHERE id = $1")
            .bind(id.as_str())
            .execute(pool)
            .await
            .map_err(err)?;
        Ok(DB::rows_affected(&done) > 0)
    }

    /// One transaction for the whole batch (already one entry per key); a time never moves
    /// `last_used_at` back.
    pub(crate) async fn api_key_touch(
        pool: &Pool<DB>,
        used: &[(ApiKeyId, UnixTime)],
    ) -> Result<(), StoreError> {
        let mut tx = pool.begin().await.map_err(err)?;
        for (id, at) in used {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $2 \
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
            )
            .bind(id.as_str())
            .bind(codec::time(*at))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    pub(crate) async fn api_key_count(
        pool: &Pool<DB>,
        org: Option<&OrgId>,
    ) -> Result<u64, StoreError> {
        Self::count(
            pool,
            "SELECT COUNT(*) AS n FROM api_keys WHERE ($1 IS NULL OR org_id = $1)",
            org,
        )
        .await
    }

    pub(crate) async fn ping(pool: &Pool<DB>) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(pool).await.map_err(err)?;
        Ok(())
    }

    /// `sql` counts rows as `n`, with `$1` the org to count in (`NULL`: every org).
    async fn count(
        pool: &Pool<DB>,
        sql: &'static str,
        org: Option<&OrgId>,
    ) -> Result<u64, StoreError> {
        let row = sqlx::query(sql)
            .bind(org.map(OrgId::as_str))
            .fetch_one(pool)
            .await
            .map_err(err)?;
        Ok(u64::try_from(Self::col::<i64>(&row, "n")?).unwrap_or(0))
    }

    // ---- sessions ----

    fn session(row: &DB::Row) -> Result<SessionRecord, StoreError> {
        Ok(SessionRecord {
            id: Self::col::<String>(row, "id")?.into(),
            user_id: Self::col::<String>(row, "user_id")?.into(),
            org_id: Self::col::<String>(row, "org_id")?.into(),
            current: codec::hash_from("current_hash", &Self::col::<Vec<u8>>(row, "current_hash")?)?,
            parent: Self::col::<Option<Vec<u8>>>(row, "parent_hash")?
                .map(|p| codec::hash_from("parent_hash", &p))
                .transpose()?,
            rotated_at: codec::time_from("rotated_at", Self::col(row, "rotated_at")?)?,
            created_at: codec::time_from("created_at", Self::col(row, "created_at")?)?,
            expires_at: codec::time_from("expires_at", Self::col(row, "expires_at")?)?,
            remember_me: Self::col(row, "remember_me")?,
            revoked: Self::col(row, "revoked")?,
            user_agent: Self::col::<Option<String>>(row, "user_agent")?,
        })
    }

    pub(crate) async fn session_create(
        pool: &Pool<DB>,
        s: &SessionRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO sessions (",
            session_columns!(),
            ", version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0)"
        ))
        .bind(s.id.as_str())
        .bind(s.user_id.as_str())
        .bind(s.org_id.as_str())
        .bind(&s.current.0[..])
        .bind(s.parent.as_ref().map(|p| &p.0[..]))
        .bind(codec::time(s.rotated_at))
        .bind(codec::time(s.created_at))
        .bind(codec::time(s.expires_at))
        .bind(s.remember_me)
        .bind(s.revoked)
        .bind(s.user_agent.as_deref())
        .execute(pool)
        .await
        .map_err(|e| conflict_or_unavailable(e, "session"))?;
        Ok(())
    }

    /// The session and its row version, which every write to the row increments.
    pub(crate) async fn session_get_versioned(
        pool: &Pool<DB>,
        id: &SessionId,
    ) -> Result<Option<(SessionRecord, u64)>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            ", version FROM sessions WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(pool)
        .await
        .map_err(err)?
        .map(|row| {
            let version = u64::try_from(Self::col::<i64>(&row, "version")?)
                .map_err(|_| StoreError::Unavailable("session version out of range".into()))?;
            Ok((Self::session(&row)?, version))
        })
        .transpose()
    }

    /// Stores `new` as session `id` only if the row is still at `version`: true when it was
    /// swapped in.
    pub(crate) async fn session_swap(
        pool: &Pool<DB>,
        id: &SessionId,
        version: i64,
        new: &SessionRecord,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET user_id = $3, org_id = $4, current_hash = $5, parent_hash = $6, \
             rotated_at = $7, created_at = $8, expires_at = $9, remember_me = $10, revoked = $11, \
             user_agent = $12, version = version + 1 \
             WHERE id = $1 AND version = $2",
        )
        .bind(id.as_str())
        .bind(version)
        .bind(new.user_id.as_str())
        .bind(new.org_id.as_str())
        .bind(&new.current.0[..])
        .bind(new.parent.as_ref().map(|p| &p.0[..]))
        .bind(codec::time(new.rotated_at))
        .bind(codec::time(new.created_at))
        .bind(codec::time(new.expires_at))
        .bind(new.remember_me)
        .bind(new.revoked)
        .bind(new.user_agent.as_deref())
        .execute(pool)
        .await
        .map_err(err)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub(crate) async fn session_revoke(
        pool: &Pool<DB>,
        id: &SessionId,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE sessions SET revoked = $2, version = version + 1 WHERE id = $1")
                .bind(id.as_str())
                .bind(true)
                .execute(pool)
                .await
                .map_err(err)?;
        Ok(DB::rows_affected(&done) > 0)
    }

    /// Revokes every unrevoked session of `user`; returns how many were live at `now`.
    pub(crate) async fn session_revoke_all_for_user(
        pool: &Pool<DB>,
        user: &UserId,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let now = codec::time(now);
        let rows = sqlx::query(
            "UPDATE sessions SET revoked = $2, version = version + 1 \
             WHERE user_id = $1 AND revoked = $3 RETURNING expires_at",
        )
        .bind(user.as_str())
        .bind(true)
        .bind(false)
        .fetch_all(pool)
        .await
        .map_err(err)?;
        let mut live = 0;
        for row in &rows {
            if Self::col::<i64>(row, "expires_at")? > now {
                live += 1;
            }
        }
        Ok(live)
    }

    /// The sessions of `user` live at `now`, newest first (ties broken by id in Rust, so
    /// that the order does not hang on the database's collation).
    pub(crate) async fn session_list_for_user(
        pool: &Pool<DB>,
        user: &UserId,
        now: UnixTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE user_id = $1 AND revoked = $2 AND expires_at > $3 \
             ORDER BY created_at DESC"
        ))
        .bind(user.as_str())
        .bind(false)
        .bind(codec::time(now))
        .fetch_all(pool)
        .await
        .map_err(err)?;
        let mut live = rows
            .iter()
            .map(Self::session)
            .collect::<Result<Vec<_>, _>>()?;
        portcullis_core::store::newest_first(&mut live);
        Ok(live)
    }

    pub(crate) async fn session_count_live(
        pool: &Pool<DB>,
        now: UnixTime,
        org: Option<&OrgId>,
    ) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM sessions \
             WHERE revoked = $1 AND expires_at > $2 AND ($3 IS NULL OR org_id = $3)",
        )
        .bind(false)
        .bind(codec::time(now))
        .bind(org.map(OrgId::as_str))
        .fetch_one(pool)
        .await
        .map_err(err)?;
        Ok(u64::try_from(Self::col::<i64>(&row, "n")?).unwrap_or(0))
    }

    /// Deletes the rows of `table` past their expiry: sessions (they accept nothing, revoked or
    /// not) and denied tokens (their tokens have expired anyway).
    pub(crate) async fn purge_expired(
        pool: &Pool<DB>,
        table: ExpiringTable,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let sql = match table {
            ExpiringTable::Sessions => "DELETE FROM sessions WHERE expires_at <= $1",
            ExpiringTable::DeniedTokens => "DELETE FROM denied_tokens WHERE expires_at <= $1",
        };
        let done = sqlx::query(sql)
            .bind(codec::time(now))
            .execute(pool)
            .await
            .map_err(err)?;
        Ok(DB::rows_affected(&done))
    }

    // ---- agents ----

    fn agent(row: &DB::Row) -> Result<AgentRecord, StoreError> {
        Ok(AgentRecord {
            id: Self::col::<String>(row, "id")?.into(),
            org_id: Self::col::<String>(row, "org_id")?.into(),
            name: Self::col(row, "name")?,
            status: codec::status_from(&Self::col::<String>(row, "status")?)?,
            created_at: codec::time_from("created_at", Self::col(row, "created_at")?)?,
        })
    }

    pub(crate) async fn agent_insert(pool: &Pool<DB>, a: &AgentRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agents (id, org_id, name, status, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(a.id.as_str())
        .bind(a.org_id.as_str())
        .bind(&a.name)
        .bind(codec::status(a.status))
        .bind(codec::time(a.created_at))
        .execute(pool)
        .await
        .map_err(|e| conflict_or_unavailable(e, "agent"))?;
        Ok(())
    }

    pub(crate) async fn agent_get(
        pool: &Pool<DB>,
        id: &AgentId,
    ) -> Result<Option<AgentRecord>, StoreError> {
        sqlx::query("SELECT id, org_id, name, status, created_at FROM agents WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(pool)
            .await
            .map_err(err)?
            .as_ref()
            .map(Self::agent)
            .transpose()
    }

    pub(crate) async fn agent_terminate(pool: &Pool<DB>, id: &AgentId) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE agents SET status = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(codec::status(
                portcullis_core::store::AgentStatus::Terminated,
            ))
            .execute(pool)
            .await
            .map_err(err)?;
        Ok(DB::rows_affected(&done) > 0)
    }

    pub(crate) async fn agent_count(
        pool: &Pool<DB>,
        org: Option<&OrgId>,
    ) -> Result<u64, StoreError> {
        Self::count(
            pool,
            "SELECT COUNT(*) AS n FROM agents WHERE ($1 IS NULL OR org_id = $1)",
            org,
        )
        .await
    }

    /// The agents of `org` (every org with `None`), oldest first (ties broken by id in Rust,
    /// so that the order does not hang on the database's collation).
    pub(crate) async fn agent_list(
        pool: &Pool<DB>,
        org: Option<&OrgId>,
    ) -> Result<Vec<AgentRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, org_id, name, status, created_at FROM agents \
             WHERE ($1 IS NULL OR org_id = $1) ORDER BY created_at",
        )
        .bind(org.map(OrgId::as_str))
        .fetch_all(pool)
        .await
        .map_err(err)?;
        let mut agents = rows
            .iter()
            .map(Self::agent)
            .collect::<Result<Vec<_>, _>>()?;
        portcullis_core::store::by_creation(&mut agents);
        Ok(agents)
    }

    // ---- denylist ----

    /// Denies `jti` until `expires_at`, or keeps the later expiry it already has.
    pub(crate) async fn deny(
        pool: &Pool<DB>,
        jti: &TokenId,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO denied_tokens (jti, expires_at) VALUES ($1, $2) \
             ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE excluded.expires_at > denied_tokens.expires_at",
        )
        .bind(jti.as_str())
        .bind(codec::time(expires_at))
        .execute(pool)
        .await
        .map_err(err)?;
        Ok(())
    }

    pub(crate) async fn is_denied(
        pool: &Pool<DB>,
        jti: &TokenId,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT jti FROM denied_tokens WHERE jti = $1 AND expires_at > $2")
            .bind(jti.as_str())
            .bind(codec::time(now))
            .fetch_optional(pool)
            .await
            .map_err(err)?;
        Ok(row.is_some())
    }

    // ---- users ----

    fn user(row: &DB::Row) -> Result<UserRecord, StoreError> {
        Ok(UserRecord {
            id: Self::col::<String>(row, "id")?.into(),
            email: Self::col(row, "email")?,
            password_hash: Self::col(row, "password_hash")?,
            role: Self::col(row, "role")?,
            org_id: Self::col::<String>(row, "org_id")?.into(),
            created_at: codec::time_from("created_at", Self::col(row, "created_at")?)?,
        })
    }

    pub(crate) async fn user_create(pool: &Pool<DB>, u: &UserRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, role, org_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(u.id.as_str())
        .bind(&u.email)
        .bind(&u.password_hash)
        .bind(&u.role)
        .bind(u.org_id.as_str())
        .bind(codec::time(u.created_at))
        .execute(pool)
        .await
        .map_err(|e| conflict_or_unavailable(e, "user"))?;
        Ok(())
    }

    pub(crate) async fn user_find_by_email(
        pool: &Pool<DB>,
        email: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        sqlx::query(
            "SELECT id, email, password_hash, role, org_id, created_at FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(pool)
        .await
        .map_err(err)?
        .as_ref()
        .map(Self::user)
        .transpose()
    }

    pub(crate) async fn user_get(
        pool: &Pool<DB>,
        id: &UserId,
    ) -> Result<Option<UserRecord>, StoreError> {
        sqlx::query(
            "SELECT id, email, password_hash, role, org_id, created_at FROM users WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(pool)
        .await
        .map_err(err)?
        .as_ref()
        .map(Self::user)
        .transpose()
    }

    pub(crate) async fn user_count(
        pool: &Pool<DB>,
        org: Option<&OrgId>,
    ) -> Result<u64, StoreError> {
        Self::count(
            pool,
            "SELECT COUNT(*) AS n FROM users WHERE ($1 IS NULL OR org_id = $1)",
            org,
        )
        .await
    }

    /// The users of `org` (every org with `None`), sorted by email in Rust (unique, and an
    /// order that does not hang on the database's collation).
    pub(crate) async fn user_list(
        pool: &Pool<DB>,
        org: Option<&OrgId>,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, email, password_hash, role, org_id, created_at FROM users \
             WHERE ($1 IS NULL OR org_id = $1)",
        )
        .bind(org.map(OrgId::as_str))
        .fetch_all(pool)
        .await
        .map_err(err)?;
        let mut users = rows.iter().map(Self::user).collect::<Result<Vec<_>, _>>()?;
        users.sort_by(|a, b| {
            a.email
                .cmp(&b.email)
                .then_with(|| a.id.as_str().cmp(b.id.as_str()))
        });
        Ok(users)
    }

    pub(crate) async fn user_set_password_hash(
        pool: &Pool<DB>,
        id: &UserId,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(password_hash)
            .execute(pool)
            .await
            .map_err(err)?;
        Ok(DB::rows_affected(&done) > 0)
    }

    // ---- audit log ----

    /// One transaction for the batch, in the order given.
    pub(crate) async fn audit_insert(
        pool: &Pool<DB>,
        events: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let mut tx = pool.begin().await.map_err(err)?;
        for e in events {
            sqlx::query(
                "INSERT INTO audit_log (time, actor_id, actor_kind, org_id, action, target, \
                 outcome, request_id, client) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(codec::time(e.time))
            .bind(e.actor_id.as_deref())
            .bind(e.actor_kind.as_str())
            .bind(e.org_id.as_ref().map(OrgId::as_str))
            .bind(e.action.as_str())
            .bind(e.target.as_deref())
            .bind(e.outcome.as_str())
            .bind(e.request_id.as_deref())
            .bind(e.client.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    /// At most `limit` events matching `q`, newest first (time, then id).
    pub(crate) async fn audit_query(
        pool: &Pool<DB>,
        q: &AuditQuery,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, time, actor_id, actor_kind, org_id, action, target, outcome, \
             request_id, client FROM audit_log \
             WHERE ($1 IS NULL OR org_id = $1) AND ($2 IS NULL OR action = $2) \
             AND ($3 IS NULL OR actor_id = $3) AND ($4 IS NULL OR time >= $4) \
             AND ($5 IS NULL OR time < $5 OR (time = $5 AND id < $6)) \
             ORDER BY time DESC, id DESC LIMIT $7",
        )
        .bind(q.org.as_ref().map(OrgId::as_str))
        .bind(q.action.as_deref())
        .bind(q.actor_id.as_deref())
        .bind(q.since.map(codec::time))
        .bind(q.cursor.map(|c| codec::time(c.time)))
        .bind(q.cursor.map(|c| c.id))
        .bind(limit)
        .fetch_all(pool)
        .await
        .map_err(err)?;
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    id: Self::col::<i64>(row, "id")?,
                    event: AuditEvent {
                        time: codec::time_from("time", Self::col::<i64>(row, "time")?)?,
                        actor_id: Self::col::<Option<String>>(row, "actor_id")?,
                        actor_kind: Self::col::<String>(row, "actor_kind")?,
                        org_id: Self::col::<Option<String>>(row, "org_id")?.map(OrgId::from),
                        action: Self::col::<String>(row, "action")?,
                        target: Self::col::<Option<String>>(row, "target")?,
                        outcome: Self::col::<String>(row, "outcome")?,
                        request_id: Self::col::<Option<String>>(row, "request_id")?,
                        client: Self::col::<Option<String>>(row, "client")?,
                    },
                })
            })
            .collect()
    }

    /// Deletes the events older than `before`; how many went.
    pub(crate) async fn audit_prune(pool: &Pool<DB>, before: UnixTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM audit_log WHERE time < $1")
            .bind(codec::time(before))
            .execute(pool)
            .await
            .map_err(err)?;
        Ok(DB::rows_affected(&done))
    }
}
