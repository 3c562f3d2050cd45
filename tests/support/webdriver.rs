//! The few W3C WebDriver commands the browser tests use, spoken as JSON over plain HTTP to
//! chromedriver on loopback.
//!
//! It replaces a WebDriver crate whose dependencies (an HTTP/0.2 stack and ICU) turned on
//! features of shared crates that the product's build does not, so that `cargo build`
//! and `cargo test` could not share one build. The protocol is small: a session is a URL,
//! and every command is one request whose answer is `{"value": …}`.
#![allow(dead_code)]

use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

/// The key W3C WebDriver uses to name an element in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long one command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What chromedriver refused, or why it could not be asked.
#[derive(Debug, Clone)]
pub struct Error {
    /// The WebDriver error code ("no such element", …), or "transport".
    pub code: String,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// How an element is looked for.
#[derive(Debug, Clone, Copy)]
pub enum Locator<'a> {
    Css(&'a str),
    XPath(&'a str),
}

impl Locator<'_> {
    fn body(self) -> Value {
        match self {
            Locator::Css(css) => json!({ "using": "css selector", "value": css }),
            Locator::XPath(xpath) => json!({ "using": "xpath", "value": xpath }),
        }
    }
}

/// A WebDriver session.
#[derive(Clone)]
pub struct Client {
    session: String,
    agent: ureq::Agent,
}

/// An element of the page, as the session knows it.
#[derive(Clone)]
pub struct Element {
    client: Client,
    id: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(COMMAND_TIMEOUT))
        .build()
        .into()
}

/// Sends one command on a blocking thread, so that a test's runtime keeps serving the
/// tasks it runs, and gives the answer's `value`, or the WebDriver error it names.
async fn command(
    agent: ureq::Agent,
    method: &'static str,
    url: String,
    body: Value,
) -> Result<Value> {
    let transport = |e: &dyn fmt::Display| Error {
        code: "transport".into(),
        message: format!("{method} {url}: {e}"),
    };
    let answer = tokio::task::spawn_blocking({
        let url = url.clone();
        move || -> std::result::Result<(u16, Value), String> {
            let response = match method {
                "GET" => agent.get(&url).call(),
                "DELETE" => agent.delete(&url).call(),
                _ => agent.post(&url).send_json(&body),
            };
            let mut response = response.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let value = response
                .body_mut()
                .with_config()
                .limit(64 * 1024 * 1024)
                .read_json::<Value>()
                .map_err(|e| format!("the answer is not JSON: {e}"))?;
            Ok((status, value))
        }
    })
    .await
    .map_err(|e| transport(&e))?
    .map_err(|e| transport(&e))?;
    let (status, mut value) = answer;
    let value = value["value"].take();
    if (200..300).contains(&status) {
        return Ok(value);
    }
    Err(Error {
        code: value["error"]
            .as_str()
            .unwrap_or("unknown error")
            .to_owned(),
        message: value["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP {status}: {value}")),
    })
}

fn element_id(value: &Value) -> Result<String> {
    value[ELEMENT_KEY]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error {
            code: "invalid answer".into(),
            message: format!("not an element reference: {value}"),
        })
}

impl Client {
    /// Starts a session on the driver at `driver` with the given capabilities.
    pub async fn connect(driver: &str, capabilities: Value) -> Result<Client> {
        let agent = agent();
        let value = command(
            agent.clone(),
            "POST",
            format!("{driver}/session"),
            json!({ "capabilities": { "alwaysMatch": capabilities } }),
        )
        .await?;
        let id = value["sessionId"].as_str().ok_or_else(|| Error {
            code: "invalid answer".into(),
            message: format!("no sessionId in {value}"),
        })?;
        Ok(Client {
            session: format!("{driver}/session/{id}"),
            agent,
        })
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.session);
        command(self.agent.clone(), "GET", url, Value::Null).await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}{path}", self.session);
        command(self.agent.clone(), "POST", url, body).await
    }

    /// Ends the session; Chromium quits.
    pub async fn close(self) -> Result<()> {
        command(
            self.agent.clone(),
            "DELETE",
            self.session.clone(),
            Value::Null,
        )
        .await
        .map(drop)
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.post("/url", json!({ "url": url })).await.map(drop)
    }

    pub async fn current_url(&self) -> Result<url::Url> {
        let value = self.get("/url").await?;
        let text = value.as_str().unwrap_or_default();
        url::Url::parse(text).map_err(|e| Error {
            code: "invalid answer".into(),
            message: format!("{text:?} is not a URL: {e}"),
        })
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and gives what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    pub async fn find(&self, locator: Locator<'_>) -> Result<Element> {
        let value = self.post("/element", locator.body()).await?;
        Ok(Element {
            client: self.clone(),
            id: element_id(&value)?,
        })
    }

    pub async fn find_all(&self, locator: Locator<'_>) -> Result<Vec<Element>> {
        let value = self.post("/elements", locator.body()).await?;
        self.elements(&value)
    }

    fn elements(&self, value: &Value) -> Result<Vec<Element>> {
        value
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|v| {
                Ok(Element {
                    client: self.clone(),
                    id: element_id(v)?,
                })
            })
            .collect()
    }

    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await
            .map(drop)
    }

    /// The cookie `name` of the page's site.
    pub async fn get_named_cookie(&self, name: &str) -> Result<Cookie> {
        let value = self.get(&format!("/cookie/{name}")).await?;
        Ok(Cookie(value))
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        let value = self.get("/screenshot").await?;
        decode_base64(value.as_str().unwrap_or_default()).ok_or_else(|| Error {
            code: "invalid answer".into(),
            message: "the screenshot is not base64".into(),
        })
    }
}

/// A cookie as WebDriver describes it (`name`, `value`, `httpOnly`, `sameSite`, …).
#[derive(Debug, Clone)]
pub struct Cookie(Value);

impl Cookie {
    pub fn value(&self) -> &str {
        self.0["value"].as_str().unwrap_or_default()
    }

    pub fn http_only(&self) -> Option<bool> {
        self.0["httpOnly"].as_bool()
    }

    /// `Strict`, `Lax` or `None`.
    pub fn same_site(&self) -> Option<String> {
        self.0["sameSite"].as_str().map(str::to_owned)
    }
}

impl fmt::Display for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// In a script's arguments, an element is its reference.
impl serde::Serialize for Element {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        json!({ ELEMENT_KEY: self.id }).serialize(serializer)
    }
}

impl Element {
    async fn get(&self, what: &str) -> Result<Value> {
        self.client
            .get(&format!("/element/{}/{what}", self.id))
            .await
    }

    async fn post(&self, what: &str, body: Value) -> Result<Value> {
        self.client
            .post(&format!("/element/{}/{what}", self.id), body)
            .await
    }

    /// The element's tag name, lower-case for HTML.
    pub async fn tag_name(&self) -> Result<String> {
        Ok(self
            .get("name")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The element's rendered text.
    pub async fn text(&self) -> Result<String> {
        Ok(self
            .get("text")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// The attribute `name`, or `None` when the element has none.
    pub async fn attr(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .get(&format!("attribute/{name}"))
            .await?
            .as_str()
            .map(str::to_owned))
    }

    pub async fn click(&self) -> Result<()> {
        self.post("click", json!({})).await.map(drop)
    }

    pub async fn clear(&self) -> Result<()> {
        self.post("clear", json!({})).await.map(drop)
    }

    pub async fn send_keys(&self, text: &str) -> Result<()> {
        self.post("value", json!({ "text": text })).await.map(drop)
    }

    /// The element within this one that `locator` finds.
    pub async fn find(&self, locator: Locator<'_>) -> Result<Element> {
        let value = self.post("element", locator.body()).await?;
        Ok(Element {
            client: self.client.clone(),
            id: element_id(&value)?,
        })
    }

    /// Chooses, in this `select`, the option that `locator` finds.
    pub async fn select_by(&self, locator: Locator<'_>) -> Result<()> {
        self.find(locator).await?.click().await
    }
}

/// Standard base64 with padding, as WebDriver sends screenshots.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let padding = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - padding] {
            n = n << 6 | sextet(c)?;
        }
        n <<= 6 * padding as u32;
        let three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&three[..3 - padding]);
    }
    Some(out)
}

#[test]
fn base64_decodes_the_rfc_4648_vectors() {
    for (encoded, plain) in [
        ("", ""),
        ("Zg==", "f"),
        ("Zm8=", "fo"),
        ("Zm9v", "foo"),
        ("Zm9vYg==", "foob"),
        ("Zm9vYmE=", "fooba"),
        ("Zm9vYmFy", "foobar"),
    ] {
        assert_eq!(
            decode_base64(encoded).as_deref(),
            Some(plain.as_bytes()),
            "{encoded}"
        );
    }
    assert_eq!(decode_base64("Zm9"), None);
    assert_eq!(decode_base64("Zm9*"), None);
}
