//! `xray-loader dispatch`: the dispatcher on its own (docs/nweb-chain.md, "Dispatcher and
//! target specs"). The specs and the deny list are validated before the port is bound, so a
//! bad file exits 1 with one line naming the file and the field.
//!
//! Stdout gets one line, the base URL collectors pass to `collect --from`, once the port
//! is bound (with `--listen 127.0.0.1:0` that is how a caller learns the port).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, Result};

use crate::dispatch::{router, Catalogue};

/// `xray-loader dispatch`.
#[derive(Debug, clap::Args)]
pub struct DispatchArgs {
    /// Directory of target specs, one JSON document per `*.json` file.
    #[arg(long)]
    pub specs: PathBuf,
    /// The deny list (JSON, schema nweb.denylist.v1). Default: an empty list.
    #[arg(long)]
    pub deny: Option<PathBuf>,
    /// Address to listen on; loopback unless you mean to publish.
    #[arg(long, default_value = "127.0.0.1:7777")]
    pub listen: SocketAddr,
}

pub async fn run(args: DispatchArgs) -> Result<ExitCode> {
    let catalogue = Catalogue::load(&args.specs, args.deny.as_deref())?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow!("--listen {}: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, specs = catalogue.specs.len(), deny_cid = %catalogue.deny.cid, "dispatcher listening");
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "http://{addr}")?;
    stdout.flush()?;
    drop(stdout);
    axum::serve(listener, router(Arc::new(catalogue)))
        .await
        .map_err(|e| anyhow!("dispatcher on {addr}: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
