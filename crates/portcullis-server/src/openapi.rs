//! `/openapi.json`, generated from the handlers' annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{admin, agents, auth, keys, meta, resources};

#[derive(OpenApi)]
#[openapi(
    info(title = "Portcullis sample server", description = "shared/CONTRACT.md, as served."),
    paths(
        meta::healthz, meta::readyz, meta::jwks,
        auth::login, auth::refresh, auth::logout, auth::whoami, auth::change_password,
        admin::create_user, admin::stats, admin::revoke_sessions,
        keys::create, keys::list, keys::update, keys::delete,
        agents::create, agents::create_run, agents::terminate,
        resources::create_session, resources::list_sessions, resources::get_session,
        resources::update_session, resources::delete_session,
        resources::create_memory, resources::list_memories, resources::search_memories,
        resources::get_memory, resources::update_memory, resources::delete_memory,
    ),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

/// The two ways to authenticate: a bearer JWT (or an API key as bearer), and `X-API-Key`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_names_both_security_schemes_and_every_contract_path() {
        let doc = serde_json::to_value(document()).unwrap();
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["api_key"]["name"], "X-API-Key");
        for path in [
            "/auth/login",
            "/auth/refresh",
            "/api-keys/{key_id}",
            "/agents/{id}/runs",
            "/api/v1/memories/search",
            "/admin/users/{id}/revoke-sessions",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} missing");
        }
    }
}
