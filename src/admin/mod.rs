//! The admin HTTP API.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::adapter::Adapter;
use crate::config::AdminConfig;
use crate::metrics::Metrics;

/// The admin listener's app.
pub fn router(_adapter: Arc<Adapter>, _metrics: Metrics, _config: &AdminConfig) -> Router {
    Router::new().route("/healthz", get(|| async { "ok" }))
}
