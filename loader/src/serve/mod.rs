//! `xray-loader serve`: the nweb node's local API (JSON, port 7777) and Analyst UI
//! (server-rendered HTML, port 3000) over one pool of reader sessions.
//!
//! Every page is one endpoint function in `pages.rs` that validates its input
//! (`params.rs`), runs bounded queries and returns a [`View`]: the rows as JSON for the
//! API and the same rows as HTML for the UI, so the two can never disagree.
//!
//! Security: the pool logs in as a role that must not bypass row-level security
//! (checked at start), every session is read-only with a statement timeout, and XRAY
//! pages run in a transaction that first calls `xray.set_tenant(tenant, true)`, so the
//! database, not this server, decides which tenant rows a request sees.

pub mod chart;
pub mod html;
pub mod pages;
pub mod params;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use deadpool_postgres::Pool;
use serde_json::{json, Value};

use crate::db::pg_error;

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub pool: Pool,
    /// Where `<cid>.car` files are kept (the hoarder's `ipfs.car_dir`), for screenshots.
    pub car_dir: Option<PathBuf>,
}

/// What an endpoint produced: the data for `/api/...` and its page for the UI.
pub struct View {
    pub title: String,
    pub json: Value,
    pub html: String,
}

/// A request's failure, shown as `{"error": ...}` by the API and as an error page by the UI.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    message: String,
}

impl AppError {
    pub fn bad(m: impl Into<String>) -> AppError {
        AppError { status: StatusCode::BAD_REQUEST, message: m.into() }
    }
    pub fn not_found(m: impl Into<String>) -> AppError {
        AppError { status: StatusCode::NOT_FOUND, message: m.into() }
    }
    #[cfg(test)]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<tokio_postgres::Error> for AppError {
    fn from(e: tokio_postgres::Error) -> AppError {
        let code = e.code().map(|c| c.code().to_string());
        match code.as_deref() {
            // set_tenant: the login role was not granted this tenant.
            Some("42501") => AppError {
                status: StatusCode::FORBIDDEN,
                message: e.as_db_error().map_or_else(|| pg_error(&e), |d| d.message().to_string()),
            },
            Some("57014") => AppError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "the query took longer than the statement timeout; narrow the filters".into(),
            },
            _ => {
                tracing::error!(error = %pg_error(&e), "query failed");
                AppError { status: StatusCode::INTERNAL_SERVER_ERROR, message: "database error (see the server log)".into() }
            }
        }
    }
}

impl From<deadpool_postgres::PoolError> for AppError {
    fn from(e: deadpool_postgres::PoolError) -> AppError {
        tracing::error!(error = %e, "no database session");
        AppError { status: StatusCode::SERVICE_UNAVAILABLE, message: "the database is not reachable".into() }
    }
}

/// The request as endpoints see it: path segments in order and the raw query string.
pub struct Req {
    pub path: Vec<String>,
    pub query: Option<String>,
}

#[derive(Clone, Copy)]
pub enum Ep {
    Search,
    Host,
    Bundles,
    Bundle,
    Challenges,
    Submitters,
    Exposures,
    Events,
    Fix,
}

async fn call(ep: Ep, s: &AppState, r: &Req) -> Result<View, AppError> {
    match ep {
        Ep::Search => pages::search(s, r).await,
        Ep::Host => pages::host(s, r).await,
        Ep::Bundles => pages::bundles(s, r).await,
        Ep::Bundle => pages::bundle(s, r).await,
        Ep::Challenges => pages::challenges(s, r).await,
        Ep::Submitters => pages::submitters(s, r).await,
        Ep::Exposures => pages::exposures(s, r).await,
        Ep::Events => pages::events(s, r).await,
        Ep::Fix => pages::fix(s, r).await,
    }
}

const ROUTES: &[(&str, Ep)] = &[
    ("/search", Ep::Search),
    ("/hosts/{ip}", Ep::Host),
    ("/bundles", Ep::Bundles),
    ("/bundles/{cid}", Ep::Bundle),
    ("/challenges", Ep::Challenges),
    ("/submitters", Ep::Submitters),
    ("/xray/exposures", Ep::Exposures),
    ("/xray/events", Ep::Events),
    ("/xray/fix/{event_id}", Ep::Fix),
];

type PathArgs = Option<Path<Vec<String>>>;

fn req(path: PathArgs, query: Option<String>) -> Req {
    Req { path: path.map(|Path(p)| p).unwrap_or_default(), query }
}

/// The JSON API: every page's data under `/api/...`.
pub fn api_router(state: AppState) -> Router {
    let mut r = Router::new();
    for &(path, ep) in ROUTES {
        r = r.route(
            &format!("/api{path}"),
            get(move |State(s): State<AppState>, p: PathArgs, RawQuery(q): RawQuery| async move {
                match call(ep, &s, &req(p, q)).await {
                    Ok(v) => Json(v.json).into_response(),
                    Err(e) => (e.status, Json(json!({"error": e.message}))).into_response(),
                }
            }),
        );
    }
    r.route("/api/health", get(|| async { Json(json!({"ok": true})) }))
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"error": "no such endpoint; see docs/ui.md"}))) })
        .with_state(state)
    // `serve --specs` merges the dispatcher's routes (`/getwork`, ...) in front of these.
}

/// The Analyst UI: the same endpoints as HTML pages, plus screenshots.
pub fn ui_router(state: AppState) -> Router {
    let mut r = Router::new();
    for &(path, ep) in ROUTES {
        r = r.route(
            path,
            get(move |State(s): State<AppState>, p: PathArgs, RawQuery(q): RawQuery| async move {
                match call(ep, &s, &req(p, q)).await {
                    Ok(v) => page(StatusCode::OK, &v.title, &v.html),
                    Err(e) => page(e.status, "Error", &html::error_body(e.status, &e.message)),
                }
            }),
        );
    }
    r.route("/", get(|| async { axum::response::Redirect::to("/search") }))
        .route(
            "/screenshots/{cid}/{*path}",
            get(|State(s): State<AppState>, Path((cid, path)): Path<(String, String)>| async move {
                match pages::screenshot(&s, &cid, &path).await {
                    Ok((mime, bytes)) => ([(header::CONTENT_TYPE, mime)], bytes).into_response(),
                    Err(e) => page(e.status, "Error", &html::error_body(e.status, &e.message)),
                }
            }),
        )
        .fallback(|| async {
            page(StatusCode::NOT_FOUND, "Not found", &html::error_body(StatusCode::NOT_FOUND, "no such page"))
        })
        .with_state(state)
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    (status, Html(html::layout(title, body))).into_response()
}
