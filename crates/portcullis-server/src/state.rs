//! What every handler shares, and how it is put together at start.

use std::ops::Deref;
use std::sync::Arc;

use portcullis::clock::UnixTime;
use portcullis::lifecycle::Lifecycle;
use portcullis::redis::RedisStores;
use portcullis::sql::{AuditEnv, LastUsedSettings, LastUsedWriter, SqlStores};
use portcullis::{AuthConfig, Authenticator};

use crate::data::Data;
use crate::settings;

/// The server's shared state. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    /// Credentials → actors, and revocation. Owns the `last_used_at` writer and, with Redis,
    /// the invalidation subscription.
    pub auth: Authenticator,
    /// The SQL stores (API keys, agents, users; sessions and denylist without Redis).
    pub sql: SqlStores,
    /// Redis, when `REDIS_URL` is set.
    pub redis: Option<RedisStores>,
    /// The application's sessions and memories.
    pub data: Data,
    /// Users, sessions, keys and agents: the library's rules.
    pub lifecycle: Lifecycle,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Connects the stores named by the environment, migrates, and builds the authenticator.
    pub async fn connect(config: AuthConfig) -> Result<Self, String> {
        let url = settings::database_url();
        let audit = AuditEnv::from_lookup(settings::env)?;
        let sql = SqlStores::connect(&url)
            .await
            .map_err(|e| e.to_string())?
            .with_audit_retention(audit.retention_secs);
        sql.migrate().await.map_err(|e| e.to_string())?;
        let data = Data::new(sql.pool().clone());
        data.migrate().await.map_err(|e| e.to_string())?;

        let sql_stores = sql.stores();
        let last_used =
            LastUsedWriter::spawn(sql_stores.api_keys.clone(), LastUsedSettings::default());
        let builder = Authenticator::builder()
            .config(config)
            .stores(sql_stores)
            .usage_sink(Arc::new(last_used));
        let (auth, redis) = match settings::redis_url() {
            Some(redis_url) => {
                let redis = RedisStores::connect(&redis_url, &settings::redis_prefix())
                    .await
                    .map_err(|e| e.to_string())?;
                let auth = redis
                    .build_authenticator(builder)
                    .await
                    .map_err(|e| e.to_string())?;
                (auth, Some(redis))
            }
            None => (builder.build().map_err(|e| e.to_string())?, None),
        };
        // The audit log: written behind the request path, flushed in `shutdown`.
        let mut lifecycle = Lifecycle::builder(auth.clone(), Arc::new(sql.users().clone()))
            .audit_sink(Arc::new(sql.audit_writer(audit.writer)))
            .audit_log(Arc::new(sql.audit_log()));
        if let Some(r) = &redis {
            lifecycle = lifecycle.login_throttle(r.login_throttle());
        }
        let lifecycle = lifecycle.build().map_err(|e| e.to_string())?;
        Ok(Self(Arc::new(Inner {
            auth,
            sql,
            redis,
            data,
            lifecycle,
        })))
    }

    /// Now, on the authenticator's clock.
    pub fn now(&self) -> UnixTime {
        self.auth.clock().now()
    }

    /// Creates the first user, a superadmin of org `default`, when there is no user yet: from
    /// PORTCULLIS_ADMIN_EMAIL and PORTCULLIS_ADMIN_PASSWORD, or with a generated password
    /// printed once.
    pub async fn ensure_admin(&self) -> Result<(), String> {
        let email =
            settings::env("PORTCULLIS_ADMIN_EMAIL").unwrap_or_else(|| "admin@localhost".to_owned());
        let (password, generated) = match settings::env("PORTCULLIS_ADMIN_PASSWORD") {
            Some(p) => (p, false),
            None => (settings::generate_secret(), true),
        };
        let created = self.lifecycle.create_first_user(&email, &password).await;
        match created.map_err(|e| e.to_string())? {
            None => {}
            Some(admin) if generated => {
                // Printed once, to the operator's terminal, never to the log.
                println!(
                    "created superadmin {} with password: {password}",
                    admin.email
                );
                println!("(set PORTCULLIS_ADMIN_EMAIL / PORTCULLIS_ADMIN_PASSWORD to choose them)");
            }
            Some(admin) => tracing::info!(email = %admin.email, "created superadmin"),
        }
        Ok(())
    }

    /// Flushes pending `last_used_at` and audit writes (at shutdown).
    pub async fn shutdown(&self) {
        self.lifecycle.shutdown_audit().await;
        self.auth.shutdown().await;
    }
}
