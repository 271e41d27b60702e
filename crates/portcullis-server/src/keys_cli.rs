//! `portcullis keys create|list|revoke`: API keys straight in the database, for bootstrapping
//! and break-glass. With REDIS_URL set, a revocation is also announced to running instances;
//! without it, a running server drops its cached copy within the cache TTL (30 s).

use portcullis::api_key::{self, ApiKeyRecord, KeyCreator, KeyOwner, KeysOf};
use portcullis::cache::Invalidation;
use portcullis::ids::ApiKeyId;
use portcullis::redis::RedisStores;
use portcullis::sql::{SqlPool, SqlStores};
use portcullis::{PermissionCatalog, StoreError};
use sqlx::Row as _;

use crate::cli::{KeysCommand, KeysCreateArgs};
use crate::data::{err, on_pool};
use crate::settings;
use portcullis::lifecycle::normalize_email;

/// Runs one `keys` subcommand.
pub async fn run(cmd: KeysCommand) -> Result<(), String> {
    let url = settings::database_url();
    let sql = SqlStores::connect(&url).await.map_err(|e| e.to_string())?;
    sql.migrate().await.map_err(|e| e.to_string())?;
    match cmd {
        KeysCommand::Create(args) => create(&sql, args).await,
        KeysCommand::List { owner } => list(&sql, owner.as_deref()).await,
        KeysCommand::Revoke { key_id } => revoke(&sql, &key_id).await,
    }
}

async fn create(sql: &SqlStores, args: KeysCreateArgs) -> Result<(), String> {
    let email = normalize_email(&args.owner);
    let owner = sql
        .users()
        .find_by_email(&email)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user with email {email}"))?;
    let config = settings::auth_config(&settings::database_url())?;
    let catalog = PermissionCatalog::seed();
    let permissions = catalog
        .parse_all(args.permissions.iter().map(|p| p.trim()))
        .map_err(|bad| format!("unknown permission {bad:?}"))?;
    let held = config
        .roles
        .get(&owner.role)
        .unwrap_or(portcullis::PermissionSet::EMPTY);
    let missing = held.missing(permissions);
    if !missing.is_empty() {
        let names: Vec<_> = catalog.names(missing).collect();
        return Err(format!(
            "{email} (role {}) does not hold: {}",
            owner.role,
            names.join(", ")
        ));
    }
    if args.rate_limit_per_minute == Some(0) {
        return Err("--rate-limit-per-minute must be at least 1".into());
    }
    let now = portcullis::Clock::now(&portcullis::SystemClock);
    let generated = api_key::generate(&config.api_key_prefix);
    let record = ApiKeyRecord {
        id: ApiKeyId::random(),
        name: args.name,
        hash: generated.hash,
        display_prefix: generated.display_prefix,
        created_by: KeyCreator::user(owner.id.clone()),
        owner: KeyOwner::User(owner.id.clone()),
        org_id: owner.org_id.clone(),
        permissions,
        created_at: now,
        expires_at: args.expires_in_seconds.map(|s| now.saturating_add(s)),
        enabled: true,
        rate_limit_per_minute: args.rate_limit_per_minute,
        last_used_at: None,
    };
    sql.stores()
        .api_keys
        .insert(record.clone())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "created key {} ({}) for {email}",
        record.id, record.display_prefix
    );
    println!("store it now; it is never shown again:");
    println!("{}", generated.key.expose());
    Ok(())
}

async fn all_key_ids(pool: &SqlPool) -> Result<Vec<String>, StoreError> {
    on_pool!(pool, |p| {
        let rows = sqlx::query("SELECT id FROM api_keys ORDER BY created_at, id")
            .fetch_all(p)
            .await
            .map_err(err)?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("id").map_err(err))
            .collect::<Result<Vec<_>, _>>()
    })
}

async fn list(sql: &SqlStores, owner: Option<&str>) -> Result<(), String> {
    let keys = sql.stores().api_keys;
    let records: Vec<ApiKeyRecord> = match owner {
        Some(email) => {
            let email = normalize_email(email);
            let user = sql
                .users()
                .find_by_email(&email)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user with email {email}"))?;
            keys.list(&KeysOf::User(user.id))
                .await
                .map_err(|e| e.to_string())?
        }
        None => {
            let mut out = Vec::new();
            for id in all_key_ids(sql.pool()).await.map_err(|e| e.to_string())? {
                if let Some(r) = keys
                    .get(&ApiKeyId::from(id))
                    .await
                    .map_err(|e| e.to_string())?
                {
                    out.push(r);
                }
            }
            out
        }
    };
    let catalog = PermissionCatalog::seed();
    println!("id\tprefix\tname\towner\tenabled\tpermissions");
    for r in records {
        let owner = match &r.owner {
            KeyOwner::User(u) => format!("user:{u}"),
            KeyOwner::Agent(a) => format!("agent:{a}"),
        };
        let perms: Vec<_> = catalog.names(r.permissions).collect();
        println!(
            "{}\t{}\t{}\t{owner}\t{}\t{}",
            r.id,
            r.display_prefix,
            r.name,
            r.enabled,
            perms.join(",")
        );
    }
    Ok(())
}

async fn revoke(sql: &SqlStores, key_id: &str) -> Result<(), String> {
    let keys = sql.stores().api_keys;
    let id = ApiKeyId::from(key_id);
    let record = keys
        .get(&id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no key with id {key_id}"))?;
    keys.delete(&id).await.map_err(|e| e.to_string())?;
    if let Some(url) = settings::redis_url() {
        let redis = RedisStores::connect(&url, &settings::redis_prefix())
            .await
            .map_err(|e| e.to_string())?;
        redis
            .invalidator()
            .send(&Invalidation::ApiKey(record.hash))
            .await
            .map_err(|e| e.to_string())?;
    }
    println!("revoked key {key_id} ({})", record.display_prefix);
    Ok(())
}
