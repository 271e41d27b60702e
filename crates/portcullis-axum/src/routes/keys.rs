//! `/api-keys`: create (shown once), list, enable/disable, delete, reroll (a new secret, shown
//! once, for the same key).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_core::api_key::{ApiKeyRecord, KeyOwner};
use portcullis_core::ids::{AgentId, ApiKeyId};
use portcullis_core::lifecycle::{Lifecycle, NewApiKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::{ApiJson, ApiPath};
use super::{ApiError, ApiResult, LifecycleResultExt, required_text, sorted_names};
use crate::CurrentActor;

/// `POST /api-keys`.
#[derive(Deserialize, ToSchema)]
pub struct CreateKey {
    /// A label (trimmed).
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// What the key may do: a subset of the caller's permissions.
    #[schema(schema_with = super::openapi::schemas::permission_names)]
    pub permissions: Vec<String>,
    /// Lifetime in seconds, at most ten years; no expiry when absent (a key made by a key or a
    /// run token lives no longer than it).
    #[schema(minimum = 1, maximum = 315_360_000)]
    #[serde(default, deserialize_with = "super::json::whole_number")]
    pub expires_in_seconds: Option<u64>,
    /// The key's own rate limit (requests a minute); a key made by a key gets no more than it.
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    #[serde(default, deserialize_with = "super::json::whole_number")]
    pub rate_limit_per_minute: Option<u32>,
    /// Usage credits: each request the key makes takes one, and at zero it is refused with
    /// 429 `usage_exhausted` (credits never refill); unlimited when absent. A key made by a
    /// key with credits must ask for some, and takes them from that key.
    #[schema(minimum = 1, maximum = 9_007_199_254_740_991.0)]
    #[serde(default, deserialize_with = "super::json::whole_number")]
    pub remaining: Option<u64>,
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
    /// Usage credits left; null: unlimited.
    pub remaining: Option<u64>,
}

impl CreatedKey {
    /// The answer for a key just issued (created or rerolled): the one time it is shown.
    fn of(lifecycle: &Lifecycle, issued: portcullis_core::lifecycle::IssuedApiKey) -> Self {
        let record = issued.record;
        Self {
            key_id: record.id.to_string(),
            api_key: issued.key.expose().to_owned(),
            prefix: record.display_prefix,
            permissions: sorted_names(lifecycle, record.permissions),
            expires_at: record.expires_at,
            remaining: record.remaining,
        }
    }
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
    /// Last use (unix seconds; written behind, may lag a few seconds); null: never used.
    pub last_used_at: Option<u64>,
    /// Usage credits left, as counted now; null: unlimited.
    pub remaining: Option<u64>,
    /// The agent it acts as, for agent keys.
    pub agent_id: Option<String>,
}

/// `PATCH /api-keys/{key_id}`.
#[derive(Deserialize, ToSchema)]
pub struct UpdateKey {
    /// Enable or disable the key.
    pub enabled: bool,
}

/// `POST /api-keys/{key_id}/reroll`.
#[derive(Deserialize, ToSchema)]
pub struct RerollKey {
    /// How long the secret being replaced keeps working, in seconds (0: it is dead at once;
    /// at most a day).
    #[schema(value_type = u32, minimum = 0, maximum = 86_400)]
    #[serde(deserialize_with = "super::json::whole_number")]
    pub overlap_seconds: Option<u32>,
}

fn info(s: &Lifecycle, r: &ApiKeyRecord) -> KeyInfo {
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
        remaining: r.remaining,
        agent_id: match &r.owner {
            KeyOwner::Agent(a) => Some(a.to_string()),
            KeyOwner::User(_) => None,
        },
    }
}

#[utoipa::path(post, path = "/api-keys", tag = "api-keys", operation_id = "createApiKey", request_body = CreateKey,
    responses((status = 201, body = CreatedKey, description = "the key, shown this once",
               links(("updateApiKey" = (operation_id = "updateApiKey", parameters(("key_id" = "$response.body#/key_id")))),
                     ("deleteApiKey" = (operation_id = "deleteApiKey", parameters(("key_id" = "$response.body#/key_id")))),
                     ("rerollApiKey" = (operation_id = "rerollApiKey", parameters(("key_id" = "$response.body#/key_id")))))),
              (status = 400, description = "invalid_request: a field is missing, of the wrong type or out of range (`remaining` below 1 or above 2^53 - 1), or `remaining` is left out by an API key that has usage credits"),
              (status = 403, description = "insufficient_permissions: more than the caller holds, or `agent_id` without admin:write (or csrf_failed)"),
              (status = 404, description = "not_found: `agent_id` names no active agent the caller can see"),
              (status = 429, description = "usage_exhausted: the calling API key has fewer usage credits left than `remaining` asks to take from it (or none at all); rate_limited: its rate limit")),
    security(("bearer" = []), ("api_key" = [])))]
/// Creates a key holding at most what the caller holds; the library's
/// [`key_issuance`](portcullis_core::key_issuance) decides its bounds.
pub async fn create(
    State(s): State<Lifecycle>,
    who: CurrentActor,
    ApiJson(req): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let name = required_text("name", &req.name, 200)?;
    let permissions = s
        .authenticator()
        .catalog()
        .parse_all(req.permissions.iter().map(String::as_str))
        .map_err(|_| ApiError::bad_request("permissions: not a known permission name"))?;
    let issued = s
        .create_api_key(
            &who,
            NewApiKey {
                name,
                permissions,
                expires_in_secs: req.expires_in_seconds,
                rate_limit_per_minute: req.rate_limit_per_minute,
                remaining: req.remaining,
                agent_id: req.agent_id.map(AgentId::from),
            },
        )
        .await
        .api(&s)?;
    Ok((StatusCode::CREATED, Json(CreatedKey::of(&s, issued))))
}

#[utoipa::path(get, path = "/api-keys", tag = "api-keys", operation_id = "listApiKeys",
    responses((status = 200, body = [KeyInfo], description = "the keys the caller made (and, for a user, those its keys made)")),
    security(("bearer" = []), ("api_key" = [])))]
/// The keys the caller made (and, for a user, those its keys made).
pub async fn list(State(s): State<Lifecycle>, who: CurrentActor) -> ApiResult<Json<Vec<KeyInfo>>> {
    let keys = s.api_keys(&who).await.api(&s)?;
    Ok(Json(keys.iter().map(|r| info(&s, r)).collect()))
}

#[utoipa::path(patch, path = "/api-keys/{key_id}", tag = "api-keys", operation_id = "updateApiKey", request_body = UpdateKey,
    params(("key_id" = String, Path, description = "the key's id", min_length = 1)),
    responses((status = 200, body = KeyInfo, description = "the key, enabled or disabled at once"),
              (status = 404, description = "not_found: not a key the caller manages")),
    security(("bearer" = []), ("api_key" = [])))]
/// Enables or disables one of the caller's keys, at once.
pub async fn update(
    State(s): State<Lifecycle>,
    who: CurrentActor,
    ApiPath(key_id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateKey>,
) -> ApiResult<Json<KeyInfo>> {
    let record = s
        .set_api_key_enabled(&who, &ApiKeyId::from(key_id), req.enabled)
        .await
        .api(&s)?;
    Ok(Json(info(&s, &record)))
}

#[utoipa::path(delete, path = "/api-keys/{key_id}", tag = "api-keys", operation_id = "deleteApiKey",
    params(("key_id" = String, Path, description = "the key's id", min_length = 1)),
    responses((status = 204, description = "the key is dead at once"),
              (status = 404, description = "not_found: not a key the caller manages")),
    security(("bearer" = []), ("api_key" = [])))]
/// Deletes one of the caller's keys: it stops working at once.
pub async fn delete(
    State(s): State<Lifecycle>,
    who: CurrentActor,
    ApiPath(key_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.delete_api_key(&who, &ApiKeyId::from(key_id))
        .await
        .api(&s)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api-keys/{key_id}/reroll", tag = "api-keys", operation_id = "rerollApiKey", request_body = RerollKey,
    params(("key_id" = String, Path, description = "the key's id", min_length = 1)),
    responses((status = 201, body = CreatedKey, description = "the key's new secret, shown this once: the same key id, permissions, rate limit, expiry and usage credits (one counter for the old and the new secret); the secret it replaces works for `overlap_seconds` more, then is refused (401 invalid_api_key) on every instance",
               links(("updateApiKey" = (operation_id = "updateApiKey", parameters(("key_id" = "$response.body#/key_id")))),
                     ("deleteApiKey" = (operation_id = "deleteApiKey", parameters(("key_id" = "$response.body#/key_id")))),
                     ("rerollApiKey" = (operation_id = "rerollApiKey", parameters(("key_id" = "$response.body#/key_id")))))),
              (status = 400, description = "invalid_request: `overlap_seconds` missing, not a whole number, or outside 0..=86400"),
              (status = 404, description = "not_found: not a key the caller manages")),
    security(("bearer" = []), ("api_key" = [])))]
/// Gives one of the caller's keys a new secret; the old one keeps working for the overlap.
/// Rerolling again within an overlap kills the secret the first reroll kept: only the newest
/// replaced secret survives.
pub async fn reroll(
    State(s): State<Lifecycle>,
    who: CurrentActor,
    ApiPath(key_id): ApiPath<String>,
    ApiJson(req): ApiJson<RerollKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let overlap = req.overlap_seconds.ok_or_else(|| {
        ApiError::bad_request("overlap_seconds: must be a whole number from 0 to 86400")
    })?;
    let issued = s
        .reroll_api_key(&who, &ApiKeyId::from(key_id), u64::from(overlap))
        .await
        .api(&s)?;
    Ok((StatusCode::CREATED, Json(CreatedKey::of(&s, issued))))
}
