//! The HTTPS key source: OpenID discovery, then the JWKS, with reqwest over rustls. Every
//! fetch has a timeout and a bounded body; redirects are not followed.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderMap};

use super::config::IssuerConfig;
use super::issuer::{FetchError, FetchedJwks, JwksSource};
use crate::config::ConfigError;

/// Fetches an issuer's JWKS over HTTP(S): from `jwks_uri` when configured, else from the
/// `jwks_uri` its discovery document names (whose `issuer` must be the configured one).
pub struct HttpJwks {
    client: reqwest::Client,
    issuer: String,
    discovery: String,
    /// Known once configured or discovered.
    jwks_uri: Mutex<Option<String>>,
    max_body: usize,
}

impl std::fmt::Debug for HttpJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpJwks")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl HttpJwks {
    /// The source for one issuer.
    pub fn new(config: &IssuerConfig) -> Result<Self, ConfigError> {
        let timeout = config.refresh.timeout();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Invalid {
                var: "AUTH_OIDC_ISSUERS",
                reason: format!("{}: no HTTP client: {e}", config.issuer),
            })?;
        Ok(Self {
            client,
            issuer: config.issuer.clone(),
            discovery: config.discovery_url(),
            jwks_uri: Mutex::new(config.jwks_uri.clone()),
            max_body: config.refresh.max_body_bytes,
        })
    }

    async fn jwks_uri(&self) -> Result<String, FetchError> {
        if let Some(uri) = self
            .jwks_uri
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(uri);
        }
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let (body, _) = self.get(&self.discovery).await?;
        let doc: Discovery = serde_json::from_slice(&body).map_err(|e| {
            FetchError(format!("{}: not a discovery document: {e}", self.discovery))
        })?;
        if doc.issuer != self.issuer {
            return Err(FetchError(format!(
                "{}: names the issuer {:?}, not the configured one",
                self.discovery, doc.issuer
            )));
        }
        // The keys come from where the issuer itself is served, or over HTTPS.
        let same_scheme = doc.jwks_uri.starts_with("https://")
            || (self.issuer.starts_with("http://") && doc.jwks_uri.starts_with("http://"));
        if !same_scheme {
            return Err(FetchError(format!(
                "{}: jwks_uri must be https",
                self.discovery
            )));
        }
        *self.jwks_uri.lock().unwrap_or_else(|e| e.into_inner()) = Some(doc.jwks_uri.clone());
        Ok(doc.jwks_uri)
    }

    /// GETs `url`: its body (at most `max_body` bytes) and its `Cache-Control: max-age`.
    async fn get(&self, url: &str) -> Result<(Vec<u8>, Option<Duration>), FetchError> {
        let fail = |what: String| FetchError(format!("{url}: {what}"));
        let mut response = self
            .client
            .get(url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| fail(reason(e)))?;
        if !response.status().is_success() {
            return Err(fail(format!("answered {}", response.status())));
        }
        let too_big = || fail(format!("body larger than {} bytes", self.max_body));
        if response
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(too_big());
        }
        let max_age = max_age(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(reason(e)))? {
            if body.len() + chunk.len() > self.max_body {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<FetchedJwks, FetchError> {
        let uri = self.jwks_uri().await?;
        let (body, max_age) = self.get(&uri).await?;
        Ok(FetchedJwks { body, max_age })
    }
}

/// Why a request failed, with its causes (connection refused, timed out, …) and without
/// the address, which the caller names.
fn reason(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Cache-Control: max-age=N` (`no-cache` and `no-store` read as 0: refetch as soon as
/// allowed).
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(CACHE_CONTROL)?.to_str().ok()?;
    value.split(',').map(str::trim).find_map(|directive| {
        if directive.eq_ignore_ascii_case("no-cache") || directive.eq_ignore_ascii_case("no-store")
        {
            return Some(Duration::ZERO);
        }
        let (name, secs) = directive.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("max-age") {
            return None;
        }
        secs.trim()
            .trim_matches('"')
            .parse()
            .ok()
            .map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age_is_read() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(CACHE_CONTROL, v.parse().unwrap());
            max_age(&m)
        };
        assert_eq!(h("public, max-age=600"), Some(Duration::from_secs(600)));
        assert_eq!(h("no-store"), Some(Duration::ZERO));
        assert_eq!(h("private"), None);
        assert_eq!(h("max-age=abc"), None);
        assert_eq!(max_age(&HeaderMap::new()), None);
    }
}
