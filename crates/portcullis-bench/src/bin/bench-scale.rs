//! Cost as the work grows (issue 17, point 4): the library-level curves, as TSV.
//!
//! ```text
//! bench-scale keys     --store sqlite|postgres --sizes 10000,100000,1000000,10000000 --lookups 20000
//! bench-scale sessions --store redis|postgres  --sizes 10000,100000,1000000 --lookups 20000
//! bench-scale zipf     --cache 100000 --distinct 1000000 --requests 2000000 --s 1.0
//! ```
//!
//! Common options: `--out FILE` (TSV; stdout without it), `--url URL` (the database:
//! `sqlite://target/bench-scale/keys.db?mode=rwc`, `postgres://postgres@127.0.0.1:5432/bench_scale`,
//! `redis://127.0.0.1:6379/9` by default), `--concurrency N` (32; 0 skips the concurrent pass).
//!
//! - `keys`: API keys generated the library's way (`api_key::generate`, so each stored hash is
//!   the SHA-256 of a real, well-formed key) are bulk-inserted into the schema the library's own
//!   migrations made, growing one table to each size in turn. At each size, a fresh
//!   `Authenticator` (empty caches) on a fresh `SqlStores` resolves keys never looked up before,
//!   sampled uniformly from the whole table: every lookup is first-seen and goes to the
//!   database. Sequential latencies (p50, p99) and rate, then the rate with `--concurrency`
//!   tasks (same keys, another fresh authenticator: cold caches, warm database pages).
//! - `sessions`: live sessions seeded (PostgreSQL: bulk SQL; Redis: the library's own
//!   `SessionStore::create`, many at once), then access tokens minted for sampled sessions,
//!   each resolved once: signature check, session lookup and denylist lookup in the store.
//! - `zipf`: in-memory stores holding `--distinct` keys; the `Authenticator`'s caches sized to
//!   `--cache` entries (store caches by count, the resolved-credential cache by bytes at the
//!   library's weight per key); requests drawn Zipf(s) over the keys. Hit ratios from the
//!   library's own cache metrics (a Prometheus recorder), RSS from `/proc/self/status`.
//!
//! Tiny sizes run in seconds (CI smoke): `keys --store sqlite --sizes 1000 --lookups 100`.

// A failed setup is a failed bench, reported where it happened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_core::api_key::{self, ApiKeyPrefix};
use portcullis_core::cache::CacheConfig;
use portcullis_core::ids::{ApiKeyId, OrgId, SessionId, UserId};
use portcullis_core::session::SessionRecord;
use portcullis_core::store::{MemoryApiKeyStore, Stores};
use portcullis_core::token::AccessGrant;
use portcullis_core::{AuthConfig, Authenticator, Credential, Secret, seed};
use portcullis_sql::SqlStores;
use portcullis_sql::sqlx;

const USAGE: &str = "usage: bench-scale keys --store sqlite|postgres [--sizes N,N,…] [--lookups N] \
     | sessions --store redis|postgres [--sizes N,N,…] [--lookups N] \
     | zipf [--cache N] [--distinct N] [--requests N] [--s X[,X…]]; \
     common: [--url URL] [--out FILE] [--concurrency N] [--no-header]";

/// Rows per bulk transaction while seeding.
const SEED_CHUNK: usize = 50_000;
/// Rows per multi-row `INSERT` on SQLite (3 bound values each, under its 32 766 limit).
const SQLITE_ROWS_PER_STATEMENT: usize = 5_000;
/// Users the seeded keys and sessions are spread over.
const USERS: usize = 10_000;
/// The organisation of every seeded row.
const ORG: &str = "acme";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `--name value` options after the subcommand.
struct Args {
    command: String,
    options: HashMap<String, String>,
}

impl Args {
    fn parse() -> Result<Self, String> {
        let mut it = std::env::args().skip(1);
        let command = it.next().ok_or(USAGE)?;
        let mut options = HashMap::new();
        while let Some(name) = it.next() {
            let name = name.strip_prefix("--").ok_or(USAGE)?.to_owned();
            if name == "no-header" {
                options.insert(name, String::new());
                continue;
            }
            options.insert(name, it.next().ok_or(USAGE)?);
        }
        Ok(Self { command, options })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(String::as_str)
    }

    fn str_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }

    fn num(&self, name: &str, default: usize) -> Result<usize, String> {
        self.get(name)
            .map_or(Ok(default), |v| v.replace('_', "").parse())
            .map_err(|_| format!("--{name}: not a number"))
    }

    fn list<T: std::str::FromStr>(&self, name: &str, default: &str) -> Result<Vec<T>, String> {
        self.str_or(name, default)
            .split(',')
            .map(|v| v.replace('_', "").parse())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("--{name}: not a list of numbers"))
    }
}

/// Where rows go: a file or stdout, one header line first (unless `--no-header`).
struct Tsv(Box<dyn Write>);

impl Tsv {
    fn open(args: &Args, header: &[&str]) -> Result<Self, BoxError> {
        let out: Box<dyn Write> = match args.get("out") {
            Some(path) => Box::new(std::fs::File::create(path)?),
            None => Box::new(std::io::stdout()),
        };
        let mut tsv = Self(out);
        if args.get("no-header").is_none() {
            tsv.row(header)?;
        }
        Ok(tsv)
    }

    fn row<T: std::fmt::Display>(&mut self, cells: &[T]) -> Result<(), BoxError> {
        let line: Vec<String> = cells.iter().map(ToString::to_string).collect();
        writeln!(self.0, "{}", line.join("\t"))?;
        self.0.flush()?;
        Ok(())
    }
}

fn say(what: impl std::fmt::Display) {
    eprintln!("bench-scale: {what}");
}

fn main() {
    portcullis_bench::install_jwt_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = Args::parse()
        .map_err(BoxError::from)
        .and_then(|args| runtime.block_on(run(args)));
    if let Err(e) = result {
        eprintln!("bench-scale: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    match args.command.as_str() {
        "keys" => keys(&args).await,
        "sessions" => sessions(&args).await,
        "zipf" => zipf(&args).await,
        _ => Err(USAGE.into()),
    }
}

// ---- measuring ----

/// Latencies of one pass, in nanoseconds, and how long the pass took.
struct Pass {
    nanos: Vec<u64>,
    elapsed: Duration,
}

impl Pass {
    /// The `q` quantile in microseconds (nearest rank).
    fn quantile_us(&mut self, q: f64) -> f64 {
        self.nanos.sort_unstable();
        if self.nanos.is_empty() {
            return 0.0;
        }
        let rank = ((self.nanos.len() as f64 * q).ceil() as usize).clamp(1, self.nanos.len());
        self.nanos[rank - 1] as f64 / 1_000.0
    }

    fn per_s(&self) -> f64 {
        self.nanos.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// How a credential is presented.
#[derive(Clone, Copy)]
enum Kind {
    ApiKey,
    Bearer,
}

fn credential(kind: Kind, raw: &str) -> Credential<'_> {
    match kind {
        Kind::ApiKey => Credential::ApiKey(raw),
        Kind::Bearer => Credential::Bearer(raw),
    }
}

/// Resolves each credential once, in order, timing each; every one must succeed.
async fn sequential(auth: &Authenticator, kind: Kind, raws: &[String]) -> Result<Pass, BoxError> {
    let mut nanos = Vec::with_capacity(raws.len());
    let start = Instant::now();
    for raw in raws {
        let t = Instant::now();
        auth.resolve(credential(kind, raw))
            .await
            .map_err(|e| format!("resolve failed: {e}"))?;
        nanos.push(t.elapsed().as_nanos() as u64);
    }
    Ok(Pass {
        nanos,
        elapsed: start.elapsed(),
    })
}

/// Resolves each credential once with `tasks` tasks at once; the rate only.
async fn concurrent(
    auth: &Authenticator,
    kind: Kind,
    raws: &[String],
    tasks: usize,
) -> Result<f64, BoxError> {
    let raws: Arc<[String]> = raws.into();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let (auth, raws, next) = (auth.clone(), raws.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(raw) = raws.get(i) else {
                    return Ok::<(), String>(());
                };
                auth.resolve(credential(kind, raw))
                    .await
                    .map_err(|e| format!("resolve failed: {e}"))?;
            }
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(raws.len() as f64 / start.elapsed().as_secs_f64())
}

/// One point of a growth curve: where it was measured and what seeding it cost.
struct Point {
    store: &'static str,
    size: usize,
    seed_s: f64,
    /// Bytes: the table (or database, or Redis's memory), its indexes, the lookup's index.
    bytes: [i64; 3],
}

impl Point {
    fn new(store: &'static str, size: usize, seed_s: f64, bytes: [i64; 3]) -> Self {
        Self {
            store,
            size,
            seed_s,
            bytes,
        }
    }

    /// The TSV columns; `size_column` names the second.
    fn header(size_column: &str) -> [&str; 12] {
        [
            "store",
            size_column,
            "lookups",
            "p50_us",
            "p99_us",
            "per_s",
            "per_s_concurrent",
            "concurrency",
            "seed_s",
            "db_bytes",
            "index_bytes",
            "lookup_index_bytes",
        ]
    }

    /// Resolves every credential once with a fresh authenticator (empty caches), timing each,
    /// then again with `tasks` tasks and another fresh one; writes the row.
    async fn measure(
        &self,
        out: &mut Tsv,
        stores: &Stores,
        kind: Kind,
        raws: &[String],
        tasks: usize,
    ) -> Result<(), BoxError> {
        let mut pass = sequential(&authenticator(stores.clone(), None), kind, raws).await?;
        let per_s_concurrent = if tasks > 0 {
            concurrent(&authenticator(stores.clone(), None), kind, raws, tasks).await?
        } else {
            0.0
        };
        let (p50, p99, per_s) = (pass.quantile_us(0.5), pass.quantile_us(0.99), pass.per_s());
        let (store, size) = (self.store, self.size);
        say(format_args!(
            "{store} {size}: p50 {p50:.1} µs, p99 {p99:.1} µs, {per_s:.0}/s, \
             {per_s_concurrent:.0}/s × {tasks}"
        ));
        let [db_bytes, index_bytes, lookup_index_bytes] = self.bytes;
        out.row(&[
            store.to_owned(),
            size.to_string(),
            raws.len().to_string(),
            format!("{p50:.1}"),
            format!("{p99:.1}"),
            format!("{per_s:.0}"),
            format!("{per_s_concurrent:.0}"),
            tasks.to_string(),
            format!("{:.1}", self.seed_s),
            db_bytes.to_string(),
            index_bytes.to_string(),
            lookup_index_bytes.to_string(),
        ])
    }
}

/// An authenticator with default settings (the bench secret) and empty caches on `stores`.
fn authenticator(stores: Stores, cache: Option<CacheConfig>) -> Authenticator {
    let config = AuthConfig::builder()
        .jwt_secret(Secret::from(portcullis_bench::DEFAULT_SECRET))
        .build()
        .expect("bench configuration");
    let mut builder = Authenticator::builder().config(config).stores(stores);
    if let Some(cache) = cache {
        builder = builder.cache(cache);
    }
    builder.build().expect("bench authenticator")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ---- random numbers and samples ----

/// xorshift64*: enough for sampling and reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A uniform sample of everything offered so far (reservoir sampling), remembering which
/// entries a measurement has already used so that no credential is looked up twice.
struct Reservoir<T> {
    slots: Vec<(T, bool)>,
    seen: usize,
    rng: Rng,
}

impl<T: Clone> Reservoir<T> {
    fn new(capacity: usize) -> Self {
        Self {
            slots: Vec::with_capacity(capacity),
            seen: 0,
            rng: Rng(0x9E37_79B9_7F4A_7C15),
        }
    }

    fn offer(&mut self, item: T) {
        self.seen += 1;
        if self.slots.len() < self.slots.capacity() {
            self.slots.push((item, false));
        } else {
            let j = self.rng.below(self.seen);
            if j < self.slots.len() {
                self.slots[j] = (item, false);
            }
        }
    }

    /// Up to `n` entries not taken before, marked taken.
    fn take(&mut self, n: usize) -> Vec<T> {
        self.slots
            .iter_mut()
            .filter(|(_, used)| !used)
            .take(n)
            .map(|(item, used)| {
                *used = true;
                item.clone()
            })
            .collect()
    }
}

// ---- keys ----

/// One generated key: what the table gets, and the raw key for the sample.
struct Generated {
    id: String,
    hash: Vec<u8>,
    display_prefix: String,
    raw: String,
}

/// `n` real keys, made by the library's generator, on both cores.
fn generate_keys(n: usize) -> Vec<Generated> {
    let threads = 2;
    let per = n.div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..threads)
            .map(|t| {
                let count = per.min(n.saturating_sub(t * per));
                s.spawn(move || {
                    let prefix = ApiKeyPrefix::default();
                    (0..count)
                        .map(|_| {
                            let g = api_key::generate(&prefix);
                            Generated {
                                id: ApiKeyId::random().as_str().to_owned(),
                                hash: g.hash.0.to_vec(),
                                display_prefix: g.display_prefix,
                                raw: g.key.expose().to_owned(),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("key generation"))
            .collect()
    })
}

/// The database of the `keys` and `sessions` curves, with a seeding connection of its own.
enum Db {
    Sqlite {
        seed: sqlx::SqliteConnection,
        path: String,
    },
    Postgres {
        seed: sqlx::PgPool,
    },
}

impl Db {
    /// Empties the database, creates the schema with the library's migrations, and opens a
    /// seeding connection.
    async fn open(url: &str) -> Result<Self, BoxError> {
        use sqlx::Connection as _;
        if url.starts_with("sqlite:") {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .split('?')
                .next()
                .unwrap_or_default()
                .to_owned();
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
            if let Some(dir) = std::path::Path::new(&path).parent() {
                std::fs::create_dir_all(dir)?;
            }
            let sql = SqlStores::connect(url).await?;
            sql.migrate().await?;
            sql.pool().close().await;
            let mut seed = sqlx::SqliteConnection::connect(url).await?;
            // Seeding only: big page cache, no fsync. The measured pool has the library's
            // own settings.
            for pragma in [
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = OFF",
                "PRAGMA cache_size = -2000000",
            ] {
                sqlx::query(pragma).execute(&mut seed).await?;
            }
            Ok(Self::Sqlite { seed, path })
        } else {
            let seed = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(url)
                .await?;
            sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
                .execute(&seed)
                .await?;
            let sql = SqlStores::connect(url).await?;
            sql.migrate().await?;
            sql.pool().close().await;
            Ok(Self::Postgres { seed })
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }

    /// Inserts keys `first..first + rows.len()` (their number spreads them over users).
    async fn insert_keys(&mut self, first: usize, rows: &[Generated]) -> Result<(), BoxError> {
        let permissions = seed::MEMORY_ALL.bits().to_string();
        let created = now() as i64;
        match self {
            Self::Sqlite { seed, .. } => {
                use sqlx::Connection as _;
                let mut tx = seed.begin().await?;
                for (c, chunk) in rows.chunks(SQLITE_ROWS_PER_STATEMENT).enumerate() {
                    let base = first + c * SQLITE_ROWS_PER_STATEMENT;
                    let values: Vec<String> = (0..chunk.len())
                        .map(|i| {
                            let user = format!("u-{}", (base + i) % USERS);
                            format!(
                                "(?, 'bench key', ?, ?, '{user}', '{user}', 'user', '{user}', \
                                 '{ORG}', '{permissions}', {created}, NULL, 1, NULL, NULL, NULL)"
                            )
                        })
                        .collect();
                    let sql = format!(
                        "INSERT INTO api_keys (id, name, key_hash, display_prefix, created_by, \
                         creator_user, owner_kind, owner_id, org_id, permissions, created_at, \
                         expires_at, enabled, rate_limit_per_minute, last_used_at, remaining) \
                         VALUES {}",
                        values.join(",")
                    );
                    let mut q = sqlx::query(&sql);
                    for g in chunk {
                        q = q.bind(&g.id).bind(&g.hash[..]).bind(&g.display_prefix);
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Self::Postgres { seed } => {
                let ids: Vec<&str> = rows.iter().map(|g| g.id.as_str()).collect();
                let hashes: Vec<&[u8]> = rows.iter().map(|g| &g.hash[..]).collect();
                let prefixes: Vec<&str> = rows.iter().map(|g| g.display_prefix.as_str()).collect();
                sqlx::query(
                    "INSERT INTO api_keys (id, name, key_hash, display_prefix, created_by, \
                     creator_user, owner_kind, owner_id, org_id, permissions, created_at, \
                     expires_at, enabled, rate_limit_per_minute, last_used_at, remaining) \
                     SELECT t.id, 'bench key', t.h, t.p, u, u, 'user', u, $5, $6, $7, \
                     NULL, TRUE, NULL, NULL, NULL \
                     FROM UNNEST($1::text[], $2::bytea[], $3::text[]) WITH ORDINALITY \
                     AS t(id, h, p, n), LATERAL (SELECT 'u-' || (($4 + t.n - 1) % $8) AS u) o",
                )
                .bind(&ids)
                .bind(&hashes)
                .bind(&prefixes)
                .bind(first as i64)
                .bind(ORG)
                .bind(&permissions)
                .bind(created)
                .bind(USERS as i64)
                .execute(&*seed)
                .await?;
            }
        }
        Ok(())
    }

    /// After seeding: SQLite's WAL folded into the file, PostgreSQL's statistics refreshed
    /// (as autovacuum would), so that lookups meet the table as it would settle.
    async fn settle(&mut self, table: &str) -> Result<(), BoxError> {
        match self {
            Self::Sqlite { seed, .. } => {
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&mut *seed)
                    .await?;
            }
            Self::Postgres { seed } => {
                sqlx::raw_sql(&format!("VACUUM ANALYZE {table}"))
                    .execute(&*seed)
                    .await?;
            }
        }
        Ok(())
    }

    /// Drops `table`'s indexes other than its primary key and returns the statements that
    /// make them again. Seeding random keys into six B-trees at once outgrows the page cache
    /// somewhere past a few million rows and falls to 5–8 k rows/s; loading the bare table and
    /// then building each index in one sorted pass is what `pg_restore` and `.import` do.
    async fn drop_indexes(&mut self, table: &str) -> Result<Vec<String>, BoxError> {
        let defs: Vec<(String, String)> = match self {
            Self::Sqlite { seed, .. } => {
                // Automatic indexes (the primary key's) have no `sql`.
                sqlx::query_as(
                    "SELECT name, sql FROM sqlite_master \
                     WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                )
                .bind(table)
                .fetch_all(&mut *seed)
                .await?
            }
            Self::Postgres { seed } => {
                sqlx::query_as(
                    "SELECT i.indexname::text, i.indexdef FROM pg_indexes i \
                     WHERE i.schemaname = current_schema() AND i.tablename = $1 \
                     AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
                )
                .bind(table)
                .fetch_all(&*seed)
                .await?
            }
        };
        for (name, _) in &defs {
            self.exec(&format!("DROP INDEX {name}")).await?;
        }
        Ok(defs.into_iter().map(|(_, def)| def).collect())
    }

    /// Runs each of `statements` (those [`drop_indexes`](Self::drop_indexes) returned).
    async fn create_indexes(&mut self, statements: &[String]) -> Result<(), BoxError> {
        for sql in statements {
            match self {
                Self::Sqlite { .. } => self.exec(sql).await?,
                // One connection of the pool runs both: a sort in memory, not on disk.
                Self::Postgres { .. } => {
                    self.exec(&format!("SET maintenance_work_mem = '1GB'; {sql}"))
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn exec(&mut self, sql: &str) -> Result<(), BoxError> {
        match self {
            Self::Sqlite { seed, .. } => {
                sqlx::raw_sql(sql).execute(&mut *seed).await?;
            }
            Self::Postgres { seed } => {
                sqlx::raw_sql(sql).execute(&*seed).await?;
            }
        }
        Ok(())
    }

    /// Sizes in bytes: the table, all its indexes, and the index the lookup uses (PostgreSQL);
    /// the database file, then 0, 0 (SQLite).
    async fn sizes(&mut self, table: &str, index: &str) -> Result<[i64; 3], BoxError> {
        match self {
            Self::Sqlite { path, .. } => {
                let file = std::fs::metadata(&*path).map_or(0, |m| m.len() as i64);
                Ok([file, 0, 0])
            }
            Self::Postgres { seed } => {
                let row: (i64, i64, i64) = sqlx::query_as(&format!(
                    "SELECT pg_relation_size('{table}'), pg_indexes_size('{table}'), \
                     pg_relation_size('{index}')"
                ))
                .fetch_one(&*seed)
                .await?;
                Ok([row.0, row.1, row.2])
            }
        }
    }
}

/// Default database URL of a store.
fn default_url(store: &str, curve: &str) -> Result<String, String> {
    match store {
        "sqlite" => Ok(format!("sqlite://target/bench-scale/{curve}.db?mode=rwc")),
        "postgres" => Ok("postgres://postgres@127.0.0.1:5432/bench_scale".into()),
        "redis" => Ok("redis://127.0.0.1:6379/9".into()),
        _ => Err(format!("unknown store {store:?}")),
    }
}

/// `keys`: first-seen API-key lookups against tables of growing size.
async fn keys(args: &Args) -> Result<(), BoxError> {
    let store = args.str_or("store", "sqlite");
    let url = args
        .get("url")
        .map_or_else(|| default_url(store, "keys"), |u| Ok(u.to_owned()))?;
    let sizes: Vec<usize> = args.list("sizes", "10000,100000,1000000,10000000")?;
    let lookups = args.num("lookups", 20_000)?;
    let tasks = args.num("concurrency", 32)?;
    let mut out = Tsv::open(args, &Point::header("size"))?;
    let mut db = Db::open(&url).await?;
    let mut sample = Reservoir::new(lookups);
    let mut have = 0;
    for size in sizes {
        let seeding = Instant::now();
        let indexes = db.drop_indexes("api_keys").await?;
        while have < size {
            let n = SEED_CHUNK.min(size - have);
            let rows = generate_keys(n);
            db.insert_keys(have, &rows).await?;
            for g in rows {
                sample.offer(g.raw);
            }
            have += n;
            if have % 1_000_000 == 0 {
                say(format_args!("{}: {have} keys", db.name()));
            }
        }
        db.create_indexes(&indexes).await?;
        db.settle("api_keys").await?;
        let seed_s = seeding.elapsed().as_secs_f64();
        let bytes = db.sizes("api_keys", "api_keys_key_hash_key").await?;
        let raws = sample.take(lookups);
        let sql = SqlStores::connect(&url).await?;
        // Warm the pool's connections and their statement caches with well-formed keys that
        // are in no table (a miss runs the same query).
        let warm: Vec<String> = generate_keys(200).into_iter().map(|g| g.raw).collect();
        let warm_auth = authenticator(sql.stores(), None);
        for raw in &warm {
            let _ = warm_auth.resolve(Credential::ApiKey(raw)).await;
        }
        Point::new(db.name(), size, seed_s, bytes)
            .measure(&mut out, &sql.stores(), Kind::ApiKey, &raws, tasks)
            .await?;
        sql.pool().close().await;
    }
    Ok(())
}

// ---- sessions ----

/// A session seeded for the sample: whose it is, to mint its tokens.
#[derive(Clone)]
struct SeededSession {
    id: SessionId,
    user: UserId,
}

fn session_record(i: usize, created: u64) -> SessionRecord {
    let id = SessionId::random();
    // The refresh token's hash: any 32 bytes do, resolution never reads it.
    let first = api_key::KeyHash::of(id.as_str().as_bytes());
    SessionRecord::new(
        id,
        UserId::from(format!("u-{}", i % USERS).as_str()),
        OrgId::from(ORG),
        first,
        created,
        30 * 24 * 3600,
        false,
    )
}

/// Where the `sessions` curve keeps them.
enum SessionDb {
    Sql(Db),
    Redis {
        stores: portcullis_redis::RedisStores,
        client: redis::Client,
    },
}

impl SessionDb {
    async fn open(store: &str, url: &str) -> Result<Self, BoxError> {
        if store == "redis" {
            let client = redis::Client::open(url)?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            let _: () = redis::cmd("FLUSHDB").query_async(&mut conn).await?;
            let stores = portcullis_redis::RedisStores::connect(url, "bench-scale:").await?;
            Ok(Self::Redis { stores, client })
        } else {
            Ok(Self::Sql(Db::open(url).await?))
        }
    }

    /// Inserts sessions; PostgreSQL in bulk SQL, Redis through the library's store (its
    /// script also indexes the session per user and in the live set), 64 at a time.
    async fn insert(&mut self, records: Vec<SessionRecord>) -> Result<(), BoxError> {
        match self {
            Self::Sql(Db::Postgres { seed }) => {
                let ids: Vec<&str> = records.iter().map(|s| s.id.as_str()).collect();
                let users: Vec<&str> = records.iter().map(|s| s.user_id.as_str()).collect();
                let hashes: Vec<&[u8]> = records.iter().map(|s| &s.current.0[..]).collect();
                let created = records.first().map_or(0, |s| s.created_at) as i64;
                let expires = records.first().map_or(0, |s| s.expires_at) as i64;
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, org_id, current_hash, parent_hash, \
                     rotated_at, created_at, expires_at, remember_me, revoked, user_agent, version) \
                     SELECT t.id, t.u, $4, t.h, NULL, $5, $5, $6, FALSE, FALSE, NULL, 0 \
                     FROM UNNEST($1::text[], $2::text[], $3::bytea[]) AS t(id, u, h)",
                )
                .bind(&ids)
                .bind(&users)
                .bind(&hashes)
                .bind(ORG)
                .bind(created)
                .bind(expires)
                .execute(&*seed)
                .await?;
            }
            Self::Sql(Db::Sqlite { .. }) => return Err("sessions: redis or postgres".into()),
            Self::Redis { stores, .. } => {
                let records = Arc::new(records);
                let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let mut handles = Vec::new();
                for _ in 0..64 {
                    let (sessions, records, next) =
                        (stores.sessions(), records.clone(), next.clone());
                    handles.push(tokio::spawn(async move {
                        use portcullis_core::store::SessionStore as _;
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(s) = records.get(i) else {
                                return Ok::<(), String>(());
                            };
                            sessions
                                .create(s.clone())
                                .await
                                .map_err(|e| e.to_string())?;
                        }
                    }));
                }
                for h in handles {
                    h.await??;
                }
            }
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Sql(db) => db.name(),
            Self::Redis { .. } => "redis",
        }
    }

    async fn settle(&mut self) -> Result<(), BoxError> {
        match self {
            Self::Sql(db) => db.settle("sessions").await,
            Self::Redis { .. } => Ok(()),
        }
    }

    /// Bytes held: the table, its indexes, its primary key (PostgreSQL); Redis's
    /// `used_memory`, 0, 0.
    async fn sizes(&mut self) -> Result<[i64; 3], BoxError> {
        match self {
            Self::Sql(db) => db.sizes("sessions", "sessions_pkey").await,
            Self::Redis { client, .. } => {
                let mut conn = client.get_multiplexed_async_connection().await?;
                let info: String = redis::cmd("INFO")
                    .arg("memory")
                    .query_async(&mut conn)
                    .await?;
                let used = info
                    .lines()
                    .find_map(|l| l.strip_prefix("used_memory:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                Ok([used, 0, 0])
            }
        }
    }

    /// Stores for the authenticator: sessions and denylist from this database.
    async fn stores(&self, url: &str) -> Result<(Stores, Option<SqlStores>), BoxError> {
        match self {
            Self::Sql(_) => {
                let sql = SqlStores::connect(url).await?;
                Ok((sql.stores(), Some(sql)))
            }
            Self::Redis { stores, .. } => {
                let memory = Stores::memory();
                Ok((stores.stores_with(memory.api_keys, memory.agents), None))
            }
        }
    }
}

/// `sessions`: first-seen access tokens against growing numbers of live sessions.
async fn sessions(args: &Args) -> Result<(), BoxError> {
    let store = args.str_or("store", "redis");
    let url = args
        .get("url")
        .map_or_else(|| default_url(store, "sessions"), |u| Ok(u.to_owned()))?;
    let sizes: Vec<usize> = args.list(
        "sizes",
        args.get("sessions").unwrap_or("10000,100000,1000000"),
    )?;
    let lookups = args.num("lookups", 20_000)?;
    let tasks = args.num("concurrency", 32)?;
    let mut out = Tsv::open(args, &Point::header("sessions"))?;
    let mut db = SessionDb::open(store, &url).await?;
    let mut sample = Reservoir::new(lookups);
    let mut have = 0;
    let created = now();
    for size in sizes {
        let seeding = Instant::now();
        while have < size {
            let n = SEED_CHUNK.min(size - have);
            let records: Vec<SessionRecord> = (have..have + n)
                .map(|i| session_record(i, created))
                .collect();
            for s in &records {
                sample.offer(SeededSession {
                    id: s.id.clone(),
                    user: s.user_id.clone(),
                });
            }
            db.insert(records).await?;
            have += n;
            if have % 200_000 == 0 {
                say(format_args!("{}: {have} sessions", db.name()));
            }
        }
        db.settle().await?;
        let seed_s = seeding.elapsed().as_secs_f64();
        let bytes = db.sizes().await?;
        let picked = sample.take(lookups);
        let (stores, sql) = db.stores(&url).await?;
        let minter = authenticator(stores.clone(), None);
        let tokens: Vec<String> = picked
            .iter()
            .map(|s| {
                minter
                    .user_tokens()
                    .mint_access(AccessGrant {
                        user_id: &s.user,
                        email: "bench@example.com",
                        role: "user",
                        org_id: &OrgId::from(ORG),
                        session_id: &s.id,
                    })
                    .expect("mint")
                    .token
                    .expose()
                    .to_owned()
            })
            .collect();
        // Warm connections: tokens of sessions that do not exist (refused after one lookup).
        for _ in 0..200 {
            let ghost = SeededSession {
                id: SessionId::random(),
                user: UserId::from("u-ghost"),
            };
            let token = minter
                .user_tokens()
                .mint_access(AccessGrant {
                    user_id: &ghost.user,
                    email: "bench@example.com",
                    role: "user",
                    org_id: &OrgId::from(ORG),
                    session_id: &ghost.id,
                })
                .expect("mint");
            let _ = minter
                .resolve(Credential::Bearer(token.token.expose()))
                .await;
        }
        Point::new(db.name(), size, seed_s, bytes)
            .measure(&mut out, &stores, Kind::Bearer, &tokens, tasks)
            .await?;
        if let Some(sql) = sql {
            sql.pool().close().await;
        }
    }
    if let SessionDb::Redis { client, .. } = &db {
        let mut conn = client.get_multiplexed_async_connection().await?;
        let _: () = redis::cmd("FLUSHDB").query_async(&mut conn).await?;
    }
    Ok(())
}

// ---- zipf ----

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Zipf(s) over ranks `0..n` (rank 0 the most frequent), by inverse CDF.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 1..=n {
            total += 1.0 / (k as f64).powf(s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Self { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// Hits and misses of one cache, from the Prometheus text.
fn cache_counts(text: &str, cache: &str) -> (u64, u64) {
    let count = |metric: &str| {
        let prefix = format!("{metric}{{cache=\"{cache}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    (
        count(portcullis_core::metrics::CACHE_HITS),
        count(portcullis_core::metrics::CACHE_MISSES),
    )
}

/// `zipf`: the caches under a skewed workload over more credentials than they hold.
async fn zipf(args: &Args) -> Result<(), BoxError> {
    let cache = args.num("cache", 100_000)?;
    let distinct = args.num("distinct", 1_000_000)?;
    let requests = args.num("requests", 2_000_000)?;
    let exponents: Vec<f64> = args.list("s", "1.0")?;
    let mut out = Tsv::open(
        args,
        &[
            "s",
            "cache",
            "distinct",
            "requests",
            "resolved_hit_ratio",
            "store_cache_hit_ratio",
            "served_without_store",
            "p50_us",
            "p99_us",
            "p999_us",
            "per_s",
            "rss_before_kib",
            "rss_after_kib",
            "hwm_kib",
            "resolved_entries",
            "store_cache_entries",
        ],
    )?;
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("metrics recorder: {e}"))?;
    portcullis_core::metrics::bind_global();

    let memory = Stores::memory();
    let api_keys = Arc::new(MemoryApiKeyStore::new(distinct));
    let stores = Stores {
        api_keys: api_keys.clone(),
        ..memory
    };
    let created = now();
    let mut raws = Vec::with_capacity(distinct);
    for chunk_start in (0..distinct).step_by(SEED_CHUNK) {
        let n = SEED_CHUNK.min(distinct - chunk_start);
        for (i, g) in generate_keys(n).into_iter().enumerate() {
            let user = UserId::from(format!("u-{}", (chunk_start + i) % USERS).as_str());
            stores
                .api_keys
                .insert(portcullis_bench::key_record(
                    g.id.as_str().into(),
                    api_key::KeyHash(g.hash.as_slice().try_into()?),
                    g.display_prefix,
                    user,
                    OrgId::from(ORG),
                    created,
                ))
                .await?;
            raws.push(g.raw);
        }
    }
    for s in exponents {
        let zipf = Zipf::new(distinct, s);
        let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ s.to_bits());
        let draws: Vec<u32> = (0..requests)
            .map(|_| zipf.sample(&mut rng) as u32)
            .collect();
        drop(zipf);
        let config = CacheConfig {
            capacity: cache as u64,
            // Long enough that nothing expires during the run: the curve is about capacity.
            ttl: Duration::from_secs(3600),
            // The library weighs an API key entry at 16 + 192 bytes (its 128-bit print and the
            // entry). The run in BENCHMARKS.md used 32 + 192, from before the print.
            resolved_bytes: cache as u64 * (16 + 192),
        };
        let auth = authenticator(stores.clone(), Some(config));
        let before_text = recorder.render();
        let (rss_before, _) = rss_kib();
        let mut nanos = Vec::with_capacity(requests);
        let mut hits = 0u64;
        let start = Instant::now();
        for &d in &draws {
            let raw = &raws[d as usize];
            let t = Instant::now();
            let credential = Credential::ApiKey(raw);
            if auth.resolve_cached(credential).is_some() {
                hits += 1;
            } else {
                auth.resolve_after_miss(credential)
                    .await
                    .map_err(|e| format!("resolve failed: {e}"))?;
            }
            nanos.push(t.elapsed().as_nanos() as u64);
        }
        let elapsed = start.elapsed();
        let (rss_after, hwm) = rss_kib();
        let text = recorder.render();
        let (h0, m0) = cache_counts(&before_text, "api_keys");
        let (h1, m1) = cache_counts(&text, "api_keys");
        let (store_hits, store_misses) = (h1 - h0, m1 - m0);
        let entries = auth.cache_entries().await;
        let entries_of = |name: portcullis_core::metrics::CacheName| {
            entries
                .iter()
                .find(|(c, _)| *c == name)
                .map_or(0, |(_, n)| *n)
        };
        let mut pass = Pass { nanos, elapsed };
        let resolved_ratio = hits as f64 / requests as f64;
        let store_lookups = (store_hits + store_misses).max(1);
        let store_ratio = store_hits as f64 / store_lookups as f64;
        let without_store = 1.0 - store_misses as f64 / requests as f64;
        let (p50, p99, p999, per_s) = (
            pass.quantile_us(0.5),
            pass.quantile_us(0.99),
            pass.quantile_us(0.999),
            pass.per_s(),
        );
        say(format_args!(
            "zipf s={s}: resolved hits {resolved_ratio:.3}, store cache hits {store_ratio:.3}, \
             p50 {p50:.2} µs, p99 {p99:.2} µs, RSS {rss_before} → {rss_after} KiB"
        ));
        out.row(&[
            format!("{s}"),
            cache.to_string(),
            distinct.to_string(),
            requests.to_string(),
            format!("{resolved_ratio:.4}"),
            format!("{store_ratio:.4}"),
            format!("{without_store:.4}"),
            format!("{p50:.2}"),
            format!("{p99:.2}"),
            format!("{p999:.2}"),
            format!("{per_s:.0}"),
            rss_before.to_string(),
            rss_after.to_string(),
            hwm.to_string(),
            entries_of(portcullis_core::metrics::CacheName::ResolvedApiKey).to_string(),
            entries_of(portcullis_core::metrics::CacheName::ApiKeys).to_string(),
        ])?;
    }
    Ok(())
}
