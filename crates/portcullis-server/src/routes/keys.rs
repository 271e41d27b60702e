//! `/api-keys`: create (shown once), list, enable/disable, delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis::api_key::{self, ApiKeyRecord, KeyOwner};
use portcullis::ids::{AgentId, ApiKeyId};
use portcullis::key_issuance::{self, KeyIssueError, KeyRequest};
use portcullis::{Actor, AuthError, CurrentActor, PermissionSet};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::json::{ApiJson, ApiPath};
use crate::problem::{ApiError, ApiResult};
use crate::routes::{DEFAULT_ORG, required_text};
use crate::state::AppState;

/// `POST /api-keys`.
#[derive(Deserialize, ToSchema)]
pub struct CreateKey {
    /// A label (trimmed).
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// What the key may do: a subset of the caller's permissions.
    #[schema(schema_with = crate::openapi::schemas::permission_names)]
    pub permissions: Vec<String>,
    /// Lifetime in seconds, at most ten years; no expiry when absent (a key made by a key or a
    /// run token lives no longer than it).
    #[schema(minimum = 1, maximum = 315_360_000)]
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    pub expires_in_seconds: Option<u64>,
    /// The key's own rate limit (requests a minute); a key made by a key gets no more than it.
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    pub rate_limit_per_minute: Option<u32>,
    /// Make the key act as this agent (needs admin:write in the agent's org).
    pub agent_id: Option<String>,
}

/// The answer to `POST /api-keys`: the only time the key is shown.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key's id.
    pub key_id: String,
    /// The key itself. Store it now: it is never shown again.
    pub api_key: String,
    /// Its public prefix, for listings.
    pub prefix: String,
    /// Its permissions, sorted.
    pub permissions: Vec<&'static str>,
    /// When it stops working (unix seconds), if ever.
    pub expires_at: Option<u64>,
}

/// A key in a listing: never the key or its hash.
#[derive(Serialize, ToSchema)]
pub struct KeyInfo {
    /// The key's id.
    pub key_id: String,
    /// Its label.
    pub name: String,
    /// Its public prefix.
    pub prefix: String,
    /// Its permissions, sorted.
    pub permissions: Vec<&'static str>,
    /// When created (unix seconds).
    pub created_at: u64,
    /// When it stops working, if ever.
    pub expires_at: Option<u64>,
    /// Disabled keys are refused.
    pub enabled: bool,
    /// Its own rate limit.
    pub rate_limit_per_minute: Option<u32>,
    /// Last use (written behind, may lag a few seconds).
    pub last_used_at: Option<u64>,
    /// The agent it acts as, for agent keys.
    pub agent_id: Option<String>,
}

/// `PATCH /api-keys/{key_id}`.
#[derive(Deserialize, ToSchema)]
pub struct UpdateKey {
    /// Enable or disable the key.
    pub enabled: bool,
}

fn sorted_names(s: &AppState, set: PermissionSet) -> Vec<&'static str> {
    let mut names: Vec<_> = s.auth.catalog().names(set).collect();
    names.sort_unstable();
    names
}

fn info(s: &AppState, r: &ApiKeyRecord) -> KeyInfo {
    KeyInfo {
        key_id: r.id.to_string(),
        name: r.name.clone(),
        prefix: r.display_prefix.clone(),
        permissions: sorted_names(s, r.permissions),
        created_at: r.created_at,
        expires_at: r.expires_at,
        enabled: r.enabled,
        rate_limit_per_minute: r.rate_limit_per_minute,
        last_used_at: r.last_used_at,
        agent_id: match &r.owner {
            KeyOwner::Agent(a) => Some(a.to_string()),
            KeyOwner::User(_) => None,
        },
    }
}

#[utoipa::path(post, path = "/api-keys", tag = "api-keys", operation_id = "createApiKey", request_body = CreateKey,
    responses((status = 201, body = CreatedKey, description = "the key, shown this once",
               links(("updateApiKey" = (operation_id = "updateApiKey", parameters(("key_id" = "$response.body#/key_id")))),
                     ("deleteApiKey" = (operation_id = "deleteApiKey", parameters(("key_id" = "$response.body#/key_id")))))),
              (status = 403, description = "insufficient_permissions: more than the caller holds, or `agent_id` without admin:write (or csrf_failed)"),
              (status = 404, description = "not_found: `agent_id` names no active agent the caller can see")),
    security(("bearer" = []), ("api_key" = [])))]
/// Creates a key holding at most what the caller holds; the library's
/// [`key_issuance`] decides its bounds.
pub async fn create(
    State(s): State<AppState>,
    who: CurrentActor,
    ApiJson(req): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let name = required_text("name", &req.name, 200)?;
    let catalog = s.auth.catalog();
    let permissions = catalog
        .parse_all(req.permissions.iter().map(String::as_str))
        .map_err(|_| ApiError::bad_request("permissions: not a known permission name"))?;
    let agent = match &req.agent_id {
        None => None,
        Some(id) => Some(
            s.auth
                .stores()
                .agents
                .get(&AgentId::from(id.as_str()))
                .await?
                .ok_or(ApiError::NotFound)?,
        ),
    };
    let request = KeyRequest {
        permissions,
        expires_in_secs: req.expires_in_seconds,
        rate_limit_per_minute: req.rate_limit_per_minute,
        agent: agent.as_ref(),
    };
    let now = s.now();
    let grant = key_issuance::grant(
        &who,
        &request,
        now,
        s.auth.agent_permissions(),
        &DEFAULT_ORG.into(),
    )
    .map_err(|e| match e {
        KeyIssueError::Refused(AuthError::InsufficientPermissions { missing }) => {
            ApiError::forbidden(missing, catalog)
        }
        KeyIssueError::Refused(other) => other.into(),
        KeyIssueError::AgentNotFound => ApiError::NotFound,
        KeyIssueError::Invalid(why) => ApiError::bad_request(why),
    })?;
    let generated = api_key::generate(&s.auth.config().api_key_prefix);
    let record = ApiKeyRecord {
        id: ApiKeyId::random(),
        name,
        hash: generated.hash,
        display_prefix: generated.display_prefix.clone(),
        created_by: grant.created_by,
        owner: grant.owner,
        org_id: grant.org_id,
        permissions: grant.permissions,
        created_at: now,
        expires_at: grant.expires_at,
        enabled: true,
        rate_limit_per_minute: grant.rate_limit_per_minute,
        last_used_at: None,
    };
    s.auth.stores().api_keys.insert(record.clone()).await?;
    tracing::info!(key = %record.id, by = %record.created_by.actor, "api key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key_id: record.id.to_string(),
            api_key: generated.key.expose().to_owned(),
            prefix: record.display_prefix,
            permissions: sorted_names(&s, record.permissions),
            expires_at: record.expires_at,
        }),
    ))
}

#[utoipa::path(get, path = "/api-keys", tag = "api-keys", operation_id = "listApiKeys",
    responses((status = 200, body = [KeyInfo], description = "the keys the caller made (and, for a user, those its keys made)")),
    security(("bearer" = []), ("api_key" = [])))]
/// The keys the caller made (and, for a user, those its keys made).
pub async fn list(State(s): State<AppState>, who: CurrentActor) -> ApiResult<Json<Vec<KeyInfo>>> {
    let Some(of) = key_issuance::listing(&who) else {
        return Ok(Json(Vec::new()));
    };
    let keys = s.auth.stores().api_keys.list(&of).await?;
    Ok(Json(keys.iter().map(|r| info(&s, r)).collect()))
}

/// The key `id`, if the caller manages it; 404 otherwise (whether or not it exists).
async fn owned(s: &AppState, who: &Actor, id: &ApiKeyId) -> ApiResult<ApiKeyRecord> {
    s.auth
        .stores()
        .api_keys
        .get(id)
        .await?
        .filter(|r| key_issuance::manages(who, r))
        .ok_or(ApiError::NotFound)
}

#[utoipa::path(patch, path = "/api-keys/{key_id}", tag = "api-keys", operation_id = "updateApiKey", request_body = UpdateKey,
    params(("key_id" = String, Path, description = "the key's id", min_length = 1)),
    responses((status = 200, body = KeyInfo, description = "the key, enabled or disabled at once"),
              (status = 404, description = "not_found: not a key the caller manages")),
    security(("bearer" = []), ("api_key" = [])))]
/// Enables or disables one of the caller's keys, at once.
pub async fn update(
    State(s): State<AppState>,
    who: CurrentActor,
    ApiPath(key_id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateKey>,
) -> ApiResult<Json<KeyInfo>> {
    let id = ApiKeyId::from(key_id);
    let mut record = owned(&s, &who, &id).await?;
    if !s.auth.set_api_key_enabled(&id, req.enabled).await? {
        return Err(ApiError::NotFound);
    }
    record.enabled = req.enabled;
    Ok(Json(info(&s, &record)))
}

#[utoipa::path(delete, path = "/api-keys/{key_id}", tag = "api-keys", operation_id = "deleteApiKey",
    params(("key_id" = String, Path, description = "the key's id", min_length = 1)),
    responses((status = 204, description = "the key is dead at once"),
              (status = 404, description = "not_found: not a key the caller manages")),
    security(("bearer" = []), ("api_key" = [])))]
/// Deletes one of the caller's keys: it stops working at once.
pub async fn delete(
    State(s): State<AppState>,
    who: CurrentActor,
    ApiPath(key_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = ApiKeyId::from(key_id);
    owned(&s, &who, &id).await?;
    if !s.auth.delete_api_key(&id).await? {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}
