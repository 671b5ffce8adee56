//! `xray-loader serve`: the local API and the Analyst UI of an nweb node.
//!
//! 1. A small pool of sessions on the database (deadpool-postgres), each read-only with
//!    a statement timeout, so no request can write or run long.
//! 2. The login role is checked once: it must not bypass row-level security (superuser
//!    or BYPASSRLS), since the tenant rules of XRAY live in the database; a person may
//!    override that for a single-user node with --allow-rls-bypass. It should be a
//!    member of xray_reader, or the pages fail on permissions.
//! 3. Two listeners on loopback by default: the JSON API (`/api/...`, 7777) and the UI
//!    (HTML, 3000), both from `crate::serve`. Stdout gets one line per listener,
//!    `api\thttp://ADDR` and `ui\thttp://ADDR`, so a script can find the ports.
//! 4. Runs until SIGTERM/SIGINT.

use std::future::IntoFuture;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::db::{self, describe, pg_error, redact_url};
use crate::serve::{api_router, ui_router, AppState, Inner};

/// `xray-loader serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address of the JSON API.
    #[arg(long, env = "XRAY_API_LISTEN", default_value = "127.0.0.1:7777")]
    pub api_listen: SocketAddr,
    /// Address of the Analyst UI.
    #[arg(long, env = "XRAY_UI_LISTEN", default_value = "127.0.0.1:3000")]
    pub ui_listen: SocketAddr,
    /// Directory of `<cid>.car` files (the hoarder's ipfs.car_dir), for screenshots.
    #[arg(long, env = "XRAY_CAR_DIR", value_name = "DIR")]
    pub car_dir: Option<PathBuf>,
    /// Database sessions in the pool.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub pool_size: u16,
    /// Per-statement time limit in milliseconds.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(100..=60000))]
    pub statement_timeout_ms: u32,
    /// Start even when the login role bypasses row-level security (superuser): then
    /// every granted-or-not tenant is readable, so only for a single-user node.
    #[arg(long)]
    pub allow_rls_bypass: bool,
    /// Also serve the dispatcher (`/getwork`, `/specs/{cid}`, `/deny`) on the API port,
    /// from this directory of target specs (as `xray-loader dispatch --specs`).
    #[arg(long, value_name = "DIR")]
    pub specs: Option<PathBuf>,
    /// The dispatcher's deny list (with --specs). Default: an empty list.
    #[arg(long, value_name = "FILE", requires = "specs")]
    pub deny: Option<PathBuf>,
}

pub async fn run(args: ServeArgs, cli_db: Option<String>) -> Result<ExitCode> {
    // The specs are validated before anything listens, as `dispatch` does.
    let dispatcher = match &args.specs {
        Some(dir) => Some(std::sync::Arc::new(crate::dispatch::Catalogue::load(dir, args.deny.as_deref())?)),
        None => None,
    };
    let url = db::database_url(cli_db, None);
    let mut cfg = tokio_postgres::Config::from_str(&url)
        .map_err(|e| anyhow!("invalid database URL {}: {}", redact_url(&url), pg_error(&e)))?;
    cfg.options(format!(
        "-c statement_timeout={} -c default_transaction_read_only=on -c idle_in_transaction_session_timeout=10000",
        args.statement_timeout_ms
    ));
    cfg.application_name("xray-loader serve");
    let mgr = Manager::from_config(cfg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let pool = Pool::builder(mgr)
        .max_size(args.pool_size.into())
        .wait_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .context("cannot build the database pool")?;
    let client = pool
        .get()
        .await
        .map_err(|e| anyhow!("cannot connect to database ({}): {e}", describe(&url)))?;
    let row = client
        .query_one(
            "SELECT session_user::text, xray.session_bypasses_rls(), pg_has_role(session_user, 'xray_reader', 'MEMBER')",
            &[],
        )
        .await
        .map_err(|e| anyhow!("cannot check the login role (is the xray_pg extension installed?): {}", pg_error(&e)))?;
    let (role, bypass, reader): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
    drop(client);
    if bypass && !args.allow_rls_bypass {
        bail!(
            "role {role} bypasses row-level security, so the server could show any tenant's XRAY data; \
             connect as a reader (CREATE ROLE xray_ui LOGIN PASSWORD '...' IN ROLE xray_reader) or pass --allow-rls-bypass"
        );
    }
    if !reader {
        tracing::warn!(role, "the login role is not a member of xray_reader; pages will fail on permissions");
    }
    if bypass {
        tracing::warn!(role, "serving as a role that bypasses row-level security (--allow-rls-bypass)");
    }
    let state = AppState(Arc::new(Inner { pool, car_dir: args.car_dir }));
    let api = tokio::net::TcpListener::bind(args.api_listen)
        .await
        .with_context(|| format!("--api-listen {}: cannot listen", args.api_listen))?;
    let ui = tokio::net::TcpListener::bind(args.ui_listen)
        .await
        .with_context(|| format!("--ui-listen {}: cannot listen", args.ui_listen))?;
    let (api_addr, ui_addr) = (api.local_addr()?, ui.local_addr()?);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "api\thttp://{api_addr}")?;
        writeln!(out, "ui\thttp://{ui_addr}")?;
        out.flush()?;
    }
    tracing::info!(%api_addr, %ui_addr, role, "serving");
    let mut api_routes = api_router(state.clone());
    if let Some(catalogue) = dispatcher {
        api_routes = crate::dispatch::router(catalogue).merge(api_routes);
    }
    let api = axum::serve(api, api_routes);
    let ui = axum::serve(ui, ui_router(state));
    tokio::select! {
        r = api.into_future() => r.context("the API server stopped")?,
        r = ui.into_future() => r.context("the UI server stopped")?,
    }
    Ok(ExitCode::SUCCESS)
}
