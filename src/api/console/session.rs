//! Console sessions: `/ui/login` trades an API token for a session stored in the
//! database (only the SHA-256 of its id), carried by an HttpOnly, SameSite=Strict
//! cookie. Every request re-derives the role from the token's entry in `[api] tokens`,
//! so removing or rotating a token ends its sessions. Every POST carries the session's
//! CSRF token (the login form a double-submit one, as there is no session yet).

use super::{Fields, page_error, render};
use crate::api::AppState;
use crate::api::auth::find_token;
use crate::config::{Config, Role};
use crate::store::console::SessionRow;
use crate::webhook_auth::same_secret;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The console's session cookie; the dashboard takes it too.
pub const COOKIE: &str = "tocsin_session";
/// The cookie of a session opened by the dashboard's `?token=` link: it shows the
/// dashboard only, so a link carrying someone else's token cannot sign its opener
/// into the console, where their acts would be credited to that token.
pub const DASHBOARD_COOKIE: &str = "tocsin_dashboard";
/// The login form's double-submit cookie.
const LOGIN_COOKIE: &str = "tocsin_login";

/// A signed-in person: the token's name (the actor the timeline shows, as for the
/// API), its role, and the CSRF token their forms carry.
#[derive(Debug, Clone)]
pub struct Session {
    pub actor: String,
    pub role: Role,
    pub csrf: String,
}

impl Session {
    /// Refuses a POST whose `csrf` field is not this session's (403), or whose
    /// session lacks `role` (403): the server checks what the page only hides.
    pub fn authorize(&self, fields: &Fields, role: Role) -> Result<(), Box<Response>> {
        let given = fields.get("csrf").unwrap_or_default();
        if given.is_empty() || !same_secret(given, &self.csrf) {
            return Err(Box::new(page_error(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form was not sent from this console session (its CSRF token is missing or stale). Go back, reload the page and try again.",
            )));
        }
        if self.role < role {
            return Err(Box::new(page_error(
                StatusCode::FORBIDDEN,
                "Not allowed",
                &format!(
                    "Token {:?} is a {:?}; this needs {:?} or above. Sign in with another token.",
                    self.actor, self.role, role
                ),
            )));
        }
        Ok(())
    }
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn random() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// Cookies are Secure whenever people reach Tocsin over HTTPS.
fn secure(config: &Config) -> &'static str {
    if config.tls.is_some() || config.public_url.starts_with("https:") {
        "; Secure"
    } else {
        ""
    }
}

fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// Opens a session for an API token of `config`, carried by the cookie `name`;
/// returns the `Set-Cookie` value.
pub async fn open(
    state: &AppState,
    config: &Config,
    token: &str,
    name: &str,
) -> Result<String, Response> {
    let now = state.clock.now();
    let ttl = config.console.session_ttl;
    let id = random();
    let row = SessionRow {
        token_hash: digest(token),
        csrf: random(),
        expires_at: now + ttl,
    };
    state
        .store
        .create_session(&digest(&id), &row, now)
        .await
        .map_err(store_down)?;
    Ok(format!(
        "{name}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        ttl.num_seconds(),
        secure(config)
    ))
}

/// The session the request's cookie `name` names, if it is live and its token
/// still valid.
pub async fn current(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
) -> Result<Option<Session>, Response> {
    let Some(id) = cookie(headers, name) else {
        return Ok(None);
    };
    let Some(row) = state
        .store
        .session(&digest(&id), state.clock.now())
        .await
        .map_err(store_down)?
    else {
        return Ok(None);
    };
    let config = state.config.load_full();
    let token = config.api_tokens.iter().find(|token| {
        let candidate = digest(&token.token);
        same_secret(&candidate, &row.token_hash)
    });
    Ok(token.map(|token| Session {
        actor: token.name.clone(),
        role: token.role,
        csrf: row.csrf,
    }))
}

fn store_down(error: crate::store::StoreError) -> Response {
    tracing::error!(%error, "console session store failed");
    page_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "The database did not answer; nothing was changed. Reload the page in a moment.",
    )
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    /// Without a live session, a person is sent to sign in and brought back after.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(session) = current(state, &parts.headers, COOKIE).await? {
            return Ok(session);
        }
        let back = if parts.method == axum::http::Method::GET {
            parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
        } else {
            ""
        };
        let target = if back.is_empty() {
            "/ui/login".to_string()
        } else {
            format!(
                "/ui/login?next={}",
                percent_encoding::utf8_percent_encode(back, percent_encoding::NON_ALPHANUMERIC)
            )
        };
        Err(Redirect::to(&target).into_response())
    }
}

/// Where to go after signing in: only a console path, never another site, nor a
/// path that climbs out of `/ui/` (`..`) or that no `Location` header can carry
/// (a control character made the sign-in itself fail, 500).
fn next_path(next: Option<&str>) -> String {
    next.filter(|next| next.starts_with("/ui/") && !next.starts_with("//"))
        .filter(|next| !next.contains('\\') && !next.chars().any(char::is_control))
        .filter(|next| {
            let path = next.split(['?', '#']).next().unwrap_or("");
            // WHATWG URLs read `%2e` as a dot in these segments.
            !path.split('/').any(|segment| {
                let segment = segment.to_ascii_lowercase().replace("%2e", ".");
                segment == ".." || segment == "."
            })
        })
        .unwrap_or("/ui/incidents")
        .to_string()
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /ui/login`: the form, with a fresh double-submit token.
pub async fn login_page(
    State(state): State<AppState>,
    Query(query): Query<LoginQuery>,
) -> Response {
    login_form(
        &state,
        StatusCode::OK,
        None,
        &next_path(query.next.as_deref()),
    )
}

fn login_form(state: &AppState, status: StatusCode, problem: Option<&str>, next: &str) -> Response {
    let config = state.config.load_full();
    let csrf = random();
    let context = json!({ "title": "Sign in", "csrf": csrf, "problem": problem, "next": next });
    let mut response = render("login", status, &context);
    set_cookie(
        &mut response,
        &format!(
            "{LOGIN_COOKIE}={csrf}; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age=3600{}",
            secure(&config)
        ),
    );
    response
}

/// `POST /ui/login`: `token` and `csrf` (matching the login cookie) → a session.
pub async fn login(State(state): State<AppState>, headers: HeaderMap, fields: Fields) -> Response {
    let next = next_path(fields.get("next"));
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let given = fields.get("csrf").unwrap_or_default();
    if expected.is_empty() || !same_secret(given, &expected) {
        return page_error(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The sign-in form was not sent from this browser's last visit to /ui/login. Open /ui/login again and sign in.",
        );
    }
    let config = state.config.load_full();
    let token = fields.get("token").unwrap_or_default().trim();
    if find_token(&config, token).is_none() {
        return login_form(
            &state,
            StatusCode::UNAUTHORIZED,
            Some(
                "That token matches none in [api] tokens. Paste an API token (any role) as your administrator gave it to you.",
            ),
            &next,
        );
    }
    match open(&state, &config, token, COOKIE).await {
        Ok(cookie) => {
            let mut response = Redirect::to(&next).into_response();
            set_cookie(&mut response, &cookie);
            set_cookie(
                &mut response,
                &format!("{LOGIN_COOKIE}=; Path=/ui/login; Max-Age=0"),
            );
            response
        }
        Err(response) => response,
    }
}

/// `POST /ui/logout`: ends the session here and in the store.
pub async fn logout(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    fields: Fields,
) -> Response {
    if let Err(refused) = session.authorize(&fields, Role::Viewer) {
        return *refused;
    }
    // The dashboard's session in the same browser ends too: signing out of a shared
    // screen leaves nothing readable.
    let mut response = Redirect::to("/ui/login").into_response();
    for name in [COOKIE, DASHBOARD_COOKIE] {
        if let Some(id) = cookie(&headers, name)
            && let Err(error) = state
                .store
                .end_session(&digest(&id), state.clock.now())
                .await
        {
            return store_down(error);
        }
        set_cookie(
            &mut response,
            &format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::next_path;

    #[test]
    fn sign_in_only_returns_to_console_pages() {
        assert_eq!(next_path(Some("/ui/incidents/3")), "/ui/incidents/3");
        for elsewhere in [
            "https://evil.example/",
            "//evil.example/ui/",
            "/api/v1/kpi",
            "/ui/\\evil",
            "/ui/../api/v1/kpi",
            "/ui/%2E%2e/api/v1/kpi",
            "/ui/./x",
            "/ui/\nx",
            "/ui/\u{7f}",
        ] {
            assert_eq!(next_path(Some(elsewhere)), "/ui/incidents", "{elsewhere}");
        }
        assert_eq!(next_path(None), "/ui/incidents");
        assert_eq!(
            next_path(Some("/ui/incidents?q=a..b")),
            "/ui/incidents?q=a..b"
        );
    }
}
