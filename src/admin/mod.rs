//! The admin HTTP API.

mod binary;
mod body;
pub mod error;
mod selector;
