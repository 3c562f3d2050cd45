//! The saved login: `{server, token}` in `$GATEHOUSE_CONFIG`, or
//! `$XDG_CONFIG_HOME/gatehouse/cli.json`, or `~/.config/gatehouse/cli.json`, readable only
//! by its owner (mode 0600). And how a command picks its server and token from the saved
//! login, the flags and the environment.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CliError;
use super::http::normalize_server;

/// What `gatehouse login` saves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedLogin {
    pub server: String,
    pub token: String,
}

/// The server and token one command uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub server: String,
    pub token: String,
}

/// Where the login is kept, from the process environment.
pub fn config_path() -> Result<PathBuf, CliError> {
    path_from(
        std::env::var_os("GATEHOUSE_CONFIG"),
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
    .ok_or_else(|| {
        CliError::Usage(
            "cannot tell where to keep the login: set GATEHOUSE_CONFIG to a file path, or HOME"
                .into(),
        )
    })
}

/// Where the login is kept: `GATEHOUSE_CONFIG`, else `XDG_CONFIG_HOME/gatehouse/cli.json`
/// (when absolute, as the XDG spec requires), else `HOME/.config/gatehouse/cli.json`.
pub fn path_from(
    gatehouse_config: Option<OsString>,
    xdg_config_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let nonempty = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) = nonempty(gatehouse_config) {
        return Some(path);
    }
    if let Some(dir) = nonempty(xdg_config_home).filter(|d| d.is_absolute()) {
        return Some(dir.join("gatehouse").join("cli.json"));
    }
    nonempty(home).map(|home| home.join(".config").join("gatehouse").join("cli.json"))
}

/// The saved login, or `None` when there is none.
pub fn load(path: &Path) -> Result<Option<SavedLogin>, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CliError::Usage(format!(
                "cannot read the login in {}: {e}",
                path.display()
            )));
        }
    };
    warn_if_shared(path);
    serde_json::from_str(&text).map(Some).map_err(|e| {
        CliError::Usage(format!(
            "the login in {} cannot be read ({e}); run `gatehouse login` again",
            path.display()
        ))
    })
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: {} holds a token but others may read it (mode {mode:o}); run \
                 `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

/// Saves the login, replacing the file atomically. The file is created with mode 0600,
/// and the folders made for it with 0700.
pub fn save(path: &Path, config: &SavedLogin) -> Result<(), CliError> {
    let fail = |what: &str, e: std::io::Error| {
        CliError::Usage(format!(
            "cannot save the login to {}: {what}: {e}",
            path.display()
        ))
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir).map_err(|e| fail("cannot create its folder", e))?;
    let name = path
        .file_name()
        .map_or("cli.json".into(), |n| n.to_string_lossy());
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut text = serde_json::to_string_pretty(config)
        .map_err(|e| CliError::Usage(format!("cannot encode the login: {e}")))?;
    text.push('\n');
    let written = (|| {
        let _ = std::fs::remove_file(&temp);
        let mut file = private_file(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(fail("cannot write it", e));
    }
    Ok(())
}

/// Forgets the login; `false` when there was none.
pub fn remove(path: &Path) -> Result<bool, CliError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CliError::Usage(format!(
            "cannot remove the login in {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// The server and token for a command: the flags (or their environment variables) first,
/// then the saved login. The saved token goes only to the server it was saved for.
pub fn credentials(
    server: Option<&str>,
    token: Option<&str>,
    saved: Option<&SavedLogin>,
) -> Result<Credentials, CliError> {
    let not_logged_in = || {
        CliError::Usage(
            "not logged in: run `gatehouse login --server URL --token TOKEN`, or set \
             GATEHOUSE_SERVER and GATEHOUSE_TOKEN"
                .into(),
        )
    };
    let server = match (server, saved) {
        (Some(server), _) => normalize_server(server)?,
        (None, Some(saved)) => normalize_server(&saved.server)?,
        (None, None) => return Err(not_logged_in()),
    };
    let token = match (token, saved) {
        (Some(token), _) => token.to_owned(),
        (None, Some(saved)) => {
            if normalize_server(&saved.server)? != server {
                return Err(CliError::Usage(format!(
                    "the saved login is for {}, not {server}; pass --token (or set \
                     GATEHOUSE_TOKEN), or run `gatehouse login --server {server}`",
                    saved.server
                )));
            }
            saved.token.clone()
        }
        (None, None) => return Err(not_logged_in()),
    };
    Ok(Credentials { server, token })
}

/// A token as given: `-` reads it from the first line of stdin.
pub fn read_token(value: &str) -> Result<String, CliError> {
    let token = if value == "-" {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| CliError::Usage(format!("cannot read the token from stdin: {e}")))?;
        line.trim().to_owned()
    } else {
        value.trim().to_owned()
    };
    if token.is_empty() {
        return Err(CliError::Usage(
            "the token is empty; pass --token TOKEN, --token - (then the token on stdin), or \
             set GATEHOUSE_TOKEN"
                .into(),
        ));
    }
    Ok(token)
}
