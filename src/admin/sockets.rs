//! Sockets: `POST /v1/disconnect` (the selected sockets leave their namespace, as on the
//! server's `socket.disconnect()`) and `GET /v1/sockets` (who is connected).
//!
//! A listing shows what backends need to address and debug clients: sid, rooms (without
//! the sid's own room), transport, parser, Engine.IO version, peer address, connect
//! time, and the `user` and `data` authentication gave it; never the client's `auth`
//! payload, token or cookies.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Uri;
use axum::{Extension, Json};
use serde::Serialize;

use super::audit::Access;
use super::body::{Fields, read_json};
use super::error::ApiError;
use super::{AdminState, Count, LiveConfig, selector};
use crate::config::AdminOp;

/// `POST /v1/disconnect`.
pub async fn disconnect(
    State(state): State<AdminState>,
    Extension(live): Extension<Arc<LiveConfig>>,
    Extension(access): Extension<Access>,
    request: Request,
) -> Result<Json<Count>, ApiError> {
    let value = read_json(request, live.max_body_bytes).await?;
    let mut fields = Fields::new(value, &selector::FIELDS)?;
    let target = selector::from_fields(&mut fields, state.user_rooms())?;
    access.check(AdminOp::Disconnect, &target, &[])?;
    let applied = state.adapter().disconnect(&target).await?;
    Ok(Json(applied.into()))
}

/// The answer of `GET /v1/sockets`.
#[derive(Debug, Serialize)]
pub struct SocketList {
    sockets: Vec<Socket>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    partial: bool,
}

#[derive(Debug, Serialize)]
struct Socket {
    sid: String,
    namespace: String,
    rooms: Vec<String>,
    transport: Option<&'static str>,
    parser: Option<String>,
    eio: Option<u8>,
    address: Option<String>,
    connected_at: Option<String>,
    user: Option<String>,
    data: Option<serde_json::Value>,
}

/// `GET /v1/sockets?namespace=…&to=…&except=…`.
pub async fn list(
    State(state): State<AdminState>,
    Extension(access): Extension<Access>,
    uri: Uri,
) -> Result<Json<SocketList>, ApiError> {
    let target = selector::from_query(uri.query(), state.user_rooms())?;
    access.check_read(&target)?;
    let listing = state.adapter().sockets(&target).await?;
    let sockets = listing
        .items
        .into_iter()
        .map(|s| Socket {
            rooms: s.rooms.into_iter().filter(|r| *r != s.sid).collect(),
            sid: s.sid,
            namespace: s.namespace,
            transport: s.transport.map(|t| t.as_str()),
            parser: s.parser,
            eio: s.eio,
            address: s.address,
            connected_at: s.connected_at,
            user: s.user,
            data: s.data,
        })
        .collect();
    Ok(Json(SocketList {
        sockets,
        partial: listing.partial,
    }))
}
