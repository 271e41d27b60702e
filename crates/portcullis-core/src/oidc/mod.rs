//! External identity providers (OpenID Connect): access tokens from a Keycloak, Auth0, Okta,
//! Entra, Zitadel or Google an application already signs its users in with, verified
//! against the provider's JWKS and resolved to the same [`Actor`](crate::Actor) and the same
//! permissions as our own credentials.
//!
//! A bearer JWT whose `iss` names a configured issuer is that issuer's, and only that
//! issuer's keys can verify it; any other JWT is ours (an unknown issuer is then refused as
//! any foreign token is: 401 `invalid_token`). Each issuer's keys are fetched at start
//! ([`Authenticator::start_issuers`](crate::Authenticator::start_issuers)), refreshed in the
//! background as `Cache-Control` allows, refetched at most once per cooldown when a token
//! names a `kid` they do not hold, and kept when the provider is down.
//!
//! ```
//! use portcullis_core::oidc::{IssuerConfig, OrgMapping};
//! use portcullis_core::{AuthConfig, Authenticator};
//! let issuer = IssuerConfig::new(
//!     "https://login.example.com", "portcullis-api", OrgMapping::Claim("org".into()),
//! );
//! let config = AuthConfig::builder().external_issuer(issuer).build()?;
//! # let _ = config;
//! # Ok::<(), portcullis_core::ConfigError>(())
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

mod config;
#[cfg(feature = "oidc")]
mod http;
mod issuer;
mod keys;
mod verify;

pub(crate) use config::check_all;
pub use config::{ExternalKind, IssuerAlgorithm, IssuerConfig, OrgMapping, RefreshSettings};
#[cfg(feature = "oidc")]
pub use http::HttpJwks;
pub(crate) use issuer::Issuer;
pub use issuer::{FetchError, FetchedJwks, IssuerStatus, JwksSource, KeyFreshness};
pub(crate) use verify::Grants;

use crate::clock::SharedClock;
use crate::config::{AuthEnv, ConfigError};

/// The start-up rule for issuers whose first fetch failed
/// ([`Authenticator::start_issuers`](crate::Authenticator::start_issuers)): production
/// refuses to start without their keys; development warns and goes on (their keys are
/// retried in the background, and their tokens refused until a fetch succeeds).
///
/// ```
/// use portcullis_core::{AuthEnv, oidc::{FetchError, refuse_unreachable}};
/// let failed = vec![("https://idp.example".to_owned(), FetchError("connection refused".into()))];
/// assert!(refuse_unreachable(AuthEnv::Production, &failed).is_err());
/// assert!(refuse_unreachable(AuthEnv::Development, &failed).is_ok());
/// ```
pub fn refuse_unreachable(
    env: AuthEnv,
    failed: &[(String, FetchError)],
) -> Result<(), ConfigError> {
    if failed.is_empty() {
        return Ok(());
    }
    let reasons = failed
        .iter()
        .map(|(issuer, e)| format!("{issuer}: {e}"))
        .collect::<Vec<_>>()
        .join("; ");
    if env == AuthEnv::Production {
        return Err(ConfigError::Invalid {
            var: "AUTH_OIDC_ISSUERS",
            reason: format!(
                "cannot fetch the keys of {reasons}; production does not start without them"
            ),
        });
    }
    tracing::warn!(issuers = %reasons, "cannot fetch external issuers' keys yet; retrying in the background, their tokens are refused until then");
    Ok(())
}

/// The configured external issuers, by `iss`.
#[derive(Clone, Default)]
pub(crate) struct Issuers(Arc<[Arc<Issuer>]>);

impl Issuers {
    /// One [`Issuer`] per configuration, each with the source given for it in `sources`, or
    /// (with the `oidc` feature) the HTTPS one.
    pub(crate) fn new(
        configs: &[IssuerConfig],
        mut sources: HashMap<String, Arc<dyn JwksSource>>,
        clock: &SharedClock,
    ) -> Result<Self, ConfigError> {
        let mut issuers = Vec::with_capacity(configs.len());
        for config in configs {
            let source = match sources.remove(&config.issuer) {
                Some(source) => source,
                None => default_source(config)?,
            };
            issuers.push(Arc::new(Issuer::new(config.clone(), source, clock.clone())));
        }
        Ok(Self(issuers.into()))
    }

    /// True when no issuer is configured: every JWT is ours.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The issuer whose `iss` the (unverified) payload names, if it is a configured one.
    /// A routing decision only: that issuer then verifies everything.
    pub(crate) fn route(&self, token: &str) -> Option<&Issuer> {
        #[derive(serde::Deserialize)]
        struct Peek<'a> {
            #[serde(borrow)]
            iss: Option<std::borrow::Cow<'a, str>>,
        }
        let payload = token.split('.').nth(1)?;
        let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let iss = serde_json::from_slice::<Peek<'_>>(&json).ok()?.iss?;
        self.0.iter().find(|i| i.config.issuer == iss).map(|i| &**i)
    }

    /// Fetches every issuer's keys once, then keeps them fresh in the background (tasks that
    /// end when what `own` is given is dropped). The issuers whose first fetch
    /// failed, with why: they are retried in the background.
    pub(crate) async fn start(&self, own: impl Fn(RefreshTask)) -> Vec<(String, FetchError)> {
        let mut failed = Vec::new();
        for issuer in self.0.iter() {
            if let Err(e) = issuer.refresh().await {
                failed.push((issuer.config.issuer.clone(), e));
            }
            own(RefreshTask(tokio::spawn(issuer.clone().keep_fresh())));
        }
        failed
    }

    /// Every issuer's state.
    pub(crate) fn status(&self) -> Vec<IssuerStatus> {
        self.0.iter().map(|i| i.status()).collect()
    }
}

/// A background key refresh, stopped when dropped.
pub(crate) struct RefreshTask(tokio::task::JoinHandle<()>);

impl Drop for RefreshTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(feature = "oidc")]
fn default_source(config: &IssuerConfig) -> Result<Arc<dyn JwksSource>, ConfigError> {
    Ok(Arc::new(HttpJwks::new(config)?))
}

#[cfg(not(feature = "oidc"))]
fn default_source(config: &IssuerConfig) -> Result<Arc<dyn JwksSource>, ConfigError> {
    Err(ConfigError::Invalid {
        var: "AUTH_OIDC_ISSUERS",
        reason: format!(
            "{}: fetching keys over HTTPS needs the `oidc` feature (or a JwksSource given to the builder)",
            config.issuer
        ),
    })
}
