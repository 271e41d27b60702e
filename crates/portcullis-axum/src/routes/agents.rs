//! `/agents`: register and list agents, mint run tokens, terminate.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_core::ids::{AgentId, OrgId};
use portcullis_core::lifecycle::Lifecycle;
use portcullis_core::seed::{AdminRead, AdminWrite};
use portcullis_core::store::{AgentRecord, AgentStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::{ApiJson, ApiPath};
use super::{ApiResult, LifecycleResultExt};
use crate::RequirePermissions;

/// `POST /agents`.
#[derive(Deserialize, ToSchema)]
pub struct CreateAgent {
    /// A label (trimmed).
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Its org; the caller's when absent. Another org is 403 `org_forbidden` unless the caller
    /// acts in every org.
    #[schema(min_length = 1, max_length = 200)]
    pub org_id: Option<String>,
}

/// A registered agent.
#[derive(Serialize, ToSchema)]
pub struct AgentInfo {
    /// Its id (the `sub` of its run tokens).
    pub agent_id: String,
    /// Its org (the `company_id` of its run tokens).
    pub org_id: String,
    /// `active`, or `terminated` (in `GET /agents`).
    pub status: &'static str,
    /// Its label.
    pub name: String,
}

/// `POST /agents/{id}/runs`.
#[derive(Deserialize, ToSchema)]
pub struct CreateRun {
    /// What runs the agent (e.g. `claude_local`; trimmed).
    #[schema(min_length = 1, max_length = 100)]
    pub adapter_type: String,
}

/// A fresh run token.
#[derive(Serialize, ToSchema)]
pub struct RunToken {
    /// The run's id.
    pub run_id: String,
    /// The run token (JWT, agent secret and audience).
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

#[utoipa::path(post, path = "/agents", tag = "agents", operation_id = "createAgent", request_body = CreateAgent,
    responses((status = 201, body = AgentInfo, description = "the agent",
               links(("createAgentRun" = (operation_id = "createAgentRun", parameters(("id" = "$response.body#/agent_id")))),
                     ("terminateAgent" = (operation_id = "terminateAgent", parameters(("id" = "$response.body#/agent_id")))))),
              (status = 403, description = "insufficient_permissions: needs admin:write; org_forbidden: another org (or csrf_failed)")),
    security(("bearer" = []), ("api_key" = [])))]
/// Registers an agent.
pub async fn create(
    State(s): State<Lifecycle>,
    who: RequirePermissions<AdminWrite>,
    ApiJson(req): ApiJson<CreateAgent>,
) -> ApiResult<(StatusCode, Json<AgentInfo>)> {
    // The lifecycle checks the name and the org (in that order, after the permission).
    let org_id = req.org_id.map(OrgId::from);
    let agent = s
        .create_agent(&who, req.name, org_id.as_ref())
        .await
        .api(&s)?;
    Ok((StatusCode::CREATED, Json(AgentInfo::from(agent))))
}

impl From<AgentRecord> for AgentInfo {
    fn from(a: AgentRecord) -> Self {
        Self {
            agent_id: a.id.to_string(),
            org_id: a.org_id.to_string(),
            status: match a.status {
                AgentStatus::Active => "active",
                AgentStatus::Terminated => "terminated",
            },
            name: a.name,
        }
    }
}

#[utoipa::path(get, path = "/agents", tag = "agents", operation_id = "listAgents",
    responses((status = 200, body = [AgentInfo], description = "the agents of the caller's org (every org for the board and a superadmin), active and terminated, oldest first"),
              (status = 403, description = "insufficient_permissions: needs admin:read")),
    security(("bearer" = []), ("api_key" = [])))]
/// The agents of the caller's org.
pub async fn list(
    State(s): State<Lifecycle>,
    who: RequirePermissions<AdminRead>,
) -> ApiResult<Json<Vec<AgentInfo>>> {
    let agents = s.agents_in_scope(&who).await.api(&s)?;
    Ok(Json(agents.into_iter().map(AgentInfo::from).collect()))
}

#[utoipa::path(post, path = "/agents/{id}/runs", tag = "agents", operation_id = "createAgentRun", request_body = CreateRun,
    params(("id" = String, Path, description = "the agent's id", min_length = 1)),
    responses((status = 201, body = RunToken, description = "a fresh agent run token"),
              (status = 403, description = "insufficient_permissions: needs admin:write (or csrf_failed)"),
              (status = 404, description = "not_found: no such agent, or another org's"),
              (status = 409, description = "conflict: the agent is terminated")),
    security(("bearer" = []), ("api_key" = [])))]
/// Mints a run token for an agent.
pub async fn create_run(
    State(s): State<Lifecycle>,
    who: RequirePermissions<AdminWrite>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<CreateRun>,
) -> ApiResult<(StatusCode, Json<RunToken>)> {
    // The lifecycle checks the adapter type before it looks the agent up.
    let run = s
        .start_run(&who, &AgentId::from(id), &req.adapter_type)
        .await
        .api(&s)?;
    Ok((
        StatusCode::CREATED,
        Json(RunToken {
            run_id: run.run_id.to_string(),
            token: run.token.expose().to_owned(),
            expires_in: run.expires_in,
        }),
    ))
}

#[utoipa::path(post, path = "/agents/{id}/terminate", tag = "agents", operation_id = "terminateAgent",
    params(("id" = String, Path, description = "the agent's id", min_length = 1)),
    responses((status = 204, description = "its tokens and keys are dead at once (401 agent_terminated)"),
              (status = 403, description = "insufficient_permissions: needs admin:write (or csrf_failed)"),
              (status = 404, description = "not_found: no such agent, or another org's")),
    security(("bearer" = []), ("api_key" = [])))]
/// Terminates an agent: its run tokens and keys stop working at once.
pub async fn terminate(
    State(s): State<Lifecycle>,
    who: RequirePermissions<AdminWrite>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.terminate_agent(&who, &AgentId::from(id)).await.api(&s)?;
    Ok(StatusCode::NO_CONTENT)
}
