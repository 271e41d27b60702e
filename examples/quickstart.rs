//! A tour of the core in one run: configuration, permissions, tokens, API keys and refresh
//! rotation. `cargo run --example quickstart`
//!
//! Secrets and tokens are never printed: only their shapes and the decisions made on them.

use std::sync::Arc;

use portcullis::api_key::{self, ApiKeyRecord, KeyOwner};
use portcullis::ids::{ApiKeyId, OrgId, SessionId, UserId};
use portcullis::session::SessionRecord;
use portcullis::store::{
    ApiKeyStore, MemoryApiKeyStore, MemorySessionStore, RefreshResult, SessionStore,
};
use portcullis::token::AccessGrant;
use portcullis::{
    Actor, AuthConfig, AuthMethod, PermissionCatalog, PermissionList, UserActor, seed::*,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Development mode: no secrets configured, so they are generated (with a warning).
    let config = AuthConfig::from_env()?;
    let catalog = PermissionCatalog::seed();
    println!(
        "env: {:?}; user token key: {:?}",
        config.env,
        config.user_keys.active()
    );

    // A user logs in: a session and an access token.
    let tokens = config.user_tokens();
    let (user, org, sid) = (
        UserId::random(),
        OrgId::from("default"),
        SessionId::random(),
    );
    let refresh = tokens.mint_refresh(&user, &sid, false)?;
    let sessions = MemorySessionStore::default();
    sessions
        .create(SessionRecord::new(
            sid.clone(),
            user.clone(),
            org.clone(),
            api_key::KeyHash::of(refresh.token.expose().as_bytes()),
            portcullis::Clock::now(&portcullis::SystemClock),
            tokens.refresh_lifetime(false),
            false,
        ))
        .await?;
    let access = tokens.mint_access(AccessGrant {
        user_id: &user,
        email: "admin@example.com",
        role: "user",
        org_id: &org,
        session_id: &sid,
    })?;
    let verified = tokens.verify_access(access.token.expose())?;
    println!(
        "access token verified: sub={} role={} expires_in={}s",
        verified.user_id, verified.role, access.expires_in
    );

    // The actor and what it may do.
    let role = verified.role.as_str();
    let actor = Actor::User(Arc::new(UserActor {
        id: user.clone(),
        org_id: org.clone(),
        role: role.into(),
        permissions: config.roles.get(role).unwrap_or_default(),
        all_orgs: config.roles.acts_in_every_org(role),
        session_id: sid.clone(),
        method: AuthMethod::Jwt,
    }));
    println!(
        "actor {} may create memories: {}; may administer: {}; missing for admin:write: {:?}",
        actor.kind().as_str(),
        actor.has::<MemoryCreate>(),
        actor.has::<AdminWrite>(),
        catalog
            .names(actor.permissions().missing(AdminWrite::SET))
            .collect::<Vec<_>>()
    );

    // An API key: shown once, stored as its hash, checked by checksum before any lookup.
    let generated = api_key::generate(&config.api_key_prefix);
    let keys = MemoryApiKeyStore::default();
    keys.insert(ApiKeyRecord {
        id: ApiKeyId::random(),
        name: "ci".into(),
        hash: generated.hash,
        display_prefix: generated.display_prefix.clone(),
        created_by: user.clone().into(),
        owner: KeyOwner::User(user.clone()),
        org_id: org.clone(),
        permissions: <(MemoryRead, MemoryList)>::SET,
        created_at: 0,
        expires_at: None,
        enabled: true,
        rate_limit_per_minute: Some(60),
        last_used_at: None,
        remaining: None,
    })
    .await?;
    let presented = api_key::parse(generated.key.expose(), &config.api_key_prefix)?;
    let record = keys.find_by_hash(&presented.hash()).await?;
    println!(
        "api key {}… found: {}",
        generated.display_prefix,
        record.is_some()
    );
    let typo = generated
        .key
        .expose()
        .replacen('A', "B", 1)
        .replacen('a', "b", 1);
    println!(
        "a mistyped key is refused before lookup: {:?}",
        api_key::parse(&typo, &config.api_key_prefix).err()
    );

    // Refresh rotation, and reuse detection.
    let next = tokens.mint_refresh(&user, &sid, false)?;
    let now = portcullis::Clock::now(&portcullis::SystemClock);
    let old = api_key::KeyHash::of(refresh.token.expose().as_bytes());
    let new = api_key::KeyHash::of(next.token.expose().as_bytes());
    let rotated = sessions.refresh(&sid, &old, new, now, 0).await?;
    println!(
        "refresh rotates: {}",
        matches!(rotated, RefreshResult::Rotated(_))
    );
    let replay = sessions.refresh(&sid, &old, new, now, 0).await?;
    println!(
        "the old refresh token presented again revokes the session: {}",
        replay == RefreshResult::ReuseDetected
    );
    Ok(())
}
