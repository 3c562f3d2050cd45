//! The real `gatehouse demo` in a child process, on a free port, with the example plugins
//! `scripts/build-plugins` wrote to `target/plugins`. Killed when dropped.
//!
//! Include it with `#[path = "support/demo.rs"] mod demo;` next to
//! `#[path = "support/server.rs"] mod server;`, whose `free_port` it uses.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::free_port;

pub struct Demo {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stdout: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- the demo printed ---\n{}", self.printed());
        }
    }
}

pub fn plugins_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins")
}

/// Fails the test unless the demo's plugins are built.
pub fn require_plugins() {
    assert!(
        plugins_dir().join("two-person-rule.wasm").is_file(),
        "run scripts/build-plugins first"
    );
}

impl Demo {
    /// Starts the demo on a free port with its data in `data`, and waits until it has
    /// printed its welcome (it is set up then).
    pub fn start(data: &Path) -> Demo {
        let port = free_port();
        let stdout = data.with_extension(format!("{port}.out"));
        let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .arg("--plugins-dir")
            .arg(plugins_dir())
            .env("GATEHOUSE_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("a log file"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("gatehouse demo starts");
        let mut demo = Demo {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stdout,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if demo.printed().contains("gatehouse deployments wait") {
                return demo;
            }
            if let Some(status) = demo.child.try_wait().ok().flatten() {
                panic!("the demo exited with {status} while setting up");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the demo did not finish setting up within 60 s");
    }

    /// What the demo printed so far.
    pub fn printed(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }
}

/// The demo's `demo-tokens.json`: `admin`, `users.{maker,alice,bob}`, `environments.*`.
/// Checks that only its owner may read it.
pub fn tokens(data: &Path) -> Value {
    let path = data.join("demo-tokens.json");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("the tokens file")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "only the owner may read {}",
            path.display()
        );
    }
    serde_json::from_str(&std::fs::read_to_string(path).expect("tokens")).expect("json")
}
