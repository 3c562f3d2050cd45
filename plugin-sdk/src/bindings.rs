//! The shared `types` and `host` interfaces, generated from an import-only world.
//!
//! A component targets exactly one world, and every `generate!` embeds a description of its
//! world that the linker merges into the component's type. Generating either plugin world
//! here would make every plugin export both, so the SDK generates only what the two worlds
//! share, and each plugin generates its own world in its crate (see `export_approver!`),
//! pointing at these modules so that the types stay one and the same.

macro_rules! sdk_bindings {
    ($wit:literal) => {
        wit_bindgen::generate!({
            inline: $wit,
            world: "gatehouse:plugin/sdk",
            // Decision, Finding and the other export-side types appear in no import of
            // this world, and plugin crates map the whole `types` interface to this module.
            generate_unused_types: true,
            additional_derives: [PartialEq, Eq],
        });
    };
}

__gatehouse_wit!(callback = [sdk_bindings]);

pub use gatehouse::plugin::{host, types};
