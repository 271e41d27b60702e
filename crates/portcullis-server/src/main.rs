//! `portcullis`: the sample server of the Portcullis auth library (shared/CONTRACT.md), and
//! the commands that bootstrap it. Run `portcullis --help`.
#![forbid(unsafe_code)]

mod cli;
mod data;
mod keys_cli;
mod metrics;
mod openapi;
mod routes;
mod settings;
mod state;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser as _;
use tokio::net::TcpListener;

use crate::cli::{Cli, Command, SecretCommand, ServeArgs};
use crate::state::AppState;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portcullis: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate => {
            let url = settings::database_url();
            let sql = portcullis::sql::SqlStores::connect(&url)
                .await
                .map_err(|e| e.to_string())?;
            sql.migrate().await.map_err(|e| e.to_string())?;
            data::Data::new(sql.pool().clone())
                .migrate()
                .await
                .map_err(|e| e.to_string())?;
            println!("migrated {}", sql.pool().backend_name());
            Ok(())
        }
        Command::Keys(cmd) => keys_cli::run(cmd).await,
        Command::Secret(SecretCommand::Generate) => {
            println!("{}", settings::generate_secret());
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let url = settings::database_url();
    let config = settings::auth_config(&url)?;
    // The HTTP policy is refused here, before anything connects: board fallback in
    // production, or on a non-loopback bind unless allowed.
    let policy = settings::http_policy()?;
    policy.check_env(config.env).map_err(|e| e.to_string())?;
    policy.check_bind(args.bind).map_err(|e| e.to_string())?;
    let metrics_bind = settings::metrics_bind()?;
    let state = AppState::connect(config).await?;
    if let Some(bind) = metrics_bind {
        let addr = metrics::serve(bind, state.auth.clone()).await?;
        tracing::info!(%addr, "serving /metrics");
        // Before the main line, which is what scripts and tests wait for.
        println!("metrics on http://{addr}/metrics");
    }
    // External issuers' keys: production does not start without them; development retries.
    let failed = state.auth.start_issuers().await;
    portcullis::oidc::refuse_unreachable(state.auth.config().env, &failed)
        .map_err(|e| e.to_string())?;
    state.ensure_admin().await?;
    // Expired sessions and denylist entries, and audit events past their retention, go from
    // SQL now and then.
    state
        .sql
        .spawn_purge(Duration::from_secs(600), state.auth.clock().clone());
    let layer = portcullis::AuthLayer::builder(state.auth.clone())
        .policy(policy)
        .build()
        .map_err(|e| e.to_string())?;
    let app = routes::router(state.clone(), layer);
    let listener = TcpListener::bind(args.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // The one line on stdout that scripts and tests wait for.
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(%addr, "serving");
    // With the peer's address, for the audit log's `client`.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| e.to_string())?;
    state.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
