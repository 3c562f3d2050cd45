//! The domain: environments, pipelines, stages, deployments, and what their gates and
//! validators decide.
//!
//! This module never depends on axum or wasmtime. It defines the traits it needs, a
//! [`Store`](store::Store), a gate runner and an environment client, and `main` wires
//! implementations in.

pub mod engine;
pub mod gate;
pub mod model;
pub mod ports;
pub mod rules;
pub mod store;

pub use gate::{
    ComponentRef, Config, Decision, Deployment, Environment, EnvironmentKind, EnvironmentVariable,
    Finding, LogLevel, LogLine, LogStream, PluginInfo, PluginWorld, Principal, Severity, Stage,
    Timestamp, Vote,
};
