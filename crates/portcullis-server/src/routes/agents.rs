//! `/agents`: register agents, mint run tokens, terminate.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis::ids::{AgentId, RunId};
use portcullis::seed::AdminWrite;
use portcullis::store::{AgentRecord, AgentStatus};
use portcullis::token::AgentGrant;
use portcullis::{Actor, RequirePermissions};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::json::{ApiJson, ApiPath};
use crate::problem::{ApiError, ApiResult};
use crate::routes::{required_text, target_org};
use crate::state::AppState;

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
    /// `active`.
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
    State(s): State<AppState>,
    who: RequirePermissions<AdminWrite>,
    ApiJson(req): ApiJson<CreateAgent>,
) -> ApiResult<(StatusCode, Json<AgentInfo>)> {
    let name = required_text("name", &req.name, 200)?;
    let org_id = target_org(&who, req.org_id.as_deref())?;
    let agent = AgentRecord {
        id: AgentId::random(),
        org_id,
        name,
        status: AgentStatus::Active,
        created_at: s.now(),
    };
    s.auth.stores().agents.insert(agent.clone()).await?;
    Ok((
        StatusCode::CREATED,
        Json(AgentInfo {
            agent_id: agent.id.to_string(),
            org_id: agent.org_id.to_string(),
            status: "active",
            name: agent.name,
        }),
    ))
}

/// The agent `id`; 404 when there is none, or when it is of an org the caller does not act in.
async fn agent(s: &AppState, who: &Actor, id: &str) -> ApiResult<AgentRecord> {
    s.auth
        .stores()
        .agents
        .get(&AgentId::from(id))
        .await?
        .filter(|a| who.can_access_org(&a.org_id))
        .ok_or(ApiError::NotFound)
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
    State(s): State<AppState>,
    who: RequirePermissions<AdminWrite>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<CreateRun>,
) -> ApiResult<(StatusCode, Json<RunToken>)> {
    let adapter_type = required_text("adapter_type", &req.adapter_type, 100)?;
    let agent = agent(&s, &who, &id).await?;
    if agent.status == AgentStatus::Terminated {
        return Err(ApiError::Conflict("the agent is terminated"));
    }
    let run_id = RunId::random();
    let minted = s
        .auth
        .agent_tokens()
        .mint(AgentGrant {
            agent_id: &agent.id,
            company_id: &agent.org_id,
            adapter_type: &adapter_type,
            run_id: &run_id,
        })
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        Json(RunToken {
            run_id: run_id.to_string(),
            token: minted.token.expose().to_owned(),
            expires_in: minted.expires_in,
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
    State(s): State<AppState>,
    who: RequirePermissions<AdminWrite>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let agent = agent(&s, &who, &id).await?;
    s.auth.terminate_agent(&agent.id).await?;
    tracing::info!(agent = %agent.id, "agent terminated");
    Ok(StatusCode::NO_CONTENT)
}
