//! Gatehouse: a self-hosted deployment-pipeline host whose approval gates and validators
//! are WebAssembly components.
//!
//! - [`app`]: the composition root: app state, the router, start-up, background tasks;
//! - [`pipeline`]: the domain: model, rules, the gate round, services, and the ports that
//!   the adapters below implement;
//! - [`api`] and [`web`]: the REST API and the console, siblings over the same services;
//! - [`store`]: SQLite and PostgreSQL persistence;
//! - [`plugins`]: the sandboxed WebAssembly runtime that runs gates and validators;
//! - [`environment`]: the Environment API client, its wire types and import rules;
//! - [`envserver`]: the reference environment server, a product of its own;
//! - [`solution`]: the solution package format;
//! - [`webhook_sender`]: delivers webhooks to their receivers;
//! - [`outbound`]: the allow-list of addresses environment and webhook calls may reach;
//! - [`cli`]: the `gatehouse` command.

pub mod api;
pub mod app;
pub mod cli;
pub mod environment;
pub mod envserver;
pub mod outbound;
pub mod pipeline;
pub mod plugins;
pub mod solution;
pub mod store;
pub mod web;
pub mod webhook_sender;
