//! The OpenAPI document of these routes ([`PortcullisApi`]), and [`document`]: an app's own
//! utoipa document merged with it, then completed with what the shared parts answer on every
//! route, so that the document says what the server does without each annotation repeating it:
//!
//! - the auth layer: 401, 429 and 503 on every protected route (a missing or bad credential, a
//!   key's rate limit or spent usage credits, an unreachable store), and 403 `csrf_failed` on its unsafe methods;
//! - [`ApiJson`](super::ApiJson): 400, 413 and 415 on every route that takes a body;
//! - [`ApiPath`](super::ApiPath) and [`ApiQuery`](super::ApiQuery): 400 on routes with
//!   parameters, and 404 for an id that is not there (or is another org's);
//! - the extractors: no NUL character in any text; [`required_text`](super::required_text): a text field with
//!   `minLength: 1` and a `maxLength` is trimmed first, so it must hold a non-whitespace character.
//!
//! Every error is `application/problem+json`, one `Problem` schema narrowed per status (its
//! `status` and the `code`s that status carries), with the headers the renderer sets.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, agents, auth, keys};

/// The routes of [`all`](super::all), their schemas and the two security schemes (`bearer`,
/// `api_key`). Merge it into the app's document with [`document`].
#[derive(OpenApi)]
#[openapi(
    paths(
        auth::login, auth::refresh, auth::logout, auth::whoami, auth::change_password, auth::jwks,
        auth::list_sessions, auth::end_session,
        admin::create_user, admin::list_users, admin::stats, admin::audit, admin::revoke_sessions,
        admin::user_sessions,
        keys::create, keys::list, keys::update, keys::delete, keys::reroll,
        agents::create, agents::list, agents::create_run, agents::terminate,
    ),
    modifiers(&SecuritySchemes)
)]
pub struct PortcullisApi;

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

/// `app` (the application's own routes) merged with [`PortcullisApi`] and completed (see the
/// module docs); `public_paths` are those the layer lets through without credentials.
///
/// ```
/// let doc = portcullis_axum::routes::openapi::document(
///     utoipa::openapi::OpenApiBuilder::new().build(),
///     &portcullis_axum::routes::PUBLIC_PATHS,
/// );
/// assert!(doc["paths"]["/auth/login"]["post"].is_object());
/// ```
pub fn document(mut app: utoipa::openapi::OpenApi, public_paths: &[&str]) -> Value {
    app.merge(PortcullisApi::openapi());
    // Serializing utoipa's own types cannot fail (string keys, no non-finite floats).
    let mut doc = serde_json::to_value(app).unwrap_or_default();
    complete(&mut doc, public_paths);
    doc
}

/// No NUL anywhere in a text (json.rs refuses it in bodies, paths and queries alike).
pub const NO_NUL: &str = r"^[^\u0000]*$";

/// What `routes::required_text` accepts: no NUL, and at least one character that is not
/// whitespace as Rust's `str::trim` sees it (Unicode `White_Space`), spelled out because `\s`
/// differs between regex dialects.
pub const NON_BLANK: &str = r"^[^\u0000]*[^\u0000\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$";

/// One error status: its response component, the codes it carries, and its headers
/// (`name`, always present?, description).
struct ErrorStatus {
    status: u16,
    component: &'static str,
    description: &'static str,
    codes: &'static [&'static str],
    headers: &'static [(&'static str, bool, &'static str)],
}

/// Every error status a route of the contract answers (405 and 500 are not a route's: the
/// first is for methods no operation has, the second a bug).
const ERRORS: &[ErrorStatus] = &[
    ErrorStatus {
        status: 400,
        component: "BadRequest",
        description: "invalid_request: bad JSON, a wrong type, an empty or too long field, a NUL \
                      character in any text; the detail names the field, never the value",
        codes: &["invalid_request"],
        headers: &[],
    },
    ErrorStatus {
        status: 401,
        component: "Unauthorized",
        description: "no credential, or a bad one (any bad credential among several)",
        codes: &[
            "missing_credentials",
            "invalid_credentials",
            "invalid_token",
            "token_expired",
            "token_revoked",
            "wrong_token_type",
            "invalid_api_key",
            "api_key_expired",
            "api_key_disabled",
            "agent_terminated",
        ],
        headers: &[(
            "WWW-Authenticate",
            true,
            r#"`Bearer realm="portcullis"`, with `error="invalid_token"` when a credential was presented"#,
        )],
    },
    ErrorStatus {
        status: 403,
        component: "Forbidden",
        description: "insufficient_permissions, csrf_failed (a cookie on an unsafe method without \
                      X-CSRF-Token), org_forbidden or wrong_actor_kind",
        codes: &[
            "insufficient_permissions",
            "csrf_failed",
            "org_forbidden",
            "wrong_actor_kind",
        ],
        headers: &[(
            "WWW-Authenticate",
            false,
            r#"`Bearer error="insufficient_scope", scope="<missing permissions>"` on insufficient_permissions"#,
        )],
    },
    ErrorStatus {
        status: 404,
        component: "NotFound",
        description: "not_found: no such id, or another org's",
        codes: &["not_found"],
        headers: &[],
    },
    ErrorStatus {
        status: 409,
        component: "Conflict",
        description: "conflict",
        codes: &["conflict"],
        headers: &[],
    },
    ErrorStatus {
        status: 413,
        component: "PayloadTooLarge",
        description: "payload_too_large: the body is over 64 KiB",
        codes: &["payload_too_large"],
        headers: &[],
    },
    ErrorStatus {
        status: 415,
        component: "UnsupportedMediaType",
        description: "unsupported_media_type: the body is not `application/json`",
        codes: &["unsupported_media_type"],
        headers: &[],
    },
    ErrorStatus {
        status: 429,
        component: "RateLimited",
        description: "rate_limited: the API key's rate limit, or the password checks of one email; \
                      usage_exhausted: the API key's usage credits are spent (they never refill, \
                      so it carries no Retry-After or RateLimit-* header)",
        codes: &["rate_limited", "usage_exhausted"],
        headers: &[
            ("Retry-After", false, "seconds to wait (rate_limited only)"),
            (
                "RateLimit-Limit",
                false,
                "requests allowed in the window (rate_limited only)",
            ),
            (
                "RateLimit-Remaining",
                false,
                "requests left in the window (rate_limited only)",
            ),
            (
                "RateLimit-Reset",
                false,
                "seconds until the window resets (rate_limited only)",
            ),
        ],
    },
    ErrorStatus {
        status: 503,
        component: "Unavailable",
        description: "auth_unavailable: a store cannot be reached (the server fails closed), or \
                      it is too busy checking passwords",
        codes: &["auth_unavailable"],
        headers: &[("Retry-After", true, "seconds to wait")],
    },
];

fn error_status(status: u16) -> Option<&'static ErrorStatus> {
    ERRORS.iter().find(|e| e.status == status)
}

/// The `Problem` schema every error body follows.
fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "An RFC 9457 problem; `code` is stable, `detail` never holds a value the client sent",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "format": "int32", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "code": {"type": "string"}
        }
    })
}

/// The content and headers of an error response of `e`'s status.
fn error_parts(e: &ErrorStatus) -> (Value, Value) {
    let content = json!({
        "application/problem+json": {
            "schema": {
                "allOf": [
                    {"$ref": "#/components/schemas/Problem"},
                    {"properties": {"status": {"const": e.status}, "code": {"enum": e.codes}}}
                ]
            }
        }
    });
    let headers: Map<String, Value> = e
        .headers
        .iter()
        .map(|(name, required, description)| {
            let schema = if name.starts_with("RateLimit") || *name == "Retry-After" {
                json!({"type": "integer", "minimum": 0})
            } else {
                json!({"type": "string"})
            };
            (
                (*name).to_owned(),
                json!({"required": required, "description": description, "schema": schema}),
            )
        })
        .collect();
    (content, Value::Object(headers))
}

const METHODS: [&str; 5] = ["get", "put", "post", "patch", "delete"];

/// Adds the shared parts' statuses, the problem schema and the text rules (see the module docs).
fn complete(doc: &mut Value, public_paths: &[&str]) {
    let mut body_schemas = BTreeSet::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(op) = item.get_mut(method) {
                    complete_operation(path, method, op, public_paths, &mut body_schemas);
                }
            }
        }
    }
    let components = doc
        .as_object_mut()
        .map(|d| d.entry("components").or_insert_with(|| json!({})));
    let Some(components) = components.and_then(Value::as_object_mut) else {
        return;
    };
    let schemas = components
        .entry("schemas")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(schemas) = schemas {
        schemas.insert("Problem".into(), problem_schema());
        schemas.insert("JsonWithoutNul".into(), json_without_nul());
        for name in &body_schemas {
            if let Some(schema) = schemas.get_mut(name) {
                constrain_text(schema);
            }
        }
    }
    let responses = components
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(responses) = responses {
        for e in ERRORS {
            let (content, headers) = error_parts(e);
            responses.insert(
                e.component.into(),
                json!({"description": e.description, "content": content, "headers": headers}),
            );
        }
    }
}

fn complete_operation(
    path: &str,
    method: &str,
    op: &mut Value,
    public_paths: &[&str],
    body_schemas: &mut BTreeSet<String>,
) {
    let protected = !public_paths.contains(&path);
    let has_param = |op: &Value, place: &str| {
        op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["in"] == place))
    };
    let mut statuses = BTreeSet::new();
    if op.get("requestBody").is_some() {
        statuses.extend([400, 413, 415]);
    }
    if has_param(op, "path") {
        statuses.extend([400, 404]);
    }
    if has_param(op, "query") {
        statuses.insert(400);
    }
    if protected {
        statuses.extend([401, 429, 503]);
        if method != "get" {
            statuses.insert(403);
        }
    }
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params {
            if let Some(schema) = p.get_mut("schema") {
                constrain_string(schema);
            }
        }
    }
    if let Some(content) = op.pointer_mut("/requestBody/content/application~1json/schema") {
        unwrap_optional_body(content);
        match content.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                body_schemas.insert(r.trim_start_matches("#/components/schemas/").to_owned());
            }
            None => constrain_text(content),
        }
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for status in statuses {
        if let Some(e) = error_status(status) {
            responses.entry(status.to_string()).or_insert_with(
                || json!({"$ref": format!("#/components/responses/{}", e.component)}),
            );
        }
    }
    // An annotation that names an error status says when it happens; the body and headers are
    // the shared ones.
    for (status, response) in responses.iter_mut() {
        camel_case_links(response);
        let Some(e) = status.parse().ok().and_then(error_status) else {
            continue;
        };
        if let Some(r) = response.as_object_mut().filter(|r| !r.contains_key("$ref")) {
            let (content, headers) = error_parts(e);
            r.insert("content".into(), content);
            r.insert("headers".into(), headers);
        }
    }
}

/// utoipa writes an optional body (`Option<T>`) as "`null` or `T`"; what is optional is the
/// body itself (`required: false`), and a body `null` is refused like any other non-object.
fn unwrap_optional_body(schema: &mut Value) {
    let Some(branches) = schema.get("oneOf").and_then(Value::as_array) else {
        return;
    };
    let mut rest = branches.iter().filter(|b| b["type"] != "null");
    if let (Some(only), None, 2) = (rest.next(), rest.next(), branches.len()) {
        *schema = only.clone();
    }
}

/// utoipa 5.5 serializes a Link's fields in snake case (`operation_id`); OpenAPI's are camel case.
fn camel_case_links(response: &mut Value) {
    let Some(links) = response.get_mut("links").and_then(Value::as_object_mut) else {
        return;
    };
    for link in links.values_mut().filter_map(Value::as_object_mut) {
        for (from, to) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(v) = link.remove(from) {
                link.insert(to.into(), v);
            }
        }
    }
}

/// Any JSON value with no NUL in any of its texts or member names: what a body may hold beyond
/// the members it names (serde skips them, json.rs still refuses a NUL in them).
fn json_without_nul() -> Value {
    let any = json!({"$ref": "#/components/schemas/JsonWithoutNul"});
    json!({
        "description": "Any JSON without a NUL character in a text or a member name",
        "anyOf": [
            {"type": ["null", "boolean", "number"]},
            {"type": "string", "pattern": NO_NUL},
            {"type": "array", "items": any},
            {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": any}
        ]
    })
}

/// Applies the text rules to every string property of a request body schema (and of its
/// arrays' items), and to the members it does not name.
fn constrain_text(schema: &mut Value) {
    if let Some(obj) = schema
        .as_object_mut()
        .filter(|o| o.contains_key("properties"))
    {
        obj.entry("propertyNames")
            .or_insert_with(|| json!({"pattern": NO_NUL}));
        obj.entry("additionalProperties")
            .or_insert_with(|| json!({"$ref": "#/components/schemas/JsonWithoutNul"}));
    }
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for prop in props.values_mut() {
            constrain_string(prop);
            if let Some(items) = prop.get_mut("items") {
                constrain_string(items);
            }
        }
    }
}

/// A string (or nullable string) without a pattern or an enum gets [`NON_BLANK`] when it has
/// `required_text`'s shape (`minLength: 1` and a `maxLength`), [`NO_NUL`] otherwise.
fn constrain_string(schema: &mut Value) {
    let is_string = match &schema["type"] {
        Value::String(t) => t == "string",
        Value::Array(ts) => ts.iter().any(|t| t == "string"),
        _ => false,
    };
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if !is_string || obj.contains_key("pattern") || obj.contains_key("enum") {
        return;
    }
    let required_text = obj.get("minLength") == Some(&json!(1)) && obj.contains_key("maxLength");
    let pattern = if required_text { NON_BLANK } else { NO_NUL };
    obj.insert("pattern".into(), pattern.into());
}

/// The request-schema helpers for `#[schema(schema_with = …)]`.
pub mod schemas {
    use portcullis_core::{PermissionCatalog, Roles};
    use utoipa::openapi::schema::{ArrayBuilder, Object, ObjectBuilder, Type};

    /// A list of permission names the server knows.
    pub fn permission_names() -> ArrayBuilder {
        let catalog = PermissionCatalog::seed();
        let mut names: Vec<&str> = catalog.names(catalog.all()).collect();
        names.sort_unstable();
        ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(names)),
            )
            .description(Some(
                "Permission names (`area:verb`); a subset of the caller's permissions",
            ))
    }

    /// A role the server knows.
    pub fn role() -> Object {
        let roles = Roles::default();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(roles.names()))
            .description(Some(
                "`superadmin` (only from a caller acting in every org: else 403 org_forbidden), \
                 `admin`, `user` or `viewer`",
            ))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> &'static Value {
        static DOC: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
            document(
                utoipa::openapi::OpenApiBuilder::new().build(),
                &crate::routes::PUBLIC_PATHS,
            )
        });
        &DOC
    }

    fn operations() -> impl Iterator<Item = (&'static str, &'static str, &'static Value)> {
        doc()["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                METHODS
                    .iter()
                    .filter_map(move |m| item.get(*m).map(|op| (path.as_str(), *m, op)))
            })
    }

    fn documents(op: &Value, status: u16) -> bool {
        op["responses"].get(status.to_string()).is_some()
    }

    #[test]
    fn document_names_both_security_schemes_and_every_contract_path() {
        let doc = doc();
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["api_key"]["name"], "X-API-Key");
        for path in [
            "/auth/login",
            "/auth/refresh",
            "/api-keys/{key_id}",
            "/agents/{id}/runs",
            "/admin/users/{id}/revoke-sessions",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} missing");
        }
    }

    #[test]
    fn every_operation_has_its_own_operation_id() {
        let mut seen = BTreeSet::new();
        for (path, method, op) in operations() {
            let id = op["operationId"].as_str();
            let id = id.unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(
                seen.insert(id),
                "operationId {id} twice (again on {method} {path})"
            );
        }
        assert!(
            seen.contains("createApiKey") && seen.contains("createAgent"),
            "{seen:?}"
        );
    }

    #[test]
    fn every_protected_operation_documents_401_403_429_503_and_needs_a_credential() {
        // GET routes any actor may call: no permission to miss, and no CSRF on a safe method.
        let no_403 = ["whoami", "listApiKeys"];
        for (path, method, op) in operations() {
            if crate::routes::PUBLIC_PATHS.contains(&path) {
                continue;
            }
            let security = op["security"].as_array();
            assert!(
                security.is_some_and(|s| !s.is_empty()),
                "{method} {path} is protected but names no security scheme"
            );
            for status in [401, 429, 503] {
                assert!(documents(op, status), "{method} {path} lacks {status}");
            }
            let id = op["operationId"].as_str().unwrap_or_default();
            assert_eq!(
                documents(op, 403),
                !no_403.contains(&id),
                "{method} {path}: 403"
            );
        }
    }

    #[test]
    fn every_operation_with_a_body_documents_400_413_415() {
        let mut bodies = 0;
        for (path, method, op) in operations() {
            if op.get("requestBody").is_none() {
                continue;
            }
            bodies += 1;
            for status in [400, 413, 415] {
                assert!(documents(op, status), "{method} {path} lacks {status}");
            }
        }
        assert!(bodies >= 8, "only {bodies} operations take a body");
    }

    #[test]
    fn every_error_response_is_a_problem_with_its_status() {
        let doc = doc();
        for (path, method, op) in operations() {
            for (status, response) in op["responses"].as_object().unwrap() {
                if !status.starts_with('4') && !status.starts_with('5') {
                    continue;
                }
                let response = match response["$ref"].as_str() {
                    Some(r) => {
                        &doc["components"]["responses"]
                            [r.trim_start_matches("#/components/responses/")]
                    }
                    None => response,
                };
                let schema = &response["content"]["application/problem+json"]["schema"];
                assert_eq!(
                    schema["allOf"][0]["$ref"], "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
                assert_eq!(
                    schema["allOf"][1]["properties"]["status"]["const"].to_string(),
                    *status,
                    "{method} {path}"
                );
            }
        }
    }

    #[test]
    fn request_schemas_state_the_limits_the_server_enforces() {
        let schemas = &doc()["components"]["schemas"];
        let key = &schemas["CreateKey"]["properties"];
        assert_eq!(key["name"]["minLength"], 1);
        assert_eq!(key["name"]["maxLength"], 200);
        assert_eq!(key["name"]["pattern"], NON_BLANK);
        assert_eq!(key["expires_in_seconds"]["minimum"], 1);
        assert_eq!(
            key["expires_in_seconds"]["maximum"],
            portcullis_core::key_issuance::MAX_KEY_LIFETIME_SECS
        );
        assert_eq!(key["rate_limit_per_minute"]["minimum"], 1);
        assert_eq!(
            key["rate_limit_per_minute"]["maximum"],
            portcullis_core::key_issuance::MAX_RATE_LIMIT_PER_MINUTE
        );
        assert_eq!(key["agent_id"]["pattern"], NO_NUL);
        assert_eq!(
            schemas["PasswordChange"]["properties"]["new_password"]["minLength"],
            portcullis_core::password::MIN_PASSWORD_CHARS
        );
    }

    #[test]
    fn creating_responses_link_to_the_routes_that_take_their_ids() {
        let ops: Vec<_> = operations().collect();
        let op = |id: &str| {
            ops.iter()
                .find(|(_, _, op)| op["operationId"] == id)
                .map(|(_, _, op)| *op)
                .unwrap_or_else(|| panic!("no {id}"))
        };
        for (from, status, to, param, field) in [
            ("createApiKey", "201", "updateApiKey", "key_id", "key_id"),
            ("createApiKey", "201", "rerollApiKey", "key_id", "key_id"),
            ("rerollApiKey", "201", "deleteApiKey", "key_id", "key_id"),
            ("createAgent", "201", "terminateAgent", "id", "agent_id"),
            ("createUser", "201", "revokeUserSessions", "id", "id"),
        ] {
            let links = op(from)["responses"][status]["links"].as_object().unwrap();
            let link = links
                .values()
                .find(|l| l["operationId"] == to)
                .unwrap_or_else(|| panic!("{from} does not link to {to}"));
            assert_eq!(
                link["parameters"][param],
                format!("$response.body#/{field}"),
                "{from} → {to}"
            );
            op(to);
        }
    }
}
