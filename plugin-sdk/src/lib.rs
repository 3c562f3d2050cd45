//! Write Gatehouse approval gates and validators in plain Rust.
//!
//! A Gatehouse plugin is a WebAssembly component. With this crate you implement
//! [`Plugin`] plus either [`Approver`] (an approval gate for a stage's pre-deployment step)
//! or [`Validator`] (a custom validator), and call one macro, [`export_approver!`] or
//! [`export_validator!`]. You never touch the WIT contract or `wit-bindgen`.
//!
//! # A complete approval gate
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "ticket-in-notes"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! gatehouse-plugin-sdk = "0.1"
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use gatehouse_plugin_sdk::prelude::*;
//!
//! struct TicketInNotes;
//!
//! impl Plugin for TicketInNotes {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("ticket-in-notes", "0.1.0", "Approves deployments whose notes name a change ticket.")
//!             .config_keys(["prefix"])
//!     }
//! }
//!
//! impl Approver for TicketInNotes {
//!     fn evaluate(deployment: &Deployment, _votes: &[Vote]) -> Decision {
//!         let prefix = Config::binding().get("prefix").unwrap_or_else(|| "CHG-".to_owned());
//!         if deployment.notes().contains(&prefix) {
//!             Decision::approve(format!("the notes name a {prefix} ticket"))
//!         } else {
//!             Decision::reject(format!("name a {prefix} change ticket in the notes, then retry"))
//!         }
//!     }
//! }
//!
//! export_approver!(TicketInNotes);
//! # fn main() {}
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and upload
//! `target/wasm32-wasip2/release/ticket_in_notes.wasm` to Gatehouse.
//!
//! # How a plugin runs
//!
//! - Every call gets a fresh instance, so nothing kept in memory survives to the next call.
//!   The host passes every vote cast so far to each `evaluate`.
//! - [`now`] (and the WASI clock) read the evaluation's recorded time, so that a decision
//!   can be replayed. Use it, not the system clock.
//! - [`Plugin::check_config`] runs when an admin binds the plugin, and its error is shown
//!   to them. Keys not listed in [`PluginInfo::config_keys`] are refused before it is
//!   called. `evaluate` and `validate` read the bound configuration with
//!   [`Config::binding`].
//! - A panic, a trap or a broken limit rejects the deployment (Gatehouse fails closed), so
//!   return [`Decision::reject`] with a clear reason rather than panicking.
//! - Keep decision logic in plain functions over plain values ([`Vote`], [`Decision`],
//!   [`Config::from_pairs`]) so that it can be unit-tested natively; the host calls behind
//!   [`Deployment`], [`Config::binding`], [`now`] and [`log`] only work inside Gatehouse.

// Defines `__gatehouse_wit!`; it must come before the modules that use it.
include!(concat!(env!("OUT_DIR"), "/gatehouse_wit.rs"));

mod bindings;
pub mod config;
mod decision;
mod deployment;
mod finding;
pub mod log;

pub use bindings::types::{
    ComponentRef, Decision, Environment, EnvironmentKind, Finding, Pending, PluginInfo, Principal,
    Severity, Stage, Timestamp, Vote,
};
pub use config::{Config, ConfigError};
pub use decision::{group, user};
pub use deployment::Deployment;

/// Everything a plugin usually needs: `use gatehouse_plugin_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Approver, ComponentRef, Config, ConfigError, Decision, Deployment, Finding, Plugin,
        PluginInfo, Principal, Severity, Validator, Vote, export_approver, export_validator, group,
        log, now, user,
    };
}

/// The evaluation's time, in milliseconds since the Unix epoch (UTC).
///
/// The host records it with the decision so that the decision can be replayed; the WASI
/// wall clock reads the same time. Only works inside Gatehouse.
pub fn now() -> Timestamp {
    bindings::host::now()
}

impl PluginInfo {
    /// Names the plugin. `name` is short, stable kebab-case, such as `two-person-rule`;
    /// `version` is semantic, such as `1.2.0` (`env!("CARGO_PKG_VERSION")` works);
    /// `description` is one sentence for the admin who binds it.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            config_keys: Vec::new(),
        }
    }

    /// Declares the configuration keys the plugin reads. The admin's form shows them, and
    /// a binding with any other key is refused.
    pub fn config_keys<I>(mut self, keys: I) -> PluginInfo
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.config_keys = keys.into_iter().map(Into::into).collect();
        self
    }
}

/// What every plugin does: describe itself and check a configuration.
pub trait Plugin {
    /// Names the plugin. The host registers it under this name and version.
    fn describe() -> PluginInfo;

    /// Called when an admin binds the plugin with `config`. An error refuses the binding,
    /// and its text is shown to the admin: say what is wrong and how to fix it.
    /// [`ConfigError`] converts into the error with `?`.
    ///
    /// Keys not declared in [`describe`](Plugin::describe) are refused before this runs.
    fn check_config(config: &Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }
}

/// An approval gate, asked during a stage's pre-deployment step whether a deployment may go
/// ahead.
pub trait Approver: Plugin {
    /// Decides on `deployment`. Called when the pre-deployment step starts, after each vote,
    /// and when a recheck falls due. `votes` holds every vote cast so far, oldest first,
    /// including votes the gate should not count (such as the requester's own).
    fn evaluate(deployment: &Deployment, votes: &[Vote]) -> Decision;
}

/// A custom validator, asked for findings while a deployment is validating.
///
/// ```
/// use gatehouse_plugin_sdk::prelude::*;
///
/// struct NoPlugins;
///
/// impl Plugin for NoPlugins {
///     fn describe() -> PluginInfo {
///         PluginInfo::new("no-plugins", "0.1.0", "Forbids plugin assemblies in solutions.")
///     }
/// }
///
/// impl Validator for NoPlugins {
///     fn validate(deployment: &Deployment) -> Vec<Finding> {
///         deployment
///             .components()
///             .iter()
///             .filter(|component| component.kind == "plugin-assembly")
///             .map(|component| {
///                 Finding::error("plugin-assembly", "remove plugin assemblies from the solution")
///                     .about(component)
///             })
///             .collect()
///     }
/// }
///
/// export_validator!(NoPlugins);
/// # fn main() {}
/// ```
pub trait Validator: Plugin {
    /// Inspects `deployment` and returns what it found; an empty list means all is well.
    /// Any [`Severity::Error`] finding fails the deployment.
    fn validate(deployment: &Deployment) -> Vec<Finding>;
}

/// Makes `$plugin`, which implements [`Approver`], the component's `approver` world.
///
/// Call it once, in the plugin crate's root module. The crate must depend on this SDK
/// under its own name, `gatehouse_plugin_sdk`, because the generated bindings name it.
#[macro_export]
macro_rules! export_approver {
    ($plugin:ty) => {
        #[doc(hidden)]
        type __GatehousePlugin = $plugin;

        #[doc(hidden)]
        mod __gatehouse_approver {
            $crate::__gatehouse_wit!(callback = [$crate::__generate_world] "gatehouse:plugin/approver");

            struct Component;

            impl exports::gatehouse::plugin::plugin::Guest for Component {
                fn describe() -> $crate::PluginInfo {
                    $crate::__private::describe::<super::__GatehousePlugin>()
                }

                fn check_config(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::check_config::<super::__GatehousePlugin>(config)
                }
            }

            impl exports::gatehouse::plugin::approval::Guest for Component {
                fn evaluate(
                    deployment: &$crate::__private::bindings::types::Deployment,
                    votes: ::std::vec::Vec<$crate::Vote>,
                ) -> $crate::Decision {
                    $crate::__private::evaluate::<super::__GatehousePlugin>(deployment, votes)
                }
            }

            export!(Component);
        }
    };
}

/// Makes `$plugin`, which implements [`Validator`], the component's `validator` world.
///
/// Call it once, in the plugin crate's root module. The crate must depend on this SDK
/// under its own name, `gatehouse_plugin_sdk`, because the generated bindings name it.
#[macro_export]
macro_rules! export_validator {
    ($plugin:ty) => {
        #[doc(hidden)]
        type __GatehousePlugin = $plugin;

        #[doc(hidden)]
        mod __gatehouse_validator {
            $crate::__gatehouse_wit!(callback = [$crate::__generate_world] "gatehouse:plugin/validator");

            struct Component;

            impl exports::gatehouse::plugin::plugin::Guest for Component {
                fn describe() -> $crate::PluginInfo {
                    $crate::__private::describe::<super::__GatehousePlugin>()
                }

                fn check_config(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::check_config::<super::__GatehousePlugin>(config)
                }
            }

            impl exports::gatehouse::plugin::validation::Guest for Component {
                fn validate(
                    deployment: &$crate::__private::bindings::types::Deployment,
                ) -> ::std::vec::Vec<$crate::Finding> {
                    $crate::__private::validate::<super::__GatehousePlugin>(deployment)
                }
            }

            export!(Component);
        }
    };
}

/// Generates one plugin world in the plugin's crate, sharing the SDK's `types` and `host`
/// bindings. `generate!` takes the WIT as a literal, which `__gatehouse_wit!` supplies;
/// its options are strings, so the SDK is named by its crate name rather than `$crate`.
#[doc(hidden)]
#[macro_export]
macro_rules! __generate_world {
    ($wit:literal $world:literal) => {
        $crate::__private::wit_bindgen::generate!({
            inline: $wit,
            world: $world,
            runtime_path: "::gatehouse_plugin_sdk::__private::wit_bindgen::rt",
            with: {
                "gatehouse:plugin/types@0.1.0": ::gatehouse_plugin_sdk::__private::bindings::types,
                "gatehouse:plugin/host@0.1.0": ::gatehouse_plugin_sdk::__private::bindings::host,
            },
        });
    };
}

/// What the export macros expand to call. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    pub mod bindings {
        pub use crate::bindings::{host, types};
    }

    use crate::{
        Approver, Config, Decision, Deployment, Finding, Plugin, PluginInfo, Validator, Vote,
    };

    pub fn describe<P: Plugin>() -> PluginInfo {
        P::describe()
    }

    pub fn check_config<P: Plugin>(pairs: Vec<(String, String)>) -> Result<(), String> {
        let config = Config::from_pairs(pairs);
        config.reject_unknown_keys(&P::describe().config_keys)?;
        P::check_config(&config)
    }

    pub fn evaluate<A: Approver>(
        deployment: &bindings::types::Deployment,
        votes: Vec<Vote>,
    ) -> Decision {
        A::evaluate(Deployment::from_resource(deployment), &votes)
    }

    pub fn validate<V: Validator>(deployment: &bindings::types::Deployment) -> Vec<Finding> {
        V::validate(Deployment::from_resource(deployment))
    }
}
