//! Gatehouse: a self-hosted deployment-pipeline host whose approval gates and validators
//! are WebAssembly components.
//!
//! - [`app`]: the composition root: app state, the router, start-up, background tasks;
//! - [`pipeline`]: the domain, free of any framework;
//! - [`plugins`]: the sandboxed WebAssembly runtime that runs gates and validators;
//! - [`web`]: the web console, server-rendered pages over the same domain calls as the API.

pub mod api;
pub mod app;
pub mod cli;
pub mod environment;
pub mod envserver;
pub mod pipeline;
pub mod plugins;
pub mod solution;
pub mod store;
pub mod web;
pub mod webhooks;
