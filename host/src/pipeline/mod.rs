//! The domain: environments, pipelines, stages, deployments, and what their gates and
//! validators decide.
//!
//! This module never depends on axum or wasmtime. It defines the traits it needs, a
//! [`Store`](store::Store), a gate runner and an environment client, and `main` wires
//! implementations in.

pub mod access;
pub mod accounts;
pub mod audit;
pub mod backups;
pub mod bindings;
pub mod catalog;
pub mod console;
pub mod deployment_query;
pub mod engine;
pub mod events;
pub mod gate;
pub mod gate_round;
pub mod installations;
pub mod model;
pub mod operations;
pub mod plugin_admin;
pub mod plugin_limits;
pub mod ports;
pub mod reports;
pub mod retention;
pub mod rules;
pub mod service_error;
pub mod services;
pub mod store;
pub mod timeline;
pub mod webhooks;

pub use gate::{
    ComponentRef, Config, Decision, DeploymentFacts, Environment, EnvironmentKind,
    EnvironmentVariable, Finding, LogLevel, LogLine, LogStream, PluginInfo, PluginWorld, Principal,
    Severity, Stage, Timestamp, Vote,
};
