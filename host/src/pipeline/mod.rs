//! The domain: what a deployment is, and what its gates and validators decide.
//!
//! This module never depends on axum or wasmtime. The plugin runtime converts these plain
//! types to and from the WIT bindings, so the rest of the host stays free of them.

pub mod gate;

pub use gate::{
    ComponentRef, Config, Decision, Deployment, Environment, EnvironmentKind, EnvironmentVariable,
    Finding, LogLevel, LogLine, LogStream, PluginInfo, PluginWorld, Principal, Severity, Stage,
    Timestamp, Vote,
};
