//! What the benchmarks share: starting the real binary, and a small API client.

#![allow(dead_code)]

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const ADMIN_TOKEN: &str = "b3c2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2";

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `gatehouse serve` on a free port, with `extra` arguments.
pub fn start(data_dir: &std::path::Path, extra: &[&str]) -> Server {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env("GATEHOUSE_ADMIN_TOKEN", ADMIN_TOKEN);
    spawn(command, port, "/readyz")
}

/// Starts a gatehouse process listening on `port` and waits until `ready` answers.
pub fn spawn(mut command: Command, port: u16, ready: &str) -> Server {
    let child = command
        .env("GATEHOUSE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the gatehouse binary starts");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = ureq::get(&format!("{}{ready}", server.base)).call()
            && r.status().as_u16() < 500
        {
            return server;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && ready.is_empty() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server did not become ready");
}

pub struct Client {
    pub agent: ureq::Agent,
    pub base: String,
    /// The bearer token it calls with.
    pub token: String,
}

impl Client {
    /// A client of the API at `base` that calls as the admin.
    pub fn new(base: &str) -> Client {
        Client::with_token(base, ADMIN_TOKEN)
    }

    /// A client of the API at `base` that calls as the holder of `token`.
    pub fn with_token(base: &str, token: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        Client {
            agent,
            base: format!("{base}/api/v1"),
            token: token.to_owned(),
        }
    }

    pub fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("authorization", &auth).call(),
            ("POST", Some(b)) => self
                .agent
                .post(&url)
                .header("authorization", &auth)
                .send_json(b),
            ("PUT", Some(b)) => self
                .agent
                .put(&url)
                .header("authorization", &auth)
                .send_json(b),
            (m, _) => panic!("unsupported {m}"),
        };
        let mut response = response.expect("the server answers");
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_json::<Value>()
            .unwrap_or(Value::Null);
        (status, body)
    }

    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.send(method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {value}"
        );
        value
    }

    pub fn upload(&self, name: &str) -> String {
        let mut response = self
            .agent
            .post(&format!("{}/plugins", self.base))
            .header("authorization", &format!("Bearer {}", self.token))
            .header("content-type", "application/wasm")
            .send(&support::plugin_bytes(name)[..])
            .expect("the upload is answered");
        let value: Value = response.body_mut().read_json().expect("json");
        value["id"]
            .as_str()
            .unwrap_or_else(|| panic!("upload of {name}: {value}"))
            .to_owned()
    }
}
