//! The links an incident carries to where its fix is: knowledge-base articles named by
//! its rule and runbooks (`kb`), and remote-access links to the machine
//! (`[[remote_access]]`). Both are Handlebars templates over the alert's fields,
//! rendered once when the incident opens and kept on it, so pages, emails, tickets and
//! the dashboard all show the same links. Which templates apply is the caller's
//! (`pipeline::alerts` reads them from the configuration).

use crate::alert::Alert;
use crate::rules::Matcher;
use handlebars::Handlebars;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

/// Bytes kept as they are inside a field's value; everything else is percent-encoded,
/// so a label holding `&`, `/` or a space cannot change the link's shape.
const FIELD: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Schemes a link may never use: the dashboard and emails make links clickable.
const REFUSED_SCHEMES: [&str; 3] = ["javascript", "data", "vbscript"];

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// A knowledge-base article.
    Kb,
    /// A remote-access session to the resource.
    Remote,
}

/// A rendered link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub kind: LinkKind,
    pub title: String,
    pub url: String,
}

/// `[[remote_access]]`: a link template for the resources its matchers select.
#[derive(Debug, Clone)]
pub struct RemoteAccess {
    pub name: String,
    pub matchers: Vec<Matcher>,
    pub url: String,
}

/// A link template Handlebars cannot compile: the template as written and why.
#[derive(Debug, thiserror::Error)]
#[error(
    "{template:?} is not a valid template{}: {}; write fields as {{{{check}}}} or {{{{labels.NAME}}}}",
    at_column(source),
    source.reason()
)]
pub struct TemplateSyntaxError {
    pub template: String,
    pub source: handlebars::TemplateError,
}

/// Where in the template Handlebars gave up, when it says: on one line, unlike its
/// own display, which draws the template over several.
fn at_column(error: &handlebars::TemplateError) -> String {
    error
        .pos()
        .map(|(_, column)| format!(" at column {column}"))
        .unwrap_or_default()
}

/// Checks a link template's syntax; the error says what is wrong.
pub fn check_template(template: &str) -> Result<(), TemplateSyntaxError> {
    handlebars::Template::compile(template)
        .map(|_| ())
        .map_err(|source| TemplateSyntaxError {
            template: template.to_string(),
            source,
        })
}

/// Renders a template over the alert's fields. `None` when the template names a field
/// the alert lacks (no AnyDesk id, no link), or the result is not a usable URL.
pub fn render(template: &str, alert: &Alert) -> Option<String> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(|value| utf8_percent_encode(value, FIELD).to_string());
    let url = registry
        .render_template(template, &alert.template_context())
        .ok()?
        .trim()
        .to_string();
    let scheme = url.split_once(':')?.0.to_ascii_lowercase();
    let usable = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !REFUSED_SCHEMES.contains(&scheme.as_str());
    usable.then_some(url)
}

/// Renders `kb` templates and the remote-access links that select `alert`.
pub fn for_alert<'a>(
    alert: &Alert,
    kb: impl IntoIterator<Item = &'a String>,
    remote: &[RemoteAccess],
) -> Vec<Link> {
    let mut links: Vec<Link> = Vec::new();
    for template in kb {
        if let Some(url) = render(template, alert) {
            push_unique(
                &mut links,
                Link {
                    kind: LinkKind::Kb,
                    title: kb_title(&url),
                    url,
                },
            );
        }
    }
    for access in remote
        .iter()
        .filter(|access| access.matchers.iter().all(|m| m.matches(alert)))
    {
        if let Some(url) = render(&access.url, alert) {
            push_unique(
                &mut links,
                Link {
                    kind: LinkKind::Remote,
                    title: access.name.clone(),
                    url,
                },
            );
        }
    }
    links
}

fn push_unique(links: &mut Vec<Link>, link: Link) {
    if !links.iter().any(|known| known.url == link.url) {
        links.push(link);
    }
}

/// Names the knowledge base by its host, so a page says "Confluence" rather than a URL.
fn kb_title(url: &str) -> String {
    let host = url.split_once("://").map_or("", |(_, rest)| {
        rest.split(['/', '?', '#']).next().unwrap_or("")
    });
    if host.contains("atlassian.net") || host.contains("confluence") {
        "Confluence".into()
    } else if host.contains("notion.so") || host.contains("notion.site") {
        "Notion".into()
    } else if host.is_empty() {
        "Knowledge base".into()
    } else {
        format!("Knowledge base ({host})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertAction, AlertStatus, Labels, Severity};

    fn alert(labels: &[(&str, &str)]) -> Alert {
        Alert {
            source: "nagios".into(),
            dedup_key: "k".into(),
            resource: "web 01".into(),
            check: "disk".into(),
            severity: Severity::Critical,
            status: AlertStatus::Firing,
            action: AlertAction::Report,
            summary: "Disk full".into(),
            details: serde_json::Value::Null,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Labels>(),
            links: Vec::new(),
            occurred_at: None,
        }
    }

    #[test]
    fn a_missing_field_drops_the_link_instead_of_leaving_it_broken() {
        assert_eq!(render("anydesk:{{labels.anydesk_id}}", &alert(&[])), None);
        assert_eq!(
            render(
                "anydesk:{{labels.anydesk_id}}",
                &alert(&[("anydesk_id", "123456789")])
            ),
            Some("anydesk:123456789".into())
        );
    }

    #[test]
    fn field_values_are_encoded_and_scripts_refused() {
        assert_eq!(
            render("rdp://{{resource}}", &alert(&[])),
            Some("rdp://web%2001".into())
        );
        assert_eq!(
            render(
                "https://wiki.example/search?q={{labels.q}}",
                &alert(&[("q", "a&b=c")])
            ),
            Some("https://wiki.example/search?q=a%26b%3Dc".into())
        );
        assert_eq!(render("javascript:alert({{check}})", &alert(&[])), None);
        assert_eq!(render("{{check}}", &alert(&[])), None);
    }

    #[test]
    fn remote_access_follows_its_matchers_and_kb_is_named_by_host() {
        let remote = vec![RemoteAccess {
            name: "AnyDesk".into(),
            matchers: vec![Matcher::parse("labels.os=\"windows\"").unwrap()],
            url: "anydesk:{{labels.anydesk_id}}".into(),
        }];
        let kb = vec![
            "https://acme.atlassian.net/wiki/spaces/OPS/{{check}}".to_string(),
            "https://acme.atlassian.net/wiki/spaces/OPS/{{check}}".to_string(),
        ];
        let windows = alert(&[("os", "windows"), ("anydesk_id", "42")]);
        let links = for_alert(&windows, &kb, &remote);
        assert_eq!(
            links,
            vec![
                Link {
                    kind: LinkKind::Kb,
                    title: "Confluence".into(),
                    url: "https://acme.atlassian.net/wiki/spaces/OPS/disk".into()
                },
                Link {
                    kind: LinkKind::Remote,
                    title: "AnyDesk".into(),
                    url: "anydesk:42".into()
                },
            ]
        );
        let linux = alert(&[("os", "linux"), ("anydesk_id", "42")]);
        assert_eq!(for_alert(&linux, &kb, &remote).len(), 1);
    }

    #[test]
    fn a_bad_template_names_itself_and_how_to_write_fields() {
        let error = check_template("https://kb.example/{{check")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                r#""https://kb.example/{{check" is not a valid template at column 27: "#
            ),
            "{error}"
        );
        assert!(
            error.ends_with("; write fields as {{check}} or {{labels.NAME}}"),
            "{error}"
        );
        check_template("https://kb.example/{{labels.team}}").unwrap();
    }
}
