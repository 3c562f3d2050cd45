//! Lines for the deployment's plugin log.
//!
//! The log is size-capped per call, and a plugin that writes past the cap is stopped, so
//! log what an admin needs to understand a decision, not every step. Never log a secret.
//! Each function takes anything printable, including `format_args!("…")`.

use std::fmt::Display;

use crate::bindings::host::{self, Level};

/// Detail for whoever debugs the plugin.
pub fn debug(message: impl Display) {
    host::log(Level::Debug, &message.to_string());
}

/// What the plugin decided and why.
pub fn info(message: impl Display) {
    host::log(Level::Info, &message.to_string());
}

/// Something the admin should look at, such as a fallback to a default.
pub fn warn(message: impl Display) {
    host::log(Level::Warn, &message.to_string());
}

/// Something went wrong.
pub fn error(message: impl Display) {
    host::log(Level::Error, &message.to_string());
}
