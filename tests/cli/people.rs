//! The command line as people use it: a `gatehouse` process with its own saved login,
//! its output collected as it comes.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::PATIENCE;

/// What a finished CLI run left.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub args: String,
}

impl Run {
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "`gatehouse {}` exited {:?} (wanted {code})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A CLI process still running, its output collected as it comes.
pub struct Running {
    pub child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    args: String,
}

fn collect(
    mut from: impl Read + Send + 'static,
) -> (Arc<Mutex<String>>, std::thread::JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("the output lock")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (text, reader)
}

impl Running {
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("the output lock").clone()
    }

    /// Waits until stdout shows `needle`.
    #[track_caller]
    pub fn wait_for_stdout(&mut self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.stdout().contains(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "`gatehouse {}` exited {status} before printing {needle:?}:\n{}",
                    self.args,
                    self.stdout()
                );
            }
            assert!(
                Instant::now() < deadline,
                "`gatehouse {}` did not print {needle:?}:\n{}",
                self.args,
                self.stdout()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn finish(mut self) -> Run {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "`gatehouse {}` did not finish within {PATIENCE:?}:\n{}",
                    self.args,
                    self.stdout()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Run {
            code: status.code(),
            stdout: self.stdout(),
            stderr: self.stderr.lock().expect("the output lock").clone(),
            args: self.args,
        }
    }
}

/// One person at the command line, with their own saved login.
pub struct Person {
    pub id: String,
    pub token: String,
    pub config: PathBuf,
}

impl Person {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        command
            .args(args)
            .env("GATEHOUSE_CONFIG", &self.config)
            .env("GATEHOUSE_LOG", "warn")
            .env("NO_COLOR", "1")
            .env_remove("GATEHOUSE_SERVER")
            .env_remove("GATEHOUSE_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    pub fn start_with(&self, mut command: Command, args: &[&str], stdin: Option<&str>) -> Running {
        command.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = command.spawn().expect("the gatehouse binary starts");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("a stdin pipe");
            pipe.write_all(input.as_bytes()).expect("stdin is written");
        }
        let (stdout, out_reader) = collect(child.stdout.take().expect("a stdout pipe"));
        let (stderr, err_reader) = collect(child.stderr.take().expect("a stderr pipe"));
        Running {
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
            args: args.join(" "),
        }
    }

    /// Starts `gatehouse` with the words of `line`; arguments with spaces need `run_args`.
    pub fn start(&self, line: &str) -> Running {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.start_with(self.command(&args), &args, None)
    }

    pub fn run(&self, line: &str) -> Run {
        self.start(line).finish()
    }

    pub fn run_args(&self, args: &[&str]) -> Run {
        self.start_with(self.command(args), args, None).finish()
    }

    /// `run_args` with `--output json`, expecting exit 0; parses stdout.
    #[track_caller]
    pub fn json_args(&self, args: &[&str]) -> Value {
        let run = self
            .run_args(&[args, &["--output", "json"]].concat())
            .expect(0);
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "`gatehouse {}` printed no JSON ({e}):\n{}",
                run.args, run.stdout
            )
        })
    }

    /// Runs `gatehouse ARGS | head -n 1` through `sh`, with a real pipe: stdout is what
    /// `head` printed; the exit code and stderr are gatehouse's own.
    pub fn through_head(&self, args: &[&str]) -> Run {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (code, stderr) = (dir.path().join("code"), dir.path().join("stderr"));
        let script = r#"{ "$0" "$@" 2>"$GH_STDERR"; echo $? >"$GH_CODE"; } | head -n 1"#;
        let output = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_gatehouse"))
            .args(args)
            .env("GATEHOUSE_CONFIG", &self.config)
            .env("GATEHOUSE_LOG", "warn")
            .env_remove("GATEHOUSE_SERVER")
            .env_remove("GATEHOUSE_TOKEN")
            .env("GH_STDERR", &stderr)
            .env("GH_CODE", &code)
            .stdin(Stdio::null())
            .output()
            .expect("sh runs");
        assert!(output.status.success(), "the pipeline ran: {output:?}");
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        Run {
            code: read(&code).trim().parse().ok(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: read(&stderr),
            args: format!("{} | head -n 1", args.join(" ")),
        }
    }

    /// Runs with `--output json`, expects exit 0, and parses stdout.
    #[track_caller]
    pub fn json(&self, line: &str) -> Value {
        let run = self.run(&format!("{line} --output json")).expect(0);
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "`gatehouse {}` printed no JSON ({e}):\n{}",
                run.args, run.stdout
            )
        })
    }
}
