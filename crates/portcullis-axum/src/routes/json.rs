//! The request extractors of the routes (and of an app's own): a JSON body, a query string and path
//! parameters, whose rejections are problem+json and whose 400s name the field and what is wrong
//! with it — never the value sent (which may be a password, or anything a client mistyped).
//!
//! Text anywhere in a request may not hold a NUL character: PostgreSQL cannot store one, and
//! no field of the contract needs one. It is refused here, as 400 `invalid_request`, before any
//! handler or store sees it, so both databases answer alike.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ApiError;

/// A JSON body; a bad one is 400/413/415 problem+json.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let body = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request("the body could not be read")
            }
        })?;
        parse_json(&body).map(Self)
    }
}

/// True when the request says its body is JSON.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_some_and(is_json_content_type)
}

/// `application/json` or `application/*+json`, with any parameters (judged as `axum::Json`
/// does).
pub fn is_json_content_type(content_type: &HeaderValue) -> bool {
    content_type
        .to_str()
        .ok()
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| {
            m.type_() == mime::APPLICATION
                && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
        })
}

/// Parses a JSON body into `T`: 400 for bad JSON, a NUL in any text, or a field of the wrong
/// type or value, naming the field. Deserialized straight from the bytes, so serde's own rules
/// hold (a duplicated field is an error; unknown members are skipped whatever their depth).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if has_escaped_nul(body) {
        // Rare, and refused anyway: parse once more only to name the field.
        let path = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| nul_in(&v, String::new()))
            .unwrap_or_default();
        return Err(ApiError::bad_request(format!(
            "{}: must not contain a NUL character",
            field_name(&path)
        )));
    }
    let not_json = || ApiError::bad_request("the body is not valid JSON");
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return not_json();
        }
        let path = e.path().to_string();
        ApiError::bad_request(format!("{}: {}", field_name(&path), describe(inner)))
    })?;
    de.end().map_err(|_| not_json())?;
    Ok(value)
}

/// True when a JSON text holds a `\u0000` escape inside a string (a raw NUL byte is not valid
/// JSON, and the parser refuses it). Escape pairs are consumed whole, so `\\u0000` — a
/// backslash followed by the text `u0000` — is not one.
fn has_escaped_nul(body: &[u8]) -> bool {
    let (mut i, mut in_string) = (0, false);
    while i < body.len() {
        match body[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                if body.get(i + 1) == Some(&b'u') && body.get(i + 2..i + 6) == Some(b"0000") {
                    return true;
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// The path of the first string (or object key) holding a NUL, if any.
fn nul_in(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_in(v, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                // The key itself is the client's text: name its parent, not the key.
                return Some(path.clone());
            }
            let child = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            nul_in(v, child)
        }),
        _ => None,
    }
}

/// `the body` for the whole document, else the field's path.
fn field_name(path: &str) -> String {
    if path.is_empty() || path == "." {
        "the body".to_owned()
    } else {
        path.to_owned()
    }
}

/// What is wrong, in serde's words minus the value: serde's messages quote what was sent
/// (`invalid type: integer `31415926535`, expected a string`), so only what follows
/// "expected" — written by our types, not by the client — is kept.
fn describe(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let expected = msg
        .split_once(", expected ")
        .map(|(_, x)| x.split(" at line ").next().unwrap_or(x).to_owned());
    if let Some(field) = msg.strip_prefix("missing field `") {
        let field = field.split('`').next().unwrap_or("");
        return format!("missing field `{field}`");
    }
    let what = if msg.starts_with("invalid type") {
        "wrong type"
    } else if msg.starts_with("invalid length") {
        "wrong length"
    } else {
        "invalid value"
    };
    match expected {
        Some(x) => format!("{what}, expected {x}"),
        None => what.to_owned(),
    }
}

/// Deserializes an optional whole number that JSON may spell `60` or `60.0` (one number to JSON,
/// and to the `integer` of JSON Schema, which /openapi.json states): a fraction, a negative
/// value or one out of `T`'s range is an error. For `#[serde(default, deserialize_with = …)]`.
pub fn whole_number<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::{Deserialize, Error, Unexpected};
    let Some(n) = Option::<serde_json::Number>::deserialize(de)? else {
        return Ok(None);
    };
    // Whole floats past 2^53 are not exact; they are far beyond every bound the server takes.
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(f))
            .map(|f| f as u64)
    });
    whole
        .and_then(|v| T::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::invalid_value(Unexpected::Other("number"), &"a whole number in range")
        })
}

/// A query string; a bad one is 400 problem+json.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if has_encoded_nul(parts.uri.query().unwrap_or("")) {
            return Err(ApiError::bad_request(
                "the query string must not contain a NUL character",
            ));
        }
        let Query(v) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|r| match r.body_text().split_once("missing field `") {
                Some((_, rest)) => ApiError::bad_request(format!(
                    "the query string lacks the parameter `{}`",
                    rest.split('`').next().unwrap_or("")
                )),
                None => ApiError::bad_request("the query string is not valid"),
            })?;
        Ok(Self(v))
    }
}

/// Path parameters; a bad one (not UTF-8, a NUL) is 400 problem+json.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if has_encoded_nul(parts.uri.path()) {
            return Err(ApiError::bad_request(
                "the path must not contain a NUL character",
            ));
        }
        let Path(v) = Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("the path is not valid (ids are UTF-8 text)"))?;
        Ok(Self(v))
    }
}

/// True when percent-decoding `s` would yield a NUL (`%00`). A raw NUL cannot reach here: the
/// HTTP parser refuses it in a request line.
fn has_encoded_nul(s: &str) -> bool {
    s.as_bytes().windows(3).any(|w| w == b"%00")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        n: Option<u32>,
    }

    fn detail(r: Result<Body, ApiError>) -> String {
        match r {
            Err(ApiError::BadRequest(d)) => d,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[derive(Debug, Deserialize)]
    struct Limit {
        #[serde(default, deserialize_with = "whole_number")]
        n: Option<u32>,
    }

    #[test]
    fn a_whole_number_may_be_spelled_as_a_float_but_nothing_else_passes() {
        let n = |body: &str| parse_json::<Limit>(body.as_bytes()).map(|l| l.n);
        assert_eq!(n(r#"{"n": 60}"#).unwrap(), Some(60));
        assert_eq!(n(r#"{"n": 60.0}"#).unwrap(), Some(60));
        assert_eq!(n(r#"{"n": 6e1}"#).unwrap(), Some(60));
        assert_eq!(n(r#"{"n": null}"#).unwrap(), None);
        assert_eq!(n(r#"{}"#).unwrap(), None);
        for bad in [
            "60.5",
            "-1",
            "-1.0",
            "4294967296",
            "4294967296.0",
            "1e300",
            "\"60\"",
            "true",
        ] {
            let body = format!(r#"{{"n": {bad}}}"#);
            match n(&body) {
                Err(ApiError::BadRequest(d)) => {
                    assert!(d.starts_with("n: "), "{bad}: {d}");
                    assert!(!d.contains(bad.trim_matches('"')), "{bad}: {d}");
                }
                other => panic!("{bad}: expected a 400, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_nul_anywhere_is_400_naming_the_field() {
        let d = detail(parse_json(br#"{"email": "a\u0000b"}"#));
        assert_eq!(d, "email: must not contain a NUL character");
    }

    #[test]
    fn a_wrong_type_names_the_field_and_never_the_value() {
        let d = detail(parse_json(br#"{"email": "x", "n": 31415926535}"#));
        assert!(d.starts_with("n: "), "{d}");
        assert!(!d.contains("31415926535"), "{d}");
        let d = detail(parse_json(br#"{"email": 12345678}"#));
        assert!(d.starts_with("email: wrong type"), "{d}");
        assert!(!d.contains("12345678"), "{d}");
        let d = detail(parse_json(br#"{"email": ["long password 123"]}"#));
        assert!(!d.contains("long password"), "{d}");
        let d = detail(parse_json(br#"{}"#));
        assert_eq!(d, "the body: missing field `email`");
    }

    #[test]
    fn escaped_nul_is_found_only_inside_strings_and_only_as_an_escape() {
        assert!(has_escaped_nul(br#"{"a": "x\u0000"}"#));
        assert!(has_escaped_nul(br#"{"a\u0000": 1}"#));
        assert!(!has_escaped_nul(br#"{"a": "x\\u0000"}"#));
        assert!(has_escaped_nul(br#"{"a": "\u00001"}"#));
        assert!(!has_escaped_nul(br#"{"a": "\u0001"}"#));
    }

    #[test]
    fn a_duplicated_field_and_trailing_bytes_are_400() {
        detail(parse_json(br#"{"email": "a", "email": "b"}"#));
        let d = detail(parse_json(br#"{"email": "a"} x"#));
        assert_eq!(d, "the body is not valid JSON");
    }

    #[test]
    fn encoded_nul_is_found_in_paths() {
        assert!(has_encoded_nul("/api/v1/memories/a%00b"));
        assert!(!has_encoded_nul("/api/v1/memories/a%20b"));
    }
}
