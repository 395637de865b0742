//! Rooms: `POST /v1/join`, `POST /v1/leave` (the selected sockets join or leave rooms) and
//! `GET /v1/rooms` (a namespace's rooms and their sizes, without per-sid rooms).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Uri;
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::Value;

use super::audit::Access;
use super::body::{Fields, read_json, wrong_type};
use super::error::ApiError;
use super::{AdminState, Count, LiveConfig, selector};
use crate::adapter::Target;
use crate::config::AdminOp;

const FIELDS: [&str; 7] = [
    "namespace",
    "to",
    "room",
    "except",
    "broadcast",
    "user",
    "rooms",
];

/// Validates a join or leave body: the selector and `rooms`.
pub fn parse(
    value: serde_json::Value,
    user_prefix: &str,
) -> Result<(Target, Vec<String>), ApiError> {
    let mut fields = Fields::new(value, &FIELDS)?;
    let target = selector::from_fields(&mut fields, user_prefix)?;
    // An array, as the contract types it; unlike `to`, a lone string is refused.
    let rooms = match fields.take("rooms") {
        None => return Err(ApiError::field("`rooms` is required")),
        Some(value @ Value::Array(_)) => selector::names("rooms", value)?,
        Some(other) => return Err(wrong_type("rooms", "an array of room names", &other)),
    };
    Ok((target, rooms))
}

/// `POST /v1/join`.
pub async fn join(
    State(state): State<AdminState>,
    Extension(live): Extension<Arc<LiveConfig>>,
    Extension(access): Extension<Access>,
    request: Request,
) -> Result<Json<Count>, ApiError> {
    let body = read_json(request, live.max_body_bytes).await?;
    let (target, rooms) = parse(body, state.user_rooms())?;
    access.check(AdminOp::Join, &target, &rooms)?;
    let applied = state.adapter().join(&target, &rooms).await?;
    Ok(Json(applied.into()))
}

/// `POST /v1/leave`.
pub async fn leave(
    State(state): State<AdminState>,
    Extension(live): Extension<Arc<LiveConfig>>,
    Extension(access): Extension<Access>,
    request: Request,
) -> Result<Json<Count>, ApiError> {
    let body = read_json(request, live.max_body_bytes).await?;
    let (target, rooms) = parse(body, state.user_rooms())?;
    access.check(AdminOp::Leave, &target, &rooms)?;
    let applied = state.adapter().leave(&target, &rooms).await?;
    Ok(Json(applied.into()))
}

/// The answer of `GET /v1/rooms`.
#[derive(Debug, Serialize)]
pub struct RoomList {
    rooms: Vec<Room>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    partial: bool,
}

#[derive(Debug, Serialize)]
struct Room {
    name: String,
    size: usize,
}

/// `GET /v1/rooms?namespace=…`; a scoped key sees only the rooms it may address.
pub async fn list(
    State(state): State<AdminState>,
    Extension(access): Extension<Access>,
    uri: Uri,
) -> Result<Json<RoomList>, ApiError> {
    let pairs = selector::query_pairs(uri.query(), &["namespace"])?;
    let namespace = selector::query_namespace(&pairs)?;
    if let Some(scope) = &access.caller.scope {
        scope.check_read(&namespace)?;
    }
    let listing = state.adapter().rooms(&namespace).await?;
    let mut rooms: Vec<Room> = listing
        .items
        .into_iter()
        .filter(|r| access.may_see_room(&r.name))
        .map(|r| Room {
            name: r.name,
            size: r.size,
        })
        .collect();
    rooms.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(RoomList {
        rooms,
        partial: listing.partial,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn join_bodies() {
        let (target, rooms) = parse(json!({"to": "s", "rooms": ["a", "b"]}), "user:").unwrap();
        assert_eq!(target.to, vec!["s".to_string()]);
        assert_eq!(rooms, vec!["a".to_string(), "b".to_string()]);
        let (_, rooms) = parse(json!({"broadcast": true, "rooms": ["a", "a"]}), "user:").unwrap();
        assert_eq!(rooms, vec!["a".to_string()]);
        for (body, code) in [
            (json!({"to": "s"}), "invalid_field"),
            (json!({"to": "s", "rooms": []}), "invalid_field"),
            (json!({"to": "s", "rooms": [""]}), "invalid_field"),
            (json!({"to": "s", "rooms": [1]}), "invalid_field"),
            (json!({"to": "s", "rooms": null}), "invalid_field"),
            (json!({"to": "s", "rooms": "a"}), "invalid_field"),
            (json!({"to": "s", "rooms": {"a": 1}}), "invalid_field"),
            (json!({"rooms": ["a"]}), "missing_target"),
            (
                json!({"to": "s", "rooms": ["a"], "room": "x"}),
                "conflicting_target",
            ),
            (
                json!({"to": "s", "rooms": ["a"], "event": "x"}),
                "unknown_field",
            ),
        ] {
            assert_eq!(
                parse(body.clone(), "user:").map_err(|e| e.code()).err(),
                Some(code),
                "{body}"
            );
        }
    }
}
