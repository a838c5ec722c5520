//! The small HTML pages behind the links in emails (acknowledge, satisfaction): no
//! script, no external asset, every text escaped. A GET shows one with a form; only
//! the form's POST acts, so a mail scanner that fetches every link changes nothing.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// One button of a page's form. It POSTs back to the page's own URL (no `action`),
/// so the page works under whatever public URL the link was mailed with.
pub struct Button {
    pub label: String,
    /// The form field the button sends, as `(name, value)`.
    pub field: Option<(&'static str, String)>,
    /// The choice the email already pointed at.
    pub picked: bool,
}

/// A page that only says something.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    render(status, title, &[text.to_string()], &[], None)
}

/// A page that says something and offers one link onward, as `(label, href)`: after
/// acting from an email, the incident's page in the console.
pub fn message_with_link(
    status: StatusCode,
    title: &str,
    text: &str,
    link: (&str, &str),
) -> Response {
    render(status, title, &[text.to_string()], &[], Some(link))
}

/// A 200 page with `lines` and one form holding `buttons`.
pub fn form(title: &str, lines: &[String], buttons: &[Button]) -> Response {
    render(StatusCode::OK, title, lines, buttons, None)
}

fn render(
    status: StatusCode,
    title: &str,
    lines: &[String],
    buttons: &[Button],
    link: Option<(&str, &str)>,
) -> Response {
    let mut body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{0}</title></head>\
         <body style=\"font-family:sans-serif;margin:2em;max-width:40em\"><h1>{0}</h1>",
        escape(title)
    );
    for line in lines {
        body.push_str(&format!("<p>{}</p>", escape(line)));
    }
    if !buttons.is_empty() {
        body.push_str("<form method=\"post\">");
        for button in buttons {
            body.push_str(&render_button(button));
        }
        body.push_str("</form>");
    }
    if let Some((label, href)) = link {
        body.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>",
            escape(href),
            escape(label)
        ));
    }
    body.push_str("</body></html>");
    let mut response = (status, Html(body)).into_response();
    // The URL carries a token: no cache or proxy keeps the page.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn render_button(button: &Button) -> String {
    let field = button
        .field
        .as_ref()
        .map(|(name, value)| format!(" name=\"{}\" value=\"{}\"", escape(name), escape(value)))
        .unwrap_or_default();
    let weight = if button.picked { "bold" } else { "normal" };
    format!(
        "<button type=\"submit\"{field} style=\"font-size:1.1em;margin:.3em .3em .3em 0;padding:.5em 1em;font-weight:{weight}\">{}</button>",
        escape(&button.label)
    )
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Middleware for the link routes: axum's own refusals as a page for the person who
/// followed the link. A path that cannot be read (`/ack/%ff`) is a link Tocsin did
/// not issue, refused like any other forged one.
pub async fn html_errors(response: Response) -> Response {
    let forged = || {
        let forged = crate::notify::ack_link::LinkError::Forged;
        message(StatusCode::FORBIDDEN, "Link refused", &forged.to_string())
    };
    super::error::refusal_page(response, forged, message).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        assert_eq!(
            escape("<script>\"x\" & 'y'"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
        let button = Button {
            label: "<b>".into(),
            field: Some(("score", "\"><script>".into())),
            picked: false,
        };
        let html = render_button(&button);
        assert!(
            !html.contains("<script>") && !html.contains("<b>"),
            "{html}"
        );
    }
}
