//! An app that existed before Portcullis adopts it: a tiny team-notes service with its own
//! SQLite schema (a `users` table of its own shape, `notes`), its own argon2 password hashes and its own routes
//! (`GET`/`POST /notes`, `GET /members`), which gains login, refresh, logout, cookies with
//! CSRF, API keys and per-route permissions without touching its tables.
//!
//! What adopting takes (the lines between the "Portcullis glue" and "end glue" comments):
//! 1. [`Users`] implemented over its `users` table (`is_admin` → role `admin`, else `user`;
//!    `team` → org), one query a method;
//! 2. Portcullis's own tables (sessions, API keys, agents, denylist) in a database of their
//!    own — Portcullis's schema has a `users` table too, which the app's must not meet — an
//!    [`Authenticator`] over them and a [`Lifecycle`] over the app's users;
//! 3. `routes::all(lifecycle)` merged, one [`AuthLayer`] with [`routes::PUBLIC_PATHS`], and
//!    each handler naming what it needs in its signature (`RequirePermissions<MemoryCreate>`).
//!
//! Run it:
//!
//! ```text
//! NOTES_PASSWORD='a long passphrase' cargo run --example existing_app --features sqlite -- \
//!     add-member ada@team.example team-a admin
//! cargo run --example existing_app --features sqlite
//! curl -s localhost:3000/auth/login -H 'content-type: application/json' \
//!     -d '{"email":"ada@team.example","password":"a long passphrase"}'
//! curl -s localhost:3000/notes -H "authorization: Bearer <access_token>"
//! ```
//!
//! `NOTES_DATABASE_URL` picks the app's database (default `sqlite://notes.db?mode=rwc`),
//! `NOTES_AUTH_DATABASE_URL` Portcullis's (default `sqlite://notes-auth.db?mode=rwc`); the
//! `AUTH_*` variables configure Portcullis (secrets are generated in development).

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use portcullis::ids::{OrgId, UserId};
use portcullis::lifecycle::Lifecycle;
use portcullis::routes::{self, ApiError, ApiJson, ApiResult};
use portcullis::seed::{AdminRead, MemoryCreate, MemoryList};
use portcullis::sql::SqlStores;
use portcullis::users::{Account, Users};
use portcullis::{
    Actor, AuthConfig, AuthError, AuthLayer, Authenticator, Policy, RequirePermissions, StoreError,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::SqlitePool;

/// Any failure while starting the app or adding a member.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The app's own schema, as it was before Portcullis.
const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS users (
        member_id TEXT PRIMARY KEY,
        login TEXT UNIQUE NOT NULL,
        pw_hash TEXT NOT NULL,
        is_admin INTEGER NOT NULL,
        team TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS notes (
        note_id INTEGER PRIMARY KEY AUTOINCREMENT,
        team TEXT NOT NULL,
        author TEXT NOT NULL,
        body TEXT NOT NULL
    )",
];

/// Opens (creating if needed) the app's database and its own tables.
async fn open(db_url: &str) -> Result<SqlitePool, Error> {
    let pool = SqlitePool::connect(db_url).await?;
    for statement in SCHEMA {
        sqlx::query(statement).execute(&pool).await?;
    }
    Ok(pool)
}

/// Adds a member with the app's own password hashing (argon2id with its own parameters, as a
/// PHC string); returns the new `member_id`. Logins are stored lowercased.
pub async fn add_member(
    db_url: &str,
    login: &str,
    password: &str,
    is_admin: bool,
    team: &str,
) -> Result<String, Error> {
    let pool = open(db_url).await?;
    let params = Params::new(12 * 1024, 3, 1, None).map_err(|e| e.to_string())?;
    let salt = SaltString::generate(&mut OsRng);
    let pw_hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| e.to_string())?
        .to_string();
    let member_id = uuid::Uuid::new_v4().to_string();
    sqlx::query("INSERT INTO users VALUES (?, ?, ?, ?, ?)")
        .bind(&member_id)
        .bind(login.trim().to_lowercase())
        .bind(pw_hash)
        .bind(is_admin)
        .bind(team)
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(member_id)
}

/// The app: its own routes, plus Portcullis's auth routes, behind one layer. `auth_db_url` is
/// Portcullis's own database (sessions, API keys, agents, denylist).
pub async fn app(db_url: &str, auth_db_url: &str, config: AuthConfig) -> Result<Router, Error> {
    let pool = open(db_url).await?;

    // --- Portcullis glue ---
    let sql = SqlStores::connect(auth_db_url).await?;
    sql.migrate().await?;
    let auth = Authenticator::builder()
        .config(config)
        .stores(sql.stores())
        .build()?;
    let lifecycle = Lifecycle::builder(auth.clone(), Arc::new(Members(pool.clone()))).build()?;
    let layer = AuthLayer::builder(auth)
        .policy(Policy::default().public_paths(routes::PUBLIC_PATHS))
        .build()?;
    // --- end glue ---

    Ok(Router::new()
        .route("/notes", get(list_notes).post(create_note))
        .route("/members", get(list_members))
        .with_state(pool)
        .merge(routes::all(lifecycle)) // glue: /auth/*, /api-keys, /users, /admin/*
        .layer(layer))
}

// --- Portcullis glue ---
/// Portcullis's view of the app's `users` table.
struct Members(SqlitePool);

type MemberRow = (String, String, String, bool, String);

fn account((id, login, pw_hash, is_admin, team): MemberRow) -> Account {
    Account {
        id: UserId::from(id),
        email: login,
        password_hash: pw_hash,
        role: if is_admin { "admin" } else { "user" }.into(),
        org_id: OrgId::from(team),
    }
}

fn store_error(e: sqlx::Error) -> StoreError {
    match e.as_database_error() {
        Some(db) if db.is_unique_violation() => StoreError::Conflict("login taken"),
        _ => StoreError::Unavailable(format!("users: {e}")),
    }
}

const SELECT: &str = "SELECT member_id, login, pw_hash, is_admin, team FROM users";

#[async_trait]
impl Users for Members {
    async fn find_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        let sql = format!("{SELECT} WHERE login = ?");
        let row = sqlx::query_as(&sql)
            .bind(email)
            .fetch_optional(&self.0)
            .await;
        Ok(row.map_err(store_error)?.map(account))
    }

    async fn get(&self, id: &UserId) -> Result<Option<Account>, StoreError> {
        let sql = format!("{SELECT} WHERE member_id = ?");
        let row = sqlx::query_as(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.0)
            .await;
        Ok(row.map_err(store_error)?.map(account))
    }

    /// `POST /users`: any role but `admin` becomes a regular member (the table has no other).
    async fn create(&self, a: &Account) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO users VALUES (?, ?, ?, ?, ?)")
            .bind(a.id.as_str())
            .bind(&a.email)
            .bind(&a.password_hash)
            .bind(a.role == "admin")
            .bind(a.org_id.as_str())
            .execute(&self.0)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn set_password_hash(&self, id: &UserId, hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET pw_hash = ? WHERE member_id = ?")
            .bind(hash)
            .bind(id.as_str())
            .execute(&self.0)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn count(&self, org: Option<&OrgId>) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE ?1 IS NULL OR team = ?1")
            .bind(org.map(OrgId::as_str))
            .fetch_one(&self.0)
            .await
            .map_err(store_error)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }
}
// --- end glue ---

/// The team whose rows an actor sees: its org (every actor but the board, which this app
/// does not enable, has one).
fn team(actor: &Actor) -> ApiResult<&str> {
    actor
        .org_id()
        .map(OrgId::as_str)
        .ok_or(ApiError::Auth(AuthError::OrgForbidden))
}

/// A database failure of the app's own queries: 503, as Portcullis answers its own.
fn db_error(e: sqlx::Error) -> ApiError {
    ApiError::unavailable(format!("notes: {e}"))
}

/// `GET /notes`: the team's notes, oldest first.
async fn list_notes(
    State(db): State<SqlitePool>,
    who: RequirePermissions<MemoryList>,
) -> ApiResult<Json<Value>> {
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT note_id, author, body FROM notes WHERE team = ? ORDER BY note_id")
            .bind(team(&who)?)
            .fetch_all(&db)
            .await
            .map_err(db_error)?;
    let notes: Vec<Value> = rows
        .into_iter()
        .map(|(id, author, body)| json!({"id": id, "author": author, "body": body}))
        .collect();
    Ok(Json(json!({ "notes": notes })))
}

/// A note to add.
#[derive(Deserialize)]
struct NewNote {
    body: String,
}

/// `POST /notes` `{body}`: 201 with the note.
async fn create_note(
    State(db): State<SqlitePool>,
    who: RequirePermissions<MemoryCreate>,
    ApiJson(note): ApiJson<NewNote>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = routes::required_text("body", &note.body, 10_000)?;
    let author = who.id().unwrap_or("?").to_owned();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO notes (team, author, body) VALUES (?, ?, ?) RETURNING note_id",
    )
    .bind(team(&who)?)
    .bind(&author)
    .bind(&body)
    .fetch_one(&db)
    .await
    .map_err(db_error)?;
    let created = json!({"id": id, "author": author, "body": body});
    Ok((StatusCode::CREATED, Json(created)))
}

/// `GET /members`: the team's roster, for its admins.
async fn list_members(
    State(db): State<SqlitePool>,
    who: RequirePermissions<AdminRead>,
) -> ApiResult<Json<Value>> {
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT member_id, login, is_admin FROM users WHERE team = ? ORDER BY login",
    )
    .bind(team(&who)?)
    .fetch_all(&db)
    .await
    .map_err(db_error)?;
    let members: Vec<Value> = rows
        .into_iter()
        .map(|(id, login, is_admin)| json!({"id": id, "login": login, "is_admin": is_admin}))
        .collect();
    Ok(Json(json!({ "members": members })))
}

#[allow(dead_code)] // The tests drive `app` and `add_member` directly.
#[tokio::main]
async fn main() -> Result<(), Error> {
    let db_url =
        std::env::var("NOTES_DATABASE_URL").unwrap_or_else(|_| "sqlite://notes.db?mode=rwc".into());
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, login, team, rest @ ..] = args.as_slice()
        && cmd == "add-member"
    {
        // The password comes from the environment, never the command line (shell history).
        let password = std::env::var("NOTES_PASSWORD").map_err(|_| "set NOTES_PASSWORD")?;
        let is_admin = rest.first().is_some_and(|r| r == "admin");
        let id = add_member(&db_url, login, &password, is_admin, team).await?;
        println!("added member {id}");
        return Ok(());
    }
    let auth_db_url = std::env::var("NOTES_AUTH_DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://notes-auth.db?mode=rwc".into());
    let app = app(&db_url, &auth_db_url, AuthConfig::from_env()?).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
