//! A headless Chromium for the browser tests: Debian's `chromium`, driven through its
//! `chromedriver` (started here on a free port) through the WebDriver client of
//! `support/webdriver.rs`. The driver and the browser are killed when the [`Browser`] is
//! dropped, also when a test panics.
//!
//! Include it with `#[path = "support/browser.rs"] mod browser;` next to
//! `#[path = "support/server.rs"] mod server;`, whose `free_port` it uses, and
//! `#[path = "support/webdriver.rs"] mod webdriver;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::server::free_port;
use crate::webdriver::{Client, Element, Locator};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long chromedriver may take to answer `/status`.
const DRIVER_READY_WITHIN: Duration = Duration::from_secs(30);

/// A chromedriver process (in its own process group, with the Chromium it starts) and a
/// WebDriver session on it.
pub struct Browser {
    pub client: Client,
    /// The server the relative paths given to [`Browser::goto`] are on.
    pub base: String,
    driver: Child,
    log: PathBuf,
    _profile: TempDir,
}

/// Fails the test, naming the Debian packages, when the browser or its driver is missing.
pub fn require_chromium() {
    for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        assert!(
            Path::new(path).is_file(),
            "{path} is missing: the browser tests need Debian's {package}; install both with \
             `apt-get install -y chromium chromium-driver` (.ci/run does)"
        );
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile; relative paths
    /// go to `base`.
    pub async fn start(base: &str) -> Browser {
        require_chromium();
        let profile = tempfile::tempdir().expect("a temporary browser profile");
        let log = profile.path().join("chromedriver.log");
        let port = free_port();
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own group, so that Drop can kill Chromium with it.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("{CHROMEDRIVER} does not start: {e}"))
        };
        // The guard exists from here on: an early panic still kills the driver.
        let mut guard = Guard(Some(driver));
        let url = format!("http://127.0.0.1:{port}");
        wait_for_driver(&url, guard.0.as_mut().expect("the driver"), &log).await;

        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().join("profile").display()),
                ],
            },
        });
        let client = Client::connect(&url, capabilities)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver did not start Chromium: {e}\n{}",
                    tail(&log, 4000)
                )
            });
        Browser {
            client,
            base: base.trim_end_matches('/').to_owned(),
            driver: guard.0.take().expect("the driver"),
            log,
            _profile: profile,
        }
    }

    /// Ends the session (Chromium quits), then the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        kill_group(&mut self.driver);
    }

    /// Opens `path` on the server (or a full URL).
    pub async fn goto(&self, path: &str) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    }

    /// The HTTP status of the page being shown (of the last answer when it was redirected).
    pub async fn status(&self) -> u16 {
        let status = self
            .client
            .execute(
                "const n = performance.getEntriesByType('navigation')[0];\
                 return n ? n.responseStatus : 0;",
                vec![],
            )
            .await
            .expect("the navigation timing reads");
        status.as_u64().unwrap_or_default() as u16
    }

    /// The path and query of the page being shown.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("the current URL");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The page's text, cut to its first `max` characters, for failure messages.
    pub async fn text(&self, max: usize) -> String {
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let url = self.client.current_url().await.map(|u| u.to_string());
        let text: String = text.chars().take(max).collect();
        format!("--- page {} ---\n{text}", url.unwrap_or_default())
    }

    /// The element `css` selects, after waiting up to `within` for it; panics naming the
    /// page otherwise.
    pub async fn find(&self, css: &str, within: Duration) -> Element {
        let deadline = Instant::now() + within;
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(e) if Instant::now() >= deadline => {
                    panic!(
                        "no {css} on the page after {within:?}: {e}\n{}",
                        self.text(3000).await
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Whether `css` selects something on the page now.
    pub async fn has(&self, css: &str) -> bool {
        self.client
            .find_all(Locator::Css(css))
            .await
            .is_ok_and(|all| !all.is_empty())
    }

    /// Replaces the value of the field `css` selects by typing `value`.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css, Duration::from_secs(5)).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        field
            .send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css, Duration::from_secs(5))
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Chooses the option labelled `label` of the `select` that `css` selects; an option
    /// whose text adds a detail in brackets ("QA (to QA)") counts as labelled `label`.
    pub async fn choose(&self, css: &str, label: &str) {
        let xpath = format!(
            ".//option[normalize-space(.)='{label}' or starts-with(normalize-space(.), '{label} (')]"
        );
        self.find(css, Duration::from_secs(5))
            .await
            .select_by(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("choose {label:?} in {css}: {e}"));
    }

    /// Runs `script` with `args` in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The text of each element `css` selects whose visible text takes more than one line
    /// in a window `width` pixels wide (text only screen readers see is left out). The
    /// window is put back to its usual width after.
    pub async fn wrapped(&self, width: u32, css: &str) -> Vec<String> {
        self.client
            .set_window_size(width, 900)
            .await
            .expect("a narrower window");
        let wrapped = self
            .js(
                "const wrapped = [];\
                 for (const el of document.querySelectorAll(arguments[0])) {\
                   const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);\
                   const tops = [];\
                   for (let n = walker.nextNode(); n; n = walker.nextNode()) {\
                     if (n.parentElement.closest('.visually-hidden')) continue;\
                     const range = document.createRange();\
                     range.selectNodeContents(n);\
                     for (const r of range.getClientRects()) {\
                       if (r.width > 1 && r.height > 1) tops.push(r.top);\
                     }\
                   }\
                   if (tops.length && Math.max(...tops) - Math.min(...tops) > 4) {\
                     wrapped.push(el.textContent.trim());\
                   }\
                 }\
                 return wrapped;",
                vec![json!(css)],
            )
            .await;
        let _ = self.client.set_window_size(1280, 900).await;
        wrapped
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Saves a PNG of the whole page (the window grown to the page's height, at most
    /// 4000 px) to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let height = self
            .js("return document.documentElement.scrollHeight;", vec![])
            .await
            .as_u64()
            .unwrap_or(900)
            .clamp(600, 4000) as u32;
        let _ = self.client.set_window_size(1280, height + 120).await;
        let png = self.client.screenshot().await.expect("a screenshot");
        let _ = self.client.set_window_size(1280, 900).await;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the screenshot folder");
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// The last lines of chromedriver's log, for failure messages.
    pub fn driver_log(&self) -> String {
        tail(&self.log, 4000)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// Kills the driver and its group if `Browser::start` panics half-way.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            kill_group(child);
        }
    }
}

/// Kills the driver's process group (the driver and every Chromium process it started),
/// then reaps the driver.
fn kill_group(child: &mut Child) {
    if child.try_wait().ok().flatten().is_none() {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = child.kill();
    }
    let _ = child.wait();
}

async fn wait_for_driver(url: &str, driver: &mut Child, log: &Path) {
    let deadline = Instant::now() + DRIVER_READY_WITHIN;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    loop {
        if let Some(status) = driver.try_wait().ok().flatten() {
            panic!(
                "{CHROMEDRIVER} exited with {status} before it was ready\n{}",
                tail(log, 4000)
            );
        }
        let ready = agent
            .get(format!("{url}/status"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
            .is_some_and(|v| v["value"]["ready"] == true);
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{CHROMEDRIVER} did not answer {url}/status within {DRIVER_READY_WITHIN:?}\n{}",
            tail(log, 4000)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tail(path: &Path, bytes: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(bytes);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    format!("--- {} ---\n{}", path.display(), &text[start..])
}

/// Polls `check` every 100 ms until it gives a value, for at most `within`; panics with
/// `what` and the last thing `check` said otherwise.
pub async fn eventually<T>(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("waited {within:?} for {what}; last seen:\n{last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Where the screenshots go: `target/screenshots/` (of `CARGO_TARGET_DIR` when set).
pub fn screenshots_dir() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace.join(dir)
            }
        })
        .unwrap_or_else(|| workspace.join("target"));
    target.join("screenshots")
}

/// What a plain HTTP client got for a GET.
pub struct Fetched {
    pub status: u16,
    /// The `Content-Type`, or "".
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// A GET of `url` with these headers, redirects not followed: what a link gives a client
/// that holds the browser's cookie, or a token.
pub fn fetch(url: &str, headers: &[(&str, &str)]) -> Fetched {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut request = agent.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let media_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap_or_else(|e| panic!("GET {url}: the body: {e}"));
    Fetched {
        status: response.status().as_u16(),
        media_type,
        bytes,
    }
}
