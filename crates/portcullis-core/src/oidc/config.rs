//! One external issuer's configuration: where its keys are, what its tokens must say, and how
//! their claims become an actor. Read from JSON (`AUTH_OIDC_ISSUERS`) or built in code.

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

/// The signature algorithms an external issuer's tokens may use. Symmetric algorithms are
/// never among them: a provider's keys are public, and a public key must never be taken for
/// an HMAC secret (algorithm confusion).
///
/// ```
/// use portcullis_core::oidc::IssuerAlgorithm;
/// assert_eq!(IssuerAlgorithm::from_name("PS256"), Some(IssuerAlgorithm::Ps256));
/// assert_eq!(IssuerAlgorithm::from_name("HS256"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum IssuerAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[serde(rename = "RS256")]
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    #[serde(rename = "RS384")]
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    #[serde(rename = "RS512")]
    Rs512,
    /// RSASSA-PSS with SHA-256.
    #[serde(rename = "PS256")]
    Ps256,
    /// ECDSA P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// ECDSA P-384 with SHA-384.
    #[serde(rename = "ES384")]
    Es384,
    /// Ed25519.
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl IssuerAlgorithm {
    /// Every one, in declaration order.
    pub const ALL: [Self; 7] = [
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Es256,
        Self::Es384,
        Self::EdDsa,
    ];

    /// The JOSE name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Parses the exact JOSE name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub(crate) const fn to_jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            Self::Rs256 => A::RS256,
            Self::Rs384 => A::RS384,
            Self::Rs512 => A::RS512,
            Self::Ps256 => A::PS256,
            Self::Es256 => A::ES256,
            Self::Es384 => A::ES384,
            Self::EdDsa => A::EdDSA,
        }
    }
}

/// Whom an external issuer's tokens stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExternalKind {
    /// A person signed in at the provider.
    #[default]
    User,
    /// A machine client (the client-credentials grant).
    Service,
}

/// The org an external actor acts in: named by a claim, or the same for every token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum OrgMapping {
    /// The value of this claim (a string); a token without it is refused.
    Claim(String),
    /// This org, whatever the token says.
    Fixed(String),
}

/// How often an issuer's keys are fetched, and how long they are trusted without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefreshSettings {
    /// Never refetch sooner than this, whatever `Cache-Control` says (default 60 s).
    pub min_secs: u64,
    /// Refetch at least this often (default 3600 s): `Cache-Control: max-age` between the two
    /// is honoured.
    pub max_secs: u64,
    /// After a failed fetch, try again after this long (default 10 s).
    pub retry_secs: u64,
    /// A token naming a `kid` not in the key set refetches the keys at most once per this
    /// (default 30 s): a flood of random `kid`s causes no flood of fetches.
    pub unknown_kid_cooldown_secs: u64,
    /// Each fetch (discovery, JWKS) gives up after this long (default 5 s).
    pub timeout_secs: u64,
    /// Largest discovery or JWKS document read (default 256 KiB).
    pub max_body_bytes: usize,
    /// Keys last fetched longer ago than this are no longer trusted: the issuer's tokens are
    /// refused with 503 until a fetch succeeds (default 86 400 s).
    pub max_key_age_secs: u64,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self {
            min_secs: 60,
            max_secs: 3600,
            retry_secs: 10,
            unknown_kid_cooldown_secs: 30,
            timeout_secs: 5,
            max_body_bytes: 256 * 1024,
            max_key_age_secs: 86_400,
        }
    }
}

impl RefreshSettings {
    /// The per-fetch timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }
}

fn default_algorithms() -> Vec<IssuerAlgorithm> {
    vec![IssuerAlgorithm::Rs256]
}

fn default_subject_claim() -> String {
    "sub".to_owned()
}

fn default_leeway() -> u64 {
    30
}

fn yes() -> bool {
    true
}

/// One external issuer: an OpenID provider whose access tokens resolve to actors.
///
/// ```
/// use portcullis_core::oidc::{ExternalKind, IssuerConfig, OrgMapping};
/// let issuers = IssuerConfig::parse_list(r#"[{
///     "issuer": "https://login.example.com/realms/acme",
///     "audiences": ["portcullis-api"],
///     "org": {"fixed": "acme"},
///     "roles_claim": "realm_access.roles",
///     "kind": "user"
/// }]"#).unwrap();
/// assert_eq!(issuers[0].org, OrgMapping::Fixed("acme".into()));
/// assert_eq!(issuers[0].kind, ExternalKind::User);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The exact `iss` its tokens carry; also where discovery looks
    /// (`<issuer>/.well-known/openid-configuration`) unless `jwks_uri` is given.
    pub issuer: String,
    /// The JWKS address, skipping discovery.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Accepted audiences: a token's `aud` must name one of them.
    pub audiences: Vec<String>,
    /// Accepted algorithms (default RS256). A key's own `alg`, where the JWKS states one,
    /// must also match.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<IssuerAlgorithm>,
    /// Clock skew allowed on `exp`, `nbf`, `iat`, in seconds (default 30).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// A person or a machine client.
    #[serde(default)]
    pub kind: ExternalKind,
    /// The claim naming the actor (default `sub`).
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// The actor's org.
    pub org: OrgMapping,
    /// Permissions named in `scope` (space-separated) or `scp` (string or array) are granted;
    /// names that are not permissions (`openid`, `profile`) are ignored (default true).
    #[serde(default = "yes")]
    pub scope_permissions: bool,
    /// A claim holding role names, as a dotted path (`roles`, `realm_access.roles`) or a
    /// claim's whole name (`https://example.com/roles`); its value an array, a
    /// space-separated string, or an object keyed by role name (Zitadel): each role in the
    /// role table grants its permissions, in the actor's org only.
    #[serde(default)]
    pub roles_claim: Option<String>,
    /// Require the header's `typ` to be `at+jwt` (RFC 9068). Whatever this says, a token
    /// typed as another kind of JWT (`logout+jwt`, …) is refused.
    #[serde(default)]
    pub require_at_jwt: bool,
    /// Key refresh.
    #[serde(default)]
    pub refresh: RefreshSettings,
}

impl IssuerConfig {
    /// The default configuration for `issuer` and `audience`, its org `org`: RS256, `sub`,
    /// permissions from scopes, keys found by discovery.
    pub fn new(issuer: &str, audience: &str, org: OrgMapping) -> Self {
        Self {
            issuer: issuer.to_owned(),
            jwks_uri: None,
            audiences: vec![audience.to_owned()],
            algorithms: default_algorithms(),
            leeway_secs: default_leeway(),
            kind: ExternalKind::User,
            subject_claim: default_subject_claim(),
            org,
            scope_permissions: true,
            roles_claim: None,
            require_at_jwt: false,
            refresh: RefreshSettings::default(),
        }
    }

    /// A JSON array of issuers, as `AUTH_OIDC_ISSUERS` holds.
    pub fn parse_list(json: &str) -> Result<Vec<Self>, ConfigError> {
        serde_json::from_str(json).map_err(|e| invalid(format!("not a list of issuers: {e}")))
    }

    /// The discovery document's address.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }

    /// Checks one issuer on its own: addresses, audiences, algorithms, refresh bounds.
    fn check(&self, production: bool) -> Result<(), ConfigError> {
        let name = &self.issuer;
        check_url(name, &self.issuer, production)?;
        if let Some(jwks) = &self.jwks_uri {
            check_url(name, jwks, production)?;
        }
        if self.audiences.is_empty() || self.audiences.iter().any(|a| a.is_empty()) {
            return Err(invalid(format!(
                "{name}: `audiences` must name at least one"
            )));
        }
        if self.algorithms.is_empty() {
            return Err(invalid(format!("{name}: `algorithms` is empty")));
        }
        if self.subject_claim.is_empty() {
            return Err(invalid(format!("{name}: `subject_claim` is empty")));
        }
        match &self.org {
            OrgMapping::Claim(c) | OrgMapping::Fixed(c) if c.is_empty() => {
                return Err(invalid(format!("{name}: `org` is empty")));
            }
            _ => {}
        }
        let r = &self.refresh;
        if r.min_secs > r.max_secs || r.max_body_bytes == 0 {
            return Err(invalid(format!(
                "{name}: `refresh` needs min_secs <= max_secs and a non-zero max_body_bytes"
            )));
        }
        // Keys a healthy provider refreshes every max_secs must not expire in between.
        if r.max_key_age_secs <= r.max_secs {
            return Err(invalid(format!(
                "{name}: `refresh.max_key_age_secs` must be above `refresh.max_secs`"
            )));
        }
        // Zero would let every unknown `kid` refetch: the flood protection off.
        if r.unknown_kid_cooldown_secs == 0 {
            return Err(invalid(format!(
                "{name}: `refresh.unknown_kid_cooldown_secs` must be at least 1"
            )));
        }
        Ok(())
    }
}

/// Checks every issuer, and that each `iss` picks exactly one configuration, none of them
/// the issuer of our own tokens (`own`).
pub(crate) fn check_all(
    issuers: &[IssuerConfig],
    own: &[&str],
    production: bool,
) -> Result<(), ConfigError> {
    for (i, issuer) in issuers.iter().enumerate() {
        issuer.check(production)?;
        if own.contains(&issuer.issuer.as_str()) {
            return Err(invalid(format!(
                "{}: is the issuer of our own tokens; an external issuer needs its own `iss`",
                issuer.issuer
            )));
        }
        if issuers[..i].iter().any(|o| o.issuer == issuer.issuer) {
            return Err(invalid(format!("{}: configured twice", issuer.issuer)));
        }
    }
    Ok(())
}

/// `https://…`; plain `http://` only for a loopback host, or anywhere in development.
fn check_url(name: &str, url: &str, production: bool) -> Result<(), ConfigError> {
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
        if production && !loopback {
            return Err(invalid(format!(
                "{name}: {url} must be https in production (plain http only on loopback)"
            )));
        }
        rest
    } else {
        return Err(invalid(format!("{name}: {url} is not an http(s) address")));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(invalid(format!("{name}: {url} has no host")));
    }
    Ok(())
}

fn invalid(reason: String) -> ConfigError {
    ConfigError::Invalid {
        var: "AUTH_OIDC_ISSUERS",
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str) -> Result<Vec<IssuerConfig>, ConfigError> {
        let list = IssuerConfig::parse_list(json)?;
        check_all(&list, &["portcullis"], true).map(|()| list)
    }

    #[test]
    fn a_full_issuer_parses_with_its_defaults() {
        let list = one(r#"[{"issuer": "https://idp.example", "audiences": ["api"],
                "org": {"claim": "org"}, "algorithms": ["RS256", "ES384", "EdDSA"],
                "refresh": {"unknown_kid_cooldown_secs": 5}}]"#)
        .unwrap();
        let i = &list[0];
        assert_eq!(i.subject_claim, "sub");
        assert_eq!(i.leeway_secs, 30);
        assert!(i.scope_permissions);
        assert_eq!(i.refresh.unknown_kid_cooldown_secs, 5);
        assert_eq!(
            i.refresh.max_secs, 3600,
            "unnamed refresh settings keep defaults"
        );
        assert_eq!(
            i.discovery_url(),
            "https://idp.example/.well-known/openid-configuration"
        );
    }

    #[test]
    fn bad_issuer_lists_are_refused_with_the_reason() {
        let cases = [
            (
                r#"[{"issuer": "https://a", "audiences": [], "org": {"fixed": "o"}}]"#,
                "audiences",
            ),
            (
                r#"[{"issuer": "https://a", "audiences": ["x"], "org": {"fixed": "o"}, "algorithms": ["HS256"]}]"#,
                "not a list",
            ),
            (
                r#"[{"issuer": "https://a", "audiences": ["x"], "org": {"fixed": "o"}, "typo": 1}]"#,
                "not a list",
            ),
            (
                r#"[{"issuer": "http://idp.example", "audiences": ["x"], "org": {"fixed": "o"}}]"#,
                "https",
            ),
            (
                r#"[{"issuer": "portcullis", "audiences": ["x"], "org": {"fixed": "o"}}]"#,
                "http(s)",
            ),
            (
                r#"[{"issuer": "https://a", "audiences": ["x"], "org": {"fixed": "o"}},
                 {"issuer": "https://a", "audiences": ["y"], "org": {"fixed": "o"}}]"#,
                "twice",
            ),
        ];
        for (json, says) in cases {
            let err = one(json).unwrap_err().to_string();
            assert!(err.contains(says), "{json}: {err}");
        }
        let refresh = |r: &str| {
            format!(
                r#"[{{"issuer": "https://a", "audiences": ["x"], "org": {{"fixed": "o"}}, "refresh": {r}}}]"#
            )
        };
        for (r, says) in [
            (
                r#"{"max_secs": 600, "max_key_age_secs": 600}"#,
                "above `refresh.max_secs`",
            ),
            (
                r#"{"min_secs": 60, "max_secs": 30}"#,
                "min_secs <= max_secs",
            ),
            (r#"{"unknown_kid_cooldown_secs": 0}"#, "at least 1"),
        ] {
            let err = one(&refresh(r)).unwrap_err().to_string();
            assert!(err.contains(says), "{r}: {err}");
        }
        let loopback =
            r#"[{"issuer": "http://127.0.0.1:4000", "audiences": ["x"], "org": {"fixed": "o"}}]"#;
        assert!(one(loopback).is_ok(), "plain http is fine on loopback");
    }

    #[test]
    fn our_own_issuer_cannot_be_an_external_one() {
        let list = vec![IssuerConfig::new(
            "https://us",
            "api",
            OrgMapping::Fixed("o".into()),
        )];
        let err = check_all(&list, &["https://us"], false).unwrap_err();
        assert!(err.to_string().contains("our own tokens"), "{err}");
    }
}
