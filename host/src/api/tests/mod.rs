//! API tests, driven through the app's test app ([`crate::app::tests`]): the real router
//! and the real SQLite store, in process, with fakes for the plugin registry and the
//! environments.

mod access;
mod artifacts;
mod deployments;
mod environments;
mod openapi;
mod operations;
mod pipelines;
mod plugins;
mod users;

pub use crate::app::tests::*;
