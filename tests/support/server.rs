//! The real `gatehouse serve` in a child process, on SQLite in a temporary data dir or on
//! a PostgreSQL database made for it, and a small blocking client for its REST API.
#![allow(dead_code)]

use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// Names the PostgreSQL server the PostgreSQL variants run on, such as
/// `postgres://postgres@127.0.0.1:5432/test`.
pub const POSTGRES_URL_VAR: &str = "GATEHOUSE_TEST_DATABASE_URL";

/// Where a server keeps its state.
pub enum Backend {
    /// The default: a SQLite file in the data dir.
    Sqlite,
    /// A fresh database on the server `GATEHOUSE_TEST_DATABASE_URL` names.
    Postgres(String),
}

impl Backend {
    /// PostgreSQL, from `GATEHOUSE_TEST_DATABASE_URL`; fails the test, saying how to run
    /// it, when the variable is unset.
    pub fn postgres(test: &str) -> Backend {
        match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.is_empty() => Backend::Postgres(url),
            _ => panic!(
                "{test} runs on PostgreSQL, and {POSTGRES_URL_VAR} is not set: set it (for \
                 example to postgres://postgres@127.0.0.1:5432/test), or leave out the \
                 ignored tests"
            ),
        }
    }
}

/// A `gatehouse serve` process. Killed (SIGKILL) and its database dropped when dropped.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`; a new port after each restart.
    pub base: String,
    pub admin_token: String,
    data_dir: TempDir,
    database: Option<PgDatabase>,
    memory_solutions: Vec<String>,
    log: PathBuf,
    agent: ureq::Agent,
}

/// How long a server may take to answer `/readyz` after it starts.
const READY_WITHIN: Duration = Duration::from_secs(60);

impl Server {
    /// Starts a server with a new admin token, seeding `memory_solutions`
    /// (`ENV:NAME@VERSION`) into its memory environments.
    pub fn start(backend: &Backend, memory_solutions: &[&str]) -> Server {
        let data_dir = tempfile::tempdir().expect("a temporary data dir");
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres(url) => Some(PgDatabase::create(url)),
        };
        let log = data_dir.path().join("server.log");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut server = Server {
            child: None,
            base: String::new(),
            admin_token: random_hex(32),
            data_dir,
            database,
            memory_solutions: memory_solutions.iter().map(|s| (*s).to_owned()).collect(),
            log,
            agent,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the server log opens");
        let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(self.data_dir.path());
        if let Some(db) = &self.database {
            command.arg("--database-url").arg(&db.url);
        }
        for seed in &self.memory_solutions {
            command.arg("--memory-solution").arg(seed);
        }
        command
            .env("GATEHOUSE_ADMIN_TOKEN", &self.admin_token)
            .env("NO_COLOR", "1")
            .env_remove("GATEHOUSE_DATABASE_URL")
            .env_remove("GATEHOUSE_LISTEN")
            .env_remove("GATEHOUSE_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log handle clones"))
            .stderr(log);
        self.child = Some(command.spawn().expect("gatehouse serve starts"));
        self.base = format!("http://127.0.0.1:{port}");
        self.wait_until_ready();
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "gatehouse serve exited with {status} before it was ready:\n{}",
                    self.log_tail()
                );
            }
            let ready = self
                .agent
                .get(format!("{}/readyz", self.base))
                .call()
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gatehouse serve was not ready within {READY_WITHIN:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process with SIGKILL, as a crash or an OOM kill would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the killed server again on the same data dir and database, and the same
    /// seeds (memory environments keep nothing across a restart).
    pub fn start_again(&mut self) {
        assert!(
            self.child.is_none(),
            "kill the server before starting it again"
        );
        self.spawn();
    }

    /// The server's database: its SQLite file, or the PostgreSQL database made for it.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(db) => db.url.clone(),
            None => format!(
                "sqlite://{}",
                self.data_dir.path().join("gatehouse.db").display()
            ),
        }
    }

    /// A client that calls as the holder of `token`.
    pub fn client<'a>(&'a self, token: &'a str) -> Api<'a> {
        Api {
            server: self,
            token,
        }
    }

    pub fn admin(&self) -> Api<'_> {
        self.client(&self.admin_token)
    }

    /// Everything the server has written to stdout and stderr, across restarts.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines the server wrote, for failure messages.
    pub fn log_tail(&self) -> String {
        let Ok(mut file) = std::fs::File::open(&self.log) else {
            return "(no server log)".into();
        };
        let len = file.metadata().map_or(0, |m| m.len());
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(6000)));
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        format!("--- server log ({}) ---\n{text}", self.log.display())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        // The database is dropped by its own Drop, after the process is gone.
    }
}

/// A port nobody listens on right now.
/// A port that is free now, and below the range the system takes ports from for
/// outgoing connections, so that no client socket takes it between this check and the
/// server binding it, or while a server is down for a restart.
pub fn free_port() -> u16 {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    if ephemeral_low > 12000 {
        for _ in 0..100 {
            let random = u16::from_str_radix(&random_hex(2), 16).expect("hex");
            let port = 10000 + random % (ephemeral_low - 10000);
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

/// `bytes` random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source works");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A PostgreSQL database made for one server, dropped with it.
struct PgDatabase {
    server_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    fn create(server_url: &str) -> PgDatabase {
        let name = format!("gh_e2e_{}", random_hex(8));
        run_sql(server_url, &format!("CREATE DATABASE {name}"));
        PgDatabase {
            server_url: server_url.to_owned(),
            url: with_database(server_url, &name),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let result = std::panic::catch_unwind(|| run_sql(&self.server_url, &sql));
        if result.is_err() {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

fn run_sql(server_url: &str, sql: &str) {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let mut connection = sqlx::PgConnection::connect(server_url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but PostgreSQL refused: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = connection.close().await;
    });
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// One caller of the API.
pub struct Api<'a> {
    server: &'a Server,
    token: &'a str,
}

/// An answer: its status, media type and JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
    /// What was asked, for failure messages.
    pub request: String,
}

impl Reply {
    /// The body, after checking the status.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "{} answered {} (wanted {status}): {:#}",
            self.request, self.status, self.body
        );
        self.body
    }

    /// Checks an error answer: the status, the problem+json media type, and a `detail`
    /// that says something. Returns the detail.
    #[track_caller]
    pub fn problem(self, status: u16) -> String {
        let request = self.request.clone();
        let content_type = self.content_type.clone();
        let body = self.expect(status);
        assert!(
            content_type.starts_with("application/problem+json"),
            "{request}: an error answer is application/problem+json, not {content_type:?}"
        );
        let detail = body["detail"].as_str().unwrap_or_default().to_owned();
        assert!(
            !detail.is_empty(),
            "{request}: the problem says what happened: {body:#}"
        );
        detail
    }
}

impl Api<'_> {
    pub fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, &[])
    }

    pub fn post(&self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(body), &[])
    }

    pub fn put(&self, path: &str, body: Value) -> Reply {
        self.send("PUT", path, Some(body), &[])
    }

    pub fn patch(&self, path: &str, body: Value) -> Reply {
        self.send("PATCH", path, Some(body), &[])
    }

    /// A POST with extra headers, such as `Idempotency-Key`.
    pub fn post_with(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        self.send("POST", path, Some(body), headers)
    }

    /// Uploads a plugin component as `application/wasm`.
    pub fn upload(&self, path: &str, component: &[u8]) -> Reply {
        let url = self.url(path);
        let response = self
            .server
            .agent
            .post(&url)
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/wasm")
            .send(component);
        reply(format!("POST {path}"), response)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.server.base)
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = self.url(path);
        let auth = format!("Bearer {}", self.token);
        let agent = &self.server.agent;
        let response = if method == "GET" {
            let mut request = agent.get(&url).header("Authorization", &auth);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.call()
        } else {
            let mut request = match method {
                "POST" => agent.post(&url),
                "PUT" => agent.put(&url),
                "PATCH" => agent.patch(&url),
                other => panic!("the test client does not send {other}"),
            };
            request = request.header("Authorization", &auth);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            match body {
                Some(body) => request.send_json(&body),
                None => request.send_empty(),
            }
        };
        reply(format!("{method} {path}"), response)
    }
}

/// An answer read whole: status, media type and JSON body; panics when none came.
pub fn reply(
    request: String,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Reply {
    let mut response = response.unwrap_or_else(|e| panic!("{request}: no answer: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(if text.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    });
    Reply {
        status,
        content_type,
        body,
        request,
    }
}

/// Each scenario as a test on SQLite, and one on PostgreSQL that is ignored unless asked
/// for with `--include-ignored`, so that a run without a database reports it as ignored,
/// not as passed (scripts/test asks for it when `GATEHOUSE_TEST_DATABASE_URL` is set).
/// Attributes before a scenario go on both of its tests.
#[allow(unused_macros)]
macro_rules! on_each_backend {
    ($($(#[$attr:meta])* $scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                $(#[$attr])*
                fn $scenario() {
                    super::$scenario(&super::Backend::Sqlite);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                #[ignore = "runs on PostgreSQL: set GATEHOUSE_TEST_DATABASE_URL and pass --include-ignored (scripts/test does when it is set)"]
                $(#[$attr])*
                fn $scenario() {
                    super::$scenario(&super::Backend::postgres(stringify!($scenario)));
                }
            )*
        }
    };
}
