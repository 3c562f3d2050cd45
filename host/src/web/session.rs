//! Signing in and out, and who is asking.
//!
//! A browser signs in once with a bearer token, the same the API takes, and gets a
//! server-side session ([`crate::pipeline::accounts::Accounts::start_web_session`]): a
//! random 256-bit id in an HttpOnly, SameSite=Strict cookie, kept by the store only as its
//! SHA-256, for [`SESSION_HOURS`] at most. Each session has its own CSRF token, which
//! every form of the console sends back.

use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::error::PageError;
use super::form::Submitted;
use super::layout;
pub use crate::pipeline::accounts::SESSION_HOURS;
use crate::pipeline::model::User;
use crate::pipeline::services::Services;

/// The cookie that holds the session id.
pub const SESSION_COOKIE: &str = "gatehouse_session";

/// The signed-in user of a console request, from the session cookie.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: User,
    /// The session's CSRF token, for the forms of the page.
    pub csrf: String,
    /// SHA-256 of the session id.
    session: String,
}

impl Viewer {
    /// Whether a form sent back this session's CSRF token. Compared in constant time.
    pub fn csrf_matches(&self, sent: Option<&str>) -> bool {
        let Some(sent) = sent else { return false };
        let (a, b) = (self.csrf.as_bytes(), sent.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl FromRequestParts<Services> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &Services) -> Result<Viewer, PageError> {
        // A form posted after the session ended goes back to the page it came from only
        // through the sign-in page; its data is not replayed.
        let next = if parts.method == Method::GET || parts.method == Method::HEAD {
            parts
                .uri
                .path_and_query()
                .map_or("/ui/".to_owned(), |p| p.as_str().to_owned())
        } else {
            "/ui/".to_owned()
        };
        let Some(id) = session_cookie(&parts.headers) else {
            return Err(PageError::SignIn { next });
        };
        let Some(session) = state.accounts().web_session(id).await? else {
            return Err(PageError::SignIn { next });
        };
        let viewer = Viewer {
            user: session.user,
            csrf: session.csrf,
            session: session.sha256,
        };
        if let Some(slot) = parts.extensions.get::<SignedIn>() {
            slot.fill(state, &viewer);
        }
        Ok(viewer)
    }
}

/// Who turned out to be signed in while a request was handled, with the services that
/// said so: an error page that ends the request shows them the navigation from it.
/// [`super::error::with_navigation`] puts an empty one in every request; the [`Viewer`]
/// extractor fills it.
#[derive(Clone, Default)]
pub struct SignedIn(Arc<Mutex<Option<(Services, Viewer)>>>);

impl SignedIn {
    fn fill(&self, state: &Services, viewer: &Viewer) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some((state.clone(), viewer.clone()));
        }
    }

    /// The viewer and the services, once a handler has asked who is signed in.
    pub fn take(&self) -> Option<(Services, Viewer)> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// The session id in the request's cookies, if any.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

#[derive(Debug, Default, Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    next: Option<String>,
}

/// `GET /ui/signin`.
pub async fn sign_in_page(
    axum::extract::Query(query): axum::extract::Query<SignInQuery>,
) -> Markup {
    let next = safe_next(query.next.as_deref());
    sign_in_form(&next, None)
}

#[derive(Debug, Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /ui/signin`: a known token starts a session and goes on to `next`; an unknown
/// one answers 401 with the form again.
pub async fn sign_in(
    State(state): State<Services>,
    headers: HeaderMap,
    axum::extract::Form(form): axum::extract::Form<SignIn>,
) -> Result<Response, PageError> {
    // The form cannot carry a session's CSRF token yet: refuse posts from other sites.
    if !same_origin(&headers) {
        return Err(PageError::forbidden(
            "the sign-in form was sent from another site; open this console's own sign-in \
             page and sign in there",
        ));
    }
    let next = safe_next(form.next.as_deref());
    let token = form.token.trim();
    let user = if token.is_empty() {
        None
    } else {
        state.accounts().user_by_token(token).await?
    };
    let Some(user) = user else {
        let message = if token.is_empty() {
            "Enter your token: the 64 hexadecimal characters an admin issued you."
        } else {
            "That token is not known to this host. Check that it was copied whole, or ask an \
             admin for a new one."
        };
        return Ok((StatusCode::UNAUTHORIZED, sign_in_form(&next, Some(message))).into_response());
    };
    let started = state.accounts().start_web_session(user, token).await?;
    let id = started.id;
    let cookie = format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        SESSION_HOURS * 3600,
        if came_over_https(&headers) {
            "; Secure"
        } else {
            ""
        }
    );
    Ok(see_other_with_cookie(&next, &cookie))
}

/// `POST /ui/signout`: ends the session, here and in the store.
pub async fn sign_out(
    State(state): State<Services>,
    Submitted { viewer, .. }: Submitted,
) -> Result<Response, PageError> {
    state
        .accounts()
        .end_web_session(&viewer.user, &viewer.session)
        .await?;
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok(see_other_with_cookie("/ui/signin", &cookie))
}

fn see_other_with_cookie(location: &str, cookie: &str) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Where to go after signing in: a console path only, so the form cannot send a user
/// to another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if (path == "/ui" || path.starts_with("/ui/") || path.starts_with("/ui?"))
                && !path.starts_with("/ui/signin")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/ui/".to_owned(),
    }
}

/// True unless the request names an Origin other than the host it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    authority == Some(host)
}

/// Whether the browser reached us over https, directly or through a proxy that says so.
fn came_over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
        || headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|o| o.starts_with("https://"))
}

fn sign_in_form(next: &str, error: Option<&str>) -> Markup {
    let body = html! {
        main id="signin-page" class="narrow" {
            h1 { "Sign in to Gatehouse" }
            @if let Some(error) = error {
                p id="error" class="error" role="alert" { (error) }
            }
            form id="signin" method="post" action="/ui/signin" {
                input type="hidden" name="next" value=(next);
                label for="token" { "Token" }
                input id="token" name="token" type="password" autocomplete="current-password"
                    required autofocus spellcheck="false";
                p class="hint" {
                    "The bearer token an admin issued you (the API takes the same one). "
                    "The browser keeps a session cookie, never the token."
                }
                button id="signin-submit" type="submit" { "Sign in" }
            }
        }
    };
    layout::bare("Sign in", body)
}
