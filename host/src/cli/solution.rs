//! `gatehouse solution pack` and `gatehouse solution push`: a solution directory
//! (`solution.json` and `components/…`) made into a package, written to a file or pushed
//! to a development environment's `PUT /env/v1/solutions/{name}` (docs/environment-api.md).
//!
//! Exit codes: 0 done; 1 the environment refused the package; 2 a bad directory or
//! manifest, bad arguments, or no answer from the environment.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Output;
use crate::solution::{Manifest, PackageError, pack_directory};

/// How long connecting to the environment may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole push may take: packages go up to 256 MiB.
const PUSH_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Subcommand)]
pub enum SolutionCommand {
    /// Pack a solution directory and push it to a development environment, replacing
    /// what was pushed there before under the same name.
    Push(PushArgs),
    /// Pack a solution directory into a package file, as `push` would send it.
    Pack(PackArgs),
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The solution directory: solution.json and components/….
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The development environment's URL, such as http://127.0.0.1:8090 (what
    /// `gatehouse environment serve` printed).
    #[arg(long = "env", value_name = "URL")]
    env: String,
    /// The environment's API token, or `-` to read it from stdin.
    #[arg(
        long,
        env = "GATEHOUSE_ENV_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// Print text for people, or the environment's JSON answer for scripts.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The solution directory: solution.json and components/….
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The package file to write, such as contoso_app.zip; replaced if it exists.
    #[arg(long, short = 'o', value_name = "FILE")]
    output_file: PathBuf,
    /// Print text for people, or JSON for scripts.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// Why a solution command did not do its job.
#[derive(Debug)]
enum Failure {
    /// A bad directory, manifest or argument. Exit 2.
    Input(String),
    /// No answer from the environment, or not the Environment API. Exit 2.
    Connection(String),
    /// The environment answered with an error. Exit 1.
    Refused(String),
}

impl Failure {
    fn report(&self) -> ExitCode {
        match self {
            Failure::Input(message) | Failure::Connection(message) => {
                eprintln!("error: {message}");
                ExitCode::from(2)
            }
            Failure::Refused(message) => {
                eprintln!("error: {message}");
                ExitCode::from(1)
            }
        }
    }
}

pub async fn run(command: SolutionCommand) -> ExitCode {
    let result = match command {
        SolutionCommand::Push(args) => push(args).await,
        SolutionCommand::Pack(args) => pack(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// A package written next to its final place (or in the temp dir), removed unless kept.
struct TempPackage {
    path: PathBuf,
    keep: bool,
}

impl TempPackage {
    /// A new, empty file in `dir` that no one else uses.
    fn create(dir: &Path, stem: &str) -> Result<(TempPackage, File), Failure> {
        let mut attempt = 0u32;
        loop {
            let path = dir.join(format!(".{stem}.{}.{attempt}.partial", std::process::id()));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => return Ok((TempPackage { path, keep: false }, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => {
                    return Err(Failure::Input(format!(
                        "cannot create a package file in {}: {e}",
                        dir.display()
                    )));
                }
            }
        }
    }
}

impl Drop for TempPackage {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Packs `dir` into `file` (blocking), with the directory named in the errors.
fn pack_into(dir: &Path, file: File) -> Result<Manifest, Failure> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Failure::Input(format!(
                "{} is not a directory; give the folder that holds solution.json and components/",
                dir.display()
            )));
        }
        Err(e) => {
            return Err(Failure::Input(format!(
                "cannot read the solution directory {}: {e}",
                dir.display()
            )));
        }
    }
    pack_directory(dir, file).map_err(|e| match e {
        PackageError::MissingManifest => Failure::Input(format!(
            "{} has no solution.json; a solution directory holds solution.json and \
             components/ (see docs/solution-format.md)",
            dir.display()
        )),
        PackageError::Io(io) => Failure::Input(format!("cannot pack {}: {io}", dir.display())),
        other => Failure::Input(format!(
            "cannot pack {}: {other}; see docs/solution-format.md",
            dir.display()
        )),
    })
}

/// The SHA-256 (lower-case hex) and size of a file.
fn digest(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Failure::Input(format!("packing stopped: {e}")))?
}

async fn pack(args: PackArgs) -> Result<(), Failure> {
    let target = args.output_file.clone();
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let stem = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            Failure::Input(format!("-o {} names no file", args.output_file.display()))
        })?;
    let dir = args.dir.clone();
    let (manifest, sha256, size) = blocking(move || {
        let (mut temp, file) = TempPackage::create(&parent, &stem)?;
        let manifest = pack_into(&dir, file)?;
        let (sha256, size) = digest(&temp.path)
            .map_err(|e| Failure::Input(format!("cannot read the package back: {e}")))?;
        fs::rename(&temp.path, &target)
            .map_err(|e| Failure::Input(format!("cannot write {}: {e}", target.display())))?;
        temp.keep = true;
        Ok((manifest, sha256, size))
    })
    .await?;
    let file = args.output_file.display().to_string();
    match args.output {
        Output::Json => print_json(&json!({
            "unique_name": manifest.unique_name,
            "display_name": manifest.display_name,
            "version": manifest.version.to_string(),
            "file": file,
            "sha256": sha256,
            "size": size,
            "components": manifest.components.len(),
        })),
        Output::Text => println!(
            "packed {} {} into {file} ({size} bytes, {} component{}, sha256 {sha256})",
            manifest.unique_name,
            manifest.version,
            manifest.components.len(),
            if manifest.components.len() == 1 {
                ""
            } else {
                "s"
            },
        ),
    }
    Ok(())
}

/// The environment's origin (and path prefix), without a trailing `/` or `/env/v1`.
fn environment_base(url: &str) -> Result<String, Failure> {
    let url = url.trim();
    let has_host = ["http://", "https://"]
        .iter()
        .any(|s| url.strip_prefix(s).is_some_and(|rest| !rest.is_empty()));
    if !has_host {
        return Err(Failure::Input(format!(
            "--env {url:?} must be the environment's http:// or https:// URL, such as \
             http://127.0.0.1:8090"
        )));
    }
    let mut base = url.trim_end_matches('/');
    if let Some(stripped) = base.strip_suffix("/env/v1") {
        base = stripped.trim_end_matches('/');
    }
    reqwest::Url::parse(base)
        .map_err(|e| Failure::Input(format!("--env {url:?} is not a URL: {e}")))?;
    Ok(base.to_owned())
}

fn read_token(given: Option<String>) -> Result<String, Failure> {
    let token = match given {
        Some(t) if t.trim() == "-" => {
            let mut line = String::new();
            io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Failure::Input(format!("cannot read the token from stdin: {e}")))?;
            line
        }
        Some(t) => t,
        None => String::new(),
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(Failure::Input(
            "no token for the environment: give --token, or set GATEHOUSE_ENV_TOKEN to the \
             token `gatehouse environment serve` printed at its first start"
                .into(),
        ));
    }
    Ok(token)
}

/// The deepest cause of an error, which says what actually went wrong.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

async fn push(args: PushArgs) -> Result<(), Failure> {
    let base = environment_base(&args.env)?;
    let token = read_token(args.token)?;
    let dir = args.dir.clone();
    let (temp, manifest, size) = blocking(move || {
        let (temp, file) = TempPackage::create(&std::env::temp_dir(), "gatehouse-push.zip")?;
        let manifest = pack_into(&dir, file)?;
        let size = fs::metadata(&temp.path)
            .map_err(|e| Failure::Input(format!("cannot read the package back: {e}")))?
            .len();
        Ok((temp, manifest, size))
    })
    .await?;

    let url = format!("{base}/env/v1/solutions/{}", manifest.unique_name);
    let file = tokio::fs::File::open(&temp.path)
        .await
        .map_err(|e| Failure::Input(format!("cannot read the package back: {e}")))?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(PUSH_TIMEOUT)
        .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::Connection(format!("cannot make an HTTP client: {e}")))?;
    let response = client
        .put(&url)
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .header(CONTENT_TYPE, "application/zip")
        .header(CONTENT_LENGTH, size)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let what = if e.is_timeout() {
                "timed out".to_owned()
            } else {
                root_cause(&e)
            };
            Failure::Connection(format!(
                "could not reach the environment at {base}: {what}; check --env and that \
                 `gatehouse environment serve` runs there"
            ))
        })?;
    drop(temp);
    let status = response.status();
    let text = response.text().await.map_err(|e| {
        Failure::Connection(format!(
            "the environment at {base} stopped answering: {}",
            root_cause(&e)
        ))
    })?;
    if !status.is_success() {
        return Err(Failure::Refused(refusal(
            &format!("PUT {url}"),
            status.as_u16(),
            &text,
        )));
    }
    let answer: Value = serde_json::from_str(&text).map_err(|_| {
        Failure::Connection(format!(
            "{base} answered {status} with something that is not the Environment API; check \
             --env"
        ))
    })?;
    match args.output {
        Output::Json => print_json(&answer),
        Output::Text => {
            let field = |key: &str| answer[key].as_str().unwrap_or("?").to_owned();
            let sha = field("package_sha256");
            println!(
                "pushed {} {} ({}) to {base}: {}",
                field("unique_name"),
                field("version"),
                field("display_name"),
                if status.as_u16() == 201 {
                    "new in this environment"
                } else {
                    "replaced what was pushed before"
                }
            );
            println!(
                "package {} bytes, sha256 {sha}, {} component{}",
                answer["package_size"].as_i64().unwrap_or(size as i64),
                manifest.components.len(),
                if manifest.components.len() == 1 {
                    ""
                } else {
                    "s"
                },
            );
        }
    }
    Ok(())
}

/// What the environment's error answer says, as one message.
fn refusal(request: &str, status: u16, body: &str) -> String {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let problem = serde_json::from_str::<Value>(body).ok();
    let detail = problem
        .as_ref()
        .and_then(|p| p["detail"].as_str().or(p["title"].as_str()))
        .map(str::to_owned)
        .unwrap_or_else(|| body.trim().chars().take(300).collect());
    let mut message = format!("the environment refused the push: {detail}");
    if status == 401 {
        message.push_str("; check --token or GATEHOUSE_ENV_TOKEN");
    }
    let _ = write!(message, "\n  ({status} {reason}");
    if let Some(code) = problem.as_ref().and_then(|p| p["code"].as_str()) {
        let _ = write!(message, "; code {code}");
    }
    let _ = write!(message, "; {request})");
    message
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_url_is_normalised() {
        let base = |u: &str| environment_base(u).ok();
        assert_eq!(
            base("http://127.0.0.1:8090/").as_deref(),
            Some("http://127.0.0.1:8090")
        );
        assert_eq!(
            base("http://h:1/envs/qa/env/v1/").as_deref(),
            Some("http://h:1/envs/qa")
        );
        assert!(base("127.0.0.1:8090").is_none());
        assert!(base("memory://dev").is_none());
        assert!(base("http://").is_none());
    }

    #[test]
    fn a_refusal_names_the_detail_and_code() {
        let body = r#"{"type":"about:blank","title":"Unprocessable","status":422,
            "detail":"the package is refused: bad","code":"bad_package"}"#;
        let message = refusal("PUT http://e/env/v1/solutions/x", 422, body);
        assert!(message.contains("the package is refused: bad"), "{message}");
        assert!(message.contains("code bad_package"), "{message}");
        assert!(message.contains("422"), "{message}");
        let message = refusal("PUT u", 401, "{\"detail\":\"wrong token\"}");
        assert!(message.contains("GATEHOUSE_ENV_TOKEN"), "{message}");
    }

    #[test]
    fn no_token_is_a_usage_error() {
        assert!(matches!(read_token(None), Err(Failure::Input(_))));
        assert!(matches!(
            read_token(Some("  ".into())),
            Err(Failure::Input(_))
        ));
        assert_eq!(read_token(Some(" t ".into())).ok().as_deref(), Some("t"));
    }
}
