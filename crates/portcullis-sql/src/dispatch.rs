//! The one dispatch: a [`SqlPool`] to the typed sqlx pool it holds, through [`with_pool!`].
//!
//! `with_pool!` is exported so that an application keeping its own tables in the same
//! database (the sample server's demo data) dispatches the same way as this crate's stores.
//! Its expansion is compiled in the *caller's* crate, where this crate's features are
//! unknown; so the `cfg`s live here, in the helper macros and in [`Typed`], whose variant for
//! a backend left out holds a reference to an empty type and so can never be built.

use crate::SqlPool;

/// Runs `$body` with `$p` bound to the typed pool inside `$pool` (a `&SqlPool`):
/// `&sqlx::SqlitePool` or `&sqlx::PgPool`, whichever it is. `$body` is compiled once per
/// backend built in, so it may use each pool's own types; it must have the same type on every
/// backend.
///
/// This is how the stores of this crate reach the database, and how an application can run
/// its own queries on the same pool without matching on [`SqlPool`]'s variants (which depend
/// on the features enabled, and which an application cannot match exhaustively).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// use portcullis_sql::{SqlPool, sqlx, with_pool};
///
/// # #[cfg(feature = "sqlite")]
/// # {
/// let pool = SqlPool::connect("sqlite::memory:").await.expect("in-memory SQLite");
/// // The same SQL on every backend (SQLite accepts `$1` placeholders too).
/// let n: i64 = with_pool!(&pool, |p| {
///     sqlx::query_scalar("SELECT $1 + 1").bind(41_i64).fetch_one(p).await
/// })?;
/// assert_eq!(n, 42);
/// # }
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! with_pool {
    ($pool:expr, |$p:ident| $body:expr $(,)?) => {
        match $crate::__private::typed($pool) {
            $crate::__private::Typed::Sqlite($p) => $crate::__if_sqlite!($p, $body),
            $crate::__private::Typed::Postgres($p) => $crate::__if_postgres!($p, $body),
        }
    };
}

/// `with_pool!`'s SQLite arm: the body, or, without the `sqlite` feature, the proof that the
/// arm is unreachable.
#[cfg(feature = "sqlite")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_sqlite {
    ($p:ident, $body:expr) => {
        $body
    };
}

/// `with_pool!`'s SQLite arm: the body, or, without the `sqlite` feature, the proof that the
/// arm is unreachable.
#[cfg(not(feature = "sqlite"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_sqlite {
    ($p:ident, $body:expr) => {
        match *$p {}
    };
}

/// `with_pool!`'s PostgreSQL arm: the body, or, without the `postgres` feature, the proof
/// that the arm is unreachable.
#[cfg(feature = "postgres")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_postgres {
    ($p:ident, $body:expr) => {
        $body
    };
}

/// `with_pool!`'s PostgreSQL arm: the body, or, without the `postgres` feature, the proof
/// that the arm is unreachable.
#[cfg(not(feature = "postgres"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_postgres {
    ($p:ident, $body:expr) => {
        match *$p {}
    };
}

/// A type with no values: the pool type of a backend that is not built in.
#[derive(Debug)]
pub enum Absent {}

/// The SQLite pool type, or [`Absent`].
#[cfg(feature = "sqlite")]
pub type SqlitePool = sqlx::SqlitePool;
/// The SQLite pool type, or [`Absent`].
#[cfg(not(feature = "sqlite"))]
pub type SqlitePool = Absent;

/// The PostgreSQL pool type, or [`Absent`].
#[cfg(feature = "postgres")]
pub type PgPool = sqlx::PgPool;
/// The PostgreSQL pool type, or [`Absent`].
#[cfg(not(feature = "postgres"))]
pub type PgPool = Absent;

/// A [`SqlPool`] seen as its typed pool. Unlike `SqlPool` it has every variant whatever the
/// features (a backend left out holds `&Absent`) and is not `#[non_exhaustive]`, so the
/// match `with_pool!` expands to is exhaustive in any crate.
#[derive(Debug)]
pub enum Typed<'a> {
    /// An SQLite pool.
    Sqlite(&'a SqlitePool),
    /// A PostgreSQL pool.
    Postgres(&'a PgPool),
}

/// `pool`'s typed pool.
pub fn typed(pool: &SqlPool) -> Typed<'_> {
    match pool {
        #[cfg(feature = "sqlite")]
        SqlPool::Sqlite(p) => Typed::Sqlite(p),
        #[cfg(feature = "postgres")]
        SqlPool::Postgres(p) => Typed::Postgres(p),
    }
}
