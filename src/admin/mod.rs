//! The admin HTTP API.

mod body;
pub mod error;
