//! Embeds `wit/gatehouse.wit` in the SDK as a string literal.
//!
//! `wit_bindgen::generate!` only takes WIT as a literal or as a path relative to the crate
//! that calls it. The `export_*!` macros run in the plugin's crate, which has no `wit/`
//! folder, so the SDK carries the contract text itself and hands it to `generate!` through
//! the `__gatehouse_wit!` macro written here.

use std::path::PathBuf;
use std::{env, fs};

/// An import-only world over the same package: the SDK generates the shared `types` and
/// `host` bindings from it, so that neither plugin world's exports leak into every plugin.
const SDK_WORLD: &str =
    "\n/// The SDK's own bindings: imports only.\nworld sdk {\n  import host;\n}\n";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let wit_file = manifest_dir.join("../wit/gatehouse.wit");
    println!("cargo:rerun-if-changed={}", wit_file.display());

    let contract = fs::read_to_string(&wit_file).unwrap_or_else(|err| {
        panic!(
            "cannot read the plugin contract at {}: {err}; the SDK must sit beside the workspace's wit/ folder",
            wit_file.display()
        )
    });
    let wit = format!("{contract}{SDK_WORLD}");

    let source = format!(
        "/// Invokes the macro at `callback` with the plugin contract's WIT text (plus the SDK's\n\
         /// import-only world) as its first token, followed by the remaining tokens.\n\
         #[doc(hidden)]\n\
         #[macro_export]\n\
         macro_rules! __gatehouse_wit {{\n\
         \x20   (callback = [$($callback:tt)*] $($args:tt)*) => {{ $($callback)*! {{ {wit:?} $($args)* }} }};\n\
         }}\n"
    );
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("gatehouse_wit.rs");
    fs::write(&out, source).unwrap_or_else(|err| panic!("cannot write {}: {err}", out.display()));
}
