//! The responder console at `/ui` (SPEC §11): server-rendered pages to read an
//! incident whole and act on it from a browser. Templates are compiled in and rendered
//! with Handlebars (which escapes every value); the only script is a small inline one
//! that refreshes the page's live parts on the dashboard's server-sent events. Actions
//! go through the same pipeline calls and role checks as the API, acting as the token's
//! name. One file per page: `session.rs` (login, CSRF), `incidents.rs`, `oncall.rs`,
//! `silences.rs`.

pub mod incidents;
pub mod oncall;
pub mod session;
pub mod silences;

use super::AppState;
use super::error::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use handlebars::Handlebars;
use serde_json::{Value, json};
use std::sync::LazyLock;

/// The console's templates: (name, text). `layout` wraps every page.
const TEMPLATES: [(&str, &str); 7] = [
    ("layout", include_str!("templates/layout.html.hbs")),
    ("login", include_str!("templates/login.html.hbs")),
    ("incidents", include_str!("templates/incidents.html.hbs")),
    ("incident", include_str!("templates/incident.html.hbs")),
    ("oncall", include_str!("templates/oncall.html.hbs")),
    ("silences", include_str!("templates/silences.html.hbs")),
    ("message", include_str!("templates/message.html.hbs")),
];

static ENGINE: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    let mut engine = Handlebars::new();
    engine.set_strict_mode(false);
    for (name, text) in TEMPLATES {
        // A broken built-in template is caught by the tests that render every page.
        if let Err(error) = engine.register_template_string(name, text) {
            tracing::error!(%error, name, "console template does not compile");
        }
    }
    engine
});

/// The console's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/incidents") }))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/incidents", get(incidents::list))
        .route(
            "/ui/incidents/{id}",
            get(incidents::show).post(incidents::act),
        )
        .route(
            "/ui/incidents/{id}/runbooks/{name}",
            post(incidents::runbook),
        )
        .route("/ui/oncall", get(oncall::show).post(oncall::take))
        .route("/ui/silences", get(silences::list).post(silences::create))
        .route("/ui/silences/new", get(silences::new))
        .route("/ui/silences/{id}/expire", post(silences::expire))
        .route("/ui/{*rest}", axum::routing::any(no_such_page))
        .layer(axum::middleware::map_response(html_errors))
}

async fn no_such_page() -> Response {
    not_found_page()
}

fn not_found_page() -> Response {
    page_error(
        StatusCode::NOT_FOUND,
        "No such page",
        "The console has no page at this address. Start again from the incident list, /ui/incidents.",
    )
}

/// Middleware: axum's own refusals (an unreadable path, query or form, a method the
/// page does not take) as a page for the person in the browser, not the API's JSON.
/// A path naming nothing the console has (`/ui/incidents/abc`) is 404, not 400.
async fn html_errors(response: Response) -> Response {
    super::error::refusal_page(response, not_found_page, |status, title, text| {
        // The API's words (its document's address) mean nothing to a person here.
        let text = if status == StatusCode::METHOD_NOT_ALLOWED {
            "This page cannot be used that way. Open it from the console's links and use its buttons."
        } else {
            text
        };
        page_error(status, title, text)
    })
    .await
}

/// Renders `template` inside the layout. `context` may carry `session` (for the
/// navigation and the logout form).
pub fn render(template: &str, status: StatusCode, context: &Value) -> Response {
    let body = ENGINE.render(template, context).and_then(|content| {
        let mut page = context.clone();
        page["content"] = Value::String(content);
        ENGINE.render("layout", &page)
    });
    match body {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            // Pages show incident details to a signed-in person: no shared cache
            // keeps them.
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => {
            tracing::error!(%error, template, "console template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>This page could not be drawn; the log says why."),
            )
                .into_response()
        }
    }
}

/// A page that only says what went wrong and what to do.
pub fn page_error(status: StatusCode, title: &str, text: &str) -> Response {
    let context = json!({ "title": title, "text": text });
    let body = ENGINE
        .render("message", &context)
        .and_then(|content| ENGINE.render("layout", &json!({ "title": title, "content": content })))
        .unwrap_or_else(|_| text.to_string());
    (status, Html(body)).into_response()
}

/// An API error shown as a page (the pipeline's refusals: 404, 409, 503…).
pub fn api_error(error: ApiError) -> Response {
    page_error(
        error.status,
        &error.error,
        &format!("{} Go back to the page and try again.", error.detail),
    )
}

/// A posted form's fields (`application/x-www-form-urlencoded`).
#[derive(Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every `(name, value)` whose name starts with `prefix`, the prefix cut.
    pub fn prefixed<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.0.iter().filter_map(move |(key, value)| {
            key.strip_prefix(prefix).map(|name| (name, value.as_str()))
        })
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self(
            form_urlencoded::parse(&bytes)
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect(),
        ))
    }
}

/// The layout's view of a session.
pub fn session_json(session: &session::Session) -> Value {
    json!({
        "actor": session.actor,
        "role": format!("{:?}", session.role).to_lowercase(),
        "csrf": session.csrf,
        "responder": session.role >= crate::config::Role::Responder,
        "admin": session.role >= crate::config::Role::Admin,
    })
}

/// "in 12m", "3h ago": how far `at` is from `now`, for SLA countdowns.
pub fn relative(at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    let seconds = (at - now).num_seconds();
    if seconds == 0 {
        return "now".into();
    }
    let magnitude = seconds.unsigned_abs();
    let text = match magnitude {
        0..60 => format!("{magnitude}s"),
        60..3600 => format!("{}m", magnitude / 60),
        3600..86_400 => format!("{}h {}m", magnitude / 3600, magnitude % 3600 / 60),
        _ => format!("{}d {}h", magnitude / 86_400, magnitude % 86_400 / 3600),
    };
    if seconds >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, text) in TEMPLATES {
            let mut engine = Handlebars::new();
            assert!(
                engine.register_template_string(name, text).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn countdowns_read_as_people_say_them() {
        let now = chrono::Utc::now();
        assert_eq!(
            relative(now + chrono::TimeDelta::seconds(750), now),
            "in 12m"
        );
        assert_eq!(
            relative(now - chrono::TimeDelta::seconds(7260), now),
            "2h 1m ago"
        );
    }
}
