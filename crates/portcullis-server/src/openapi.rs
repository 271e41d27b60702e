//! `/openapi.json`: the demo's own routes, merged with the library's and completed by
//! [`portcullis::routes::openapi::document`].

use std::sync::LazyLock;

use serde_json::Value;
use utoipa::OpenApi;

use crate::routes::{PUBLIC_PATHS, meta, resources};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis sample server",
        description = "shared/CONTRACT.md, as served."
    ),
    paths(
        meta::index,
        meta::admin_console,
        meta::healthz,
        meta::readyz,
        meta::openapi,
        resources::create_session,
        resources::list_sessions,
        resources::get_session,
        resources::update_session,
        resources::delete_session,
        resources::create_memory,
        resources::list_memories,
        resources::search_memories,
        resources::get_memory,
        resources::update_memory,
        resources::delete_memory,
    )
)]
struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static Value {
    static DOC: LazyLock<Value> =
        LazyLock::new(|| portcullis::routes::openapi::document(ApiDoc::openapi(), &PUBLIC_PATHS));
    &DOC
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis::routes::openapi::NON_BLANK;

    #[test]
    fn the_document_holds_the_demo_and_the_library_routes_with_their_rules() {
        let doc = document();
        for path in [
            "/auth/login",
            "/api-keys/{key_id}",
            "/api/v1/memories/search",
            "/",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} missing");
        }
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["NewMemory"]["properties"]["content"]["pattern"],
            NON_BLANK
        );
        let create = &doc["paths"]["/api/v1/sessions"]["post"];
        for status in ["400", "401", "403", "413", "415", "429", "503"] {
            assert!(
                create["responses"][status].is_object(),
                "createSession lacks {status}"
            );
        }
        assert_eq!(
            create["responses"]["201"]["links"]["getSession"]["operationId"],
            "getSession"
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["api_key"]["name"],
            "X-API-Key"
        );
    }
}
