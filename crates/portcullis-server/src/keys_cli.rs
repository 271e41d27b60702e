//! `portcullis keys create|list|revoke`: API keys straight in the database, for bootstrapping
//! and break-glass. With REDIS_URL set, a revocation is also announced to running instances;
//! without it, a running server drops its cached copy within the cache TTL (30 s).

use portcullis::AuthError;
use portcullis::api_key::{ApiKeyRecord, KeyOwner, KeysOf};
use portcullis::ids::ApiKeyId;
use portcullis::lifecycle::{LifecycleError, NewApiKey, normalize_email};

use crate::cli::{KeysCommand, KeysCreateArgs};
use crate::settings;
use crate::state::AppState;

/// Runs one `keys` subcommand, with the server's own stores and rules.
pub async fn run(cmd: KeysCommand) -> Result<(), String> {
    let config = settings::auth_config(&settings::database_url())?;
    let state = AppState::connect(config).await?;
    let done = match cmd {
        KeysCommand::Create(args) => create(&state, args).await,
        KeysCommand::List { owner } => list(&state, owner.as_deref()).await,
        KeysCommand::Revoke { key_id } => revoke(&state, &key_id).await,
    };
    state.shutdown().await;
    done
}

/// A key for a user, within the library's bounds (at most what the user's role grants).
async fn create(s: &AppState, args: KeysCreateArgs) -> Result<(), String> {
    let email = normalize_email(&args.owner);
    let permissions = s
        .auth
        .catalog()
        .parse_all(args.permissions.iter().map(|p| p.trim()))
        .map_err(|bad| format!("unknown permission {bad:?}"))?;
    let new = NewApiKey {
        name: args.name,
        permissions,
        expires_in_secs: args.expires_in_seconds,
        rate_limit_per_minute: args.rate_limit_per_minute,
        remaining: args.remaining,
        agent_id: None,
    };
    let issued = s
        .lifecycle
        .create_api_key_for(&email, new)
        .await
        .map_err(|e| match e {
            LifecycleError::NotFound => format!("no user with email {email}"),
            LifecycleError::Auth(AuthError::InsufficientPermissions { missing, .. }) => {
                let names: Vec<_> = s.auth.catalog().names(missing).collect();
                format!("{email} does not hold: {}", names.join(", "))
            }
            other => other.to_string(),
        })?;
    let record = issued.record;
    println!(
        "created key {} ({}) for {email}",
        record.id, record.display_prefix
    );
    println!("store it now; it is never shown again:");
    println!("{}", issued.key.expose());
    Ok(())
}

async fn list(s: &AppState, owner: Option<&str>) -> Result<(), String> {
    let keys = &s.auth.stores().api_keys;
    let records: Vec<ApiKeyRecord> = match owner {
        Some(email) => {
            let email = normalize_email(email);
            let user = s
                .sql
                .users()
                .find_by_email(&email)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user with email {email}"))?;
            keys.list(&KeysOf::User(user.id))
                .await
                .map_err(|e| e.to_string())?
        }
        None => s.sql.all_api_keys().await.map_err(|e| e.to_string())?,
    };
    let catalog = s.auth.catalog();
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

/// Deletes a key: it stops working at once here and, through Redis, on every instance.
async fn revoke(s: &AppState, key_id: &str) -> Result<(), String> {
    let id = ApiKeyId::from(key_id);
    let record = s
        .auth
        .stores()
        .api_keys
        .get(&id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no key with id {key_id}"))?;
    s.auth
        .delete_api_key(&id)
        .await
        .map_err(|e| e.to_string())?;
    println!("revoked key {key_id} ({})", record.display_prefix);
    Ok(())
}
