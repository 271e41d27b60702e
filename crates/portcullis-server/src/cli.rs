//! The `portcullis` command line.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

/// Portcullis: the sample server of the Portcullis auth library, and its admin tools.
///
/// Every subcommand reads DATABASE_URL (default sqlite://portcullis.db, created if missing;
/// postgres://… works the same) and the AUTH_* variables of the contract.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (migrates the database first; creates the admin if no user exists).
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate,
    /// Manage API keys straight in the database (bootstrapping, break-glass).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Secrets for AUTH_JWT_SECRET_KEY and AUTH_AGENT_JWT_SECRET.
    #[command(subcommand)]
    Secret(SecretCommand),
}

/// `serve`'s options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "PORTCULLIS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
}

/// `keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key for a user; prints the key once (last line of output).
    Create(KeysCreateArgs),
    /// List keys (never the key or its hash).
    List {
        /// Only the keys of the user with this email.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Delete a key: it stops working at once.
    Revoke {
        /// The key's id (from `keys list`).
        key_id: String,
    },
}

/// `keys create`'s options.
#[derive(Debug, Args)]
pub struct KeysCreateArgs {
    /// Email of the user who owns the key.
    #[arg(long)]
    pub owner: String,
    /// A label for the key.
    #[arg(long)]
    pub name: String,
    /// Comma-separated permissions (`memory:read,memory:search`); a subset of the owner's role.
    #[arg(long, value_delimiter = ',', required = true)]
    pub permissions: Vec<String>,
    /// Lifetime in seconds (no expiry when absent).
    #[arg(long)]
    pub expires_in_seconds: Option<u64>,
    /// The key's own rate limit.
    #[arg(long)]
    pub rate_limit_per_minute: Option<u32>,
    /// Usage credits (1 to 2^53 - 1): each request the key authenticates takes one; at zero
    /// it is refused with 429 `usage_exhausted`. Unlimited when absent.
    #[arg(long)]
    pub remaining: Option<u64>,
}

/// `secret …`.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Print a random 32-byte secret, base64url-encoded.
    Generate,
}
