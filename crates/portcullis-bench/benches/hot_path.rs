//! The per-request path of Portcullis beside its floors and its peers, in one group of one run
//! so that the ratios between them are comparable (`cargo bench -p portcullis-bench --bench
//! hot_path`). Names are `floor/…`, `portcullis/…`, `layer/…`, `layer_recorded/…`, `layer_bound/…` and
//! `peer/…`; BENCHMARKS.md explains each.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::cell::OnceCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Request, Response, header};
use http_body_util::Full;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use portcullis_bench::{AUDIENCE, DEFAULT_SECRET, Fixture, ISSUER, LEEWAY_SECS, ORG, floor, peer};
use portcullis_core::api_key::{self, ApiKeyPrefix, KeyHash};
use portcullis_core::oidc::{FetchError, FetchedJwks, IssuerConfig, JwksSource, OrgMapping};
use portcullis_core::seed::{MemoryRead, SessionCreate};
use portcullis_core::token::TokenHeader;
use portcullis_core::{AuthConfig, Authenticator, Credential, PermissionList, Secret};
use portcullis_tower::AuthLayer;
use serde_json::json;
use tower::{Layer, ServiceExt, service_fn};

/// Distinct tokens minted for the first-seen JWT bench; each sample resolves a prefix of them
/// on an authenticator with cold caches, so none is ever seen twice by the one resolving it.
const FIRST_SEEN_TOKENS: usize = 100_000;
/// Distinct stored keys for the cold API key bench (the memory store holds 100 000).
const COLD_KEYS: usize = 50_000;
/// Distinct external RS256 tokens for the first-seen OIDC bench, minted when that bench first
/// runs (an RSA signature each: seconds, not milliseconds); wrapped around on fresh
/// authenticators like [`FIRST_SEEN_TOKENS`].
const OIDC_FIRST_SEEN_TOKENS: usize = 10_000;

/// The external issuer of the OIDC rows.
const IDP: &str = "https://idp.bench.example";
/// Its key's `kid`.
const IDP_KID: &str = "bench-rsa-1";
/// Its signing key: the RSA unit-test key of portcullis-core (it protects nothing).
const IDP_PRIVATE: &[u8] = include_bytes!("../../portcullis-core/src/token/testdata/rs256.pem");
/// The same key's public half, as a PEM (for the second floor row).
const IDP_PUBLIC: &[u8] = include_bytes!("../../portcullis-core/src/token/testdata/rs256.pub.pem");

fn runtime() -> tokio::runtime::Runtime {
    // One thread, as the bench server runs.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from(format!("Bearer {token}"))).unwrap()
}

/// Resolves `creds[..iters]` (wrapping around on fresh authenticators) and returns the time
/// spent resolving only: the authenticator is built and its session cache warmed untimed.
async fn first_seen(
    fx: &Fixture,
    warm: &str,
    creds: &[String],
    iters: u64,
    api_key: bool,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let auth = fx.fresh_authenticator();
        // The session (and the key store) are warm in a running server; only the credential
        // is new.
        auth.resolve(Credential::Bearer(warm)).await.unwrap();
        let n = left.min(creds.len());
        let start = Instant::now();
        for c in &creds[..n] {
            let cred = if api_key {
                Credential::ApiKey(c)
            } else {
                Credential::Bearer(c)
            };
            black_box(auth.resolve(black_box(cred)).await.unwrap());
        }
        total += start.elapsed();
        left -= n;
    }
    total
}

/// A JWKS document served from memory.
struct MemoryJwks(Vec<u8>);

#[async_trait::async_trait]
impl JwksSource for MemoryJwks {
    async fn fetch(&self) -> Result<FetchedJwks, FetchError> {
        Ok(FetchedJwks {
            body: self.0.clone(),
            max_age: None,
        })
    }
}

/// An external issuer signing RS256 access tokens, and authenticators that trust it (default
/// issuer settings, org fixed, keys from memory) beside the bench's own HS256 tokens.
struct Idp {
    encoding: EncodingKey,
    jwk: Jwk,
    config: AuthConfig,
}

impl Idp {
    fn new() -> Self {
        portcullis_bench::install_jwt_provider();
        let encoding = EncodingKey::from_rsa_pem(IDP_PRIVATE).unwrap();
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
        jwk.common.key_id = Some(IDP_KID.to_owned());
        let config = AuthConfig::builder()
            .jwt_secret(Secret::from(DEFAULT_SECRET))
            .external_issuer(IssuerConfig::new(
                IDP,
                AUDIENCE,
                OrgMapping::Fixed(ORG.into()),
            ))
            .build()
            .unwrap();
        Self {
            encoding,
            jwk,
            config,
        }
    }

    /// A fresh authenticator (empty caches) with the issuer's keys fetched.
    async fn authenticator(&self) -> Authenticator {
        let jwks = serde_json::to_vec(&json!({"keys": [self.jwk]})).unwrap();
        let auth = Authenticator::builder()
            .config(self.config.clone())
            .jwks_source(IDP, Arc::new(MemoryJwks(jwks)))
            .build()
            .unwrap();
        assert!(auth.start_issuers().await.is_empty());
        auth
    }

    /// An access token of the issuer, valid an hour, its `jti` `n`.
    fn mint(&self, n: usize) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some(IDP_KID.to_owned());
        let now = floor::now();
        let claims = json!({
            "iss": IDP,
            "sub": "idp-user",
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 3600,
            "scope": "openid memory:read",
            "jti": format!("idp-{n}"),
        });
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}

/// [`first_seen`] for external tokens: resolves `creds[..iters]` (wrapping around on fresh
/// authenticators), timing the resolutions only.
async fn oidc_first_seen(idp: &Idp, warm: &str, creds: &[String], iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let auth = idp.authenticator().await;
        auth.resolve(Credential::Bearer(warm)).await.unwrap();
        let n = left.min(creds.len());
        let start = Instant::now();
        for c in &creds[..n] {
            black_box(
                auth.resolve(black_box(Credential::Bearer(c)))
                    .await
                    .unwrap(),
            );
        }
        total += start.elapsed();
        left -= n;
    }
    total
}

fn hot_path(c: &mut Criterion) {
    let rt = runtime();
    let fx = rt.block_on(Fixture::new(DEFAULT_SECRET, 3600));
    let token = fx.mint();
    let key = rt.block_on(fx.api_key());
    let kid = fx.auth.user_tokens().key_ring().active().kid().to_owned();

    eprintln!("minting {FIRST_SEEN_TOKENS} tokens and storing {COLD_KEYS} keys…");
    let tokens: Vec<String> = (0..FIRST_SEEN_TOKENS).map(|_| fx.mint()).collect();
    let keys: Vec<String> = rt.block_on(async {
        let mut keys = Vec::with_capacity(COLD_KEYS);
        for _ in 0..COLD_KEYS {
            keys.push(fx.api_key().await);
        }
        keys
    });

    let mut g = c.benchmark_group("hot_path");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);

    // ---- floors: what a hand-written HS256 verifier and an API key lookup cannot avoid ----
    let fl = floor::Floor::new(
        DEFAULT_SECRET.as_bytes(),
        &kid,
        ISSUER,
        AUDIENCE,
        LEEWAY_SECS,
    );
    let parts = floor::split(&token).unwrap();
    let mut payload_buf = [0u8; 2048];
    let payload = floor::decode_b64(parts.payload, &mut payload_buf)
        .unwrap()
        .to_vec();
    let claims = floor::parse_claims(&payload).unwrap();
    assert!(fl.verify(&token, |_| ()).is_some());

    g.bench_function("floor/header_decode_parse_check", |b| {
        b.iter(|| fl.check_header(black_box(parts.header)))
    });
    g.bench_function("floor/hmac_sha256_verify_prekeyed", |b| {
        b.iter(|| fl.verify_mac(black_box(&parts)))
    });
    // Not part of the floor: what building the HMAC key on every call (as jsonwebtoken does)
    // adds.
    g.bench_function("floor/hmac_key_new_per_call", |b| {
        b.iter(|| {
            aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                black_box(DEFAULT_SECRET.as_bytes()),
            )
        })
    });
    g.bench_function("floor/base64url_decode_payload", |b| {
        let mut buf = [0u8; 2048];
        b.iter(|| floor::decode_b64(black_box(parts.payload), &mut buf).map(|s| s.len()))
    });
    g.bench_function("floor/serde_parse_borrowed_claims", |b| {
        b.iter(|| floor::parse_claims(black_box(&payload)).map(|c| c.exp))
    });
    g.bench_function("floor/claim_checks", |b| {
        b.iter(|| fl.check_claims(black_box(&claims), floor::now()))
    });
    g.bench_function("floor/jwt_sum", |b| {
        b.iter(|| fl.verify(black_box(&token), |c| c.exp))
    });

    // The floor of a first-seen external token: one RS256 signature check, with the key the
    // issuer's verifier holds (built from the JWK, as Portcullis builds it) and, beside it,
    // the same key from its PEM.
    let idp = Idp::new();
    let idp_token = idp.mint(0);
    let (idp_input, idp_sig) = idp_token.rsplit_once('.').unwrap();
    let from_jwk = DecodingKey::from_jwk(&idp.jwk).unwrap();
    let from_pem = DecodingKey::from_rsa_pem(IDP_PUBLIC).unwrap();
    for key in [&from_jwk, &from_pem] {
        let ok = jsonwebtoken::crypto::verify(idp_sig, idp_input.as_bytes(), key, Algorithm::RS256);
        assert!(ok.unwrap());
    }
    g.bench_function("floor/rs256_verify", |b| {
        b.iter(|| {
            jsonwebtoken::crypto::verify(
                black_box(idp_sig),
                black_box(idp_input.as_bytes()),
                &from_jwk,
                Algorithm::RS256,
            )
        })
    });
    g.bench_function("floor/rs256_verify_pem_key", |b| {
        b.iter(|| {
            jsonwebtoken::crypto::verify(
                black_box(idp_sig),
                black_box(idp_input.as_bytes()),
                &from_pem,
                Algorithm::RS256,
            )
        })
    });

    let prefix = ApiKeyPrefix::default();
    g.bench_function("floor/api_key_sha256_sha2", |b| {
        b.iter(|| KeyHash::of(black_box(key.as_bytes())))
    });
    g.bench_function("floor/api_key_sha256_aws_lc", |b| {
        b.iter(|| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(key.as_bytes())))
    });
    // parse (checksum) + SHA-256 + a HashMap hit + an Arc clone: the cached API key floor.
    let mut map: HashMap<[u8; 32], Arc<String>> = HashMap::new();
    map.insert(KeyHash::of(key.as_bytes()).0, Arc::new("record".into()));
    g.bench_function("floor/api_key_sum", |b| {
        b.iter(|| {
            let hash = api_key::parse(black_box(&key), &prefix).unwrap().hash();
            map.get(&hash.0).cloned()
        })
    });

    // ---- Portcullis ----
    let max = fx.config.user_policy.max_token_bytes;
    g.bench_function("portcullis/token_header_parse", |b| {
        b.iter(|| TokenHeader::parse(black_box(&token), max).unwrap())
    });
    g.bench_function("portcullis/verify_access_only", |b| {
        b.iter(|| {
            fx.auth
                .user_tokens()
                .verify_access(black_box(&token))
                .unwrap()
        })
    });
    g.bench_function("portcullis/jwt_first_seen", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| first_seen(&fx, &token, &tokens, iters, false))
    });
    let auth: &Authenticator = &fx.auth;
    rt.block_on(auth.resolve(Credential::Bearer(&token)))
        .unwrap();
    g.bench_function("portcullis/jwt_repeat", |b| {
        b.to_async(&rt)
            .iter(|| auth.resolve(black_box(Credential::Bearer(&token))))
    });
    rt.block_on(auth.resolve(Credential::ApiKey(&key))).unwrap();
    g.bench_function("portcullis/api_key_cached", |b| {
        b.to_async(&rt)
            .iter(|| auth.resolve(black_box(Credential::ApiKey(&key))))
    });
    g.bench_function("portcullis/api_key_cold", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| first_seen(&fx, &token, &keys, iters, true))
    });
    let oidc_tokens = OnceCell::new();
    g.bench_function("portcullis/oidc_first_seen_rs256", |b| {
        let tokens: &Vec<String> = oidc_tokens.get_or_init(|| {
            eprintln!("minting {OIDC_FIRST_SEEN_TOKENS} external RS256 tokens…");
            (1..=OIDC_FIRST_SEEN_TOKENS).map(|n| idp.mint(n)).collect()
        });
        b.to_async(&rt)
            .iter_custom(|iters| oidc_first_seen(&idp, &idp_token, tokens, iters))
    });
    let oidc_auth = rt.block_on(idp.authenticator());
    let actor = rt
        .block_on(oidc_auth.resolve(Credential::Bearer(&idp_token)))
        .unwrap();
    assert_eq!(actor.issuer(), Some(IDP));
    g.bench_function("portcullis/oidc_repeat", |b| {
        b.to_async(&rt)
            .iter(|| oidc_auth.resolve(black_box(Credential::Bearer(&idp_token))))
    });
    let actor = rt
        .block_on(auth.resolve(Credential::Bearer(&token)))
        .unwrap();
    assert!(actor.has::<(SessionCreate, MemoryRead)>());
    g.bench_function("portcullis/permission_check", |b| {
        b.iter(|| black_box(&actor).has::<(SessionCreate, MemoryRead)>())
    });
    let perms = actor.permissions();
    g.bench_function("portcullis/permission_set_contains", |b| {
        b.iter(|| black_box(perms).contains(<(SessionCreate, MemoryRead)>::SET))
    });

    // ---- the whole layer, through oneshot, around a service_fn returning 200 ----
    let hello = service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::from("hello")))
    });
    let layered = AuthLayer::new(fx.auth.clone()).layer(hello);
    let oidc_layered = AuthLayer::new(oidc_auth.clone()).layer(hello);
    let bearer_value = bearer(&token);
    let idp_bearer_value = bearer(&idp_token);
    let key_value = HeaderValue::from_maybe_shared(Bytes::from(key.clone())).unwrap();
    let request = |h: Option<(&'static str, &HeaderValue)>| {
        let mut req = Request::builder().uri("/hello");
        if let Some((name, value)) = h {
            req = req.header(name, value.clone());
        }
        req.body(Full::<Bytes>::default()).unwrap()
    };
    let check = |h, want: u16| {
        let res = rt.block_on(layered.clone().oneshot(request(h))).unwrap();
        assert_eq!(res.status().as_u16(), want);
    };
    check(Some((header::AUTHORIZATION.as_str(), &bearer_value)), 200);
    check(Some(("x-api-key", &key_value)), 200);
    check(None, 401);
    let res = rt
        .block_on(oidc_layered.clone().oneshot(request(Some((
            header::AUTHORIZATION.as_str(),
            &idp_bearer_value,
        )))))
        .unwrap();
    assert_eq!(res.status(), 200);

    // `layer_recorded/…`: the row before it again, right after it, with a real Prometheus
    // recorder installed for this thread only (the runtime is current-thread and criterion
    // drives it from here): the `layer/…` rows run against the facade's no-op.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let no_credentials = || layered.clone().oneshot(request(None));
    let jwt_repeat = || {
        layered.clone().oneshot(request(Some((
            header::AUTHORIZATION.as_str(),
            &bearer_value,
        ))))
    };
    let api_key_cached = || {
        layered
            .clone()
            .oneshot(request(Some(("x-api-key", &key_value))))
    };

    g.bench_function("layer/none_bare_service", |b| {
        b.to_async(&rt).iter(|| hello.oneshot(request(None)))
    });
    g.bench_function("layer/no_credentials_401", |b| {
        b.to_async(&rt).iter(&no_credentials)
    });
    {
        let _recording = metrics::set_default_local_recorder(&recorder);
        g.bench_function("layer_recorded/no_credentials_401", |b| {
            b.to_async(&rt).iter(&no_credentials)
        });
    }
    g.bench_function("layer/jwt_repeat", |b| b.to_async(&rt).iter(&jwt_repeat));
    {
        let _recording = metrics::set_default_local_recorder(&recorder);
        g.bench_function("layer_recorded/jwt_repeat", |b| {
            b.to_async(&rt).iter(&jwt_repeat)
        });
    }
    // The issuer's token, answered from the resolved-credential cache like `jwt_repeat`.
    g.bench_function("layer/oidc_repeat", |b| {
        b.to_async(&rt).iter(|| {
            oidc_layered.clone().oneshot(request(Some((
                header::AUTHORIZATION.as_str(),
                &idp_bearer_value,
            ))))
        })
    });
    g.bench_function("layer/api_key_cached", |b| {
        b.to_async(&rt).iter(&api_key_cached)
    });
    {
        let _recording = metrics::set_default_local_recorder(&recorder);
        g.bench_function("layer_recorded/api_key_cached", |b| {
            b.to_async(&rt).iter(&api_key_cached)
        });
    }

    // What the recorder counted: shows that the `layer_recorded` rows paid for real recording.
    for line in handle.render().lines() {
        if line.starts_with("portcullis_decisions_total") {
            eprintln!("recorded: {line}");
        }
    }

    // `layer_bound/…`: as the sample server records, with a Prometheus recorder installed for
    // the process and `metrics::bind_global` (a report is an add on a ready handle). Last of
    // the layer rows: from here on every report of this process goes to that recorder.
    let global = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let global_handle = global.handle();
    metrics::set_global_recorder(global).unwrap();
    portcullis_core::metrics::bind_global();
    g.bench_function("layer_bound/no_credentials_401", |b| {
        b.to_async(&rt).iter(&no_credentials)
    });
    g.bench_function("layer_bound/jwt_repeat", |b| {
        b.to_async(&rt).iter(&jwt_repeat)
    });
    g.bench_function("layer_bound/api_key_cached", |b| {
        b.to_async(&rt).iter(&api_key_cached)
    });
    for line in global_handle.render().lines() {
        // Every series is bound, so most read 0: the ones that moved show the rows recorded.
        if line.starts_with("portcullis_decisions_total") && !line.ends_with(" 0") {
            eprintln!("recorded (bound): {line}");
        }
    }

    // ---- peers ----
    let validation = peer::validation();
    let decoding = peer::key(DEFAULT_SECRET);
    assert!(peer::decode(&token, &decoding, &validation).is_some());
    g.bench_function("peer/jsonwebtoken_decode", |b| {
        b.iter(|| peer::decode(black_box(&token), &decoding, &validation).unwrap())
    });
    g.bench_function("peer/jsonwebtoken_decode_key_per_call", |b| {
        b.iter(|| peer::decode(black_box(&token), &peer::key(DEFAULT_SECRET), &validation).unwrap())
    });
    let authorizer = rt.block_on(async {
        jwt_authorizer::JwtAuthorizer::<peer::Claims>::from_secret(DEFAULT_SECRET)
            .validation(
                jwt_authorizer::Validation::new()
                    .iss(&[ISSUER])
                    .aud(&[AUDIENCE])
                    .leeway(LEEWAY_SECS),
            )
            .build()
            .await
            .unwrap()
    });
    rt.block_on(authorizer.check_auth(&token)).unwrap();
    g.bench_function("peer/jwt_authorizer_check_auth", |b| {
        b.to_async(&rt)
            .iter(|| authorizer.check_auth(black_box(&token)))
    });

    g.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
