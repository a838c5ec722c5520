//! Message bodies from Handlebars templates: the defaults are compiled in, and files
//! of the same name in `templates_dir` override them.

use handlebars::{Context, Handlebars};
use serde_json::Value;
use std::path::Path;

/// Built-in templates: (name, file, text).
const BUILT_IN: [(&str, &str, &str); 13] = [
    (
        "monthly.html",
        "monthly.html.hbs",
        include_str!("../config/templates/monthly.html.hbs"),
    ),
    (
        "stakeholder.txt",
        "stakeholder.txt.hbs",
        include_str!("../config/templates/stakeholder.txt.hbs"),
    ),
    (
        "report.html",
        "report.html.hbs",
        include_str!("../config/templates/report.html.hbs"),
    ),
    (
        "dashboard.html",
        "dashboard.html.hbs",
        include_str!("../config/templates/dashboard.html.hbs"),
    ),
    (
        "dashboard_panel.html",
        "dashboard_panel.html.hbs",
        include_str!("../config/templates/dashboard_panel.html.hbs"),
    ),
    (
        "page.txt",
        "page.txt.hbs",
        include_str!("../config/templates/page.txt.hbs"),
    ),
    (
        "page.html",
        "page.html.hbs",
        include_str!("../config/templates/page.html.hbs"),
    ),
    (
        "page.sms",
        "page.sms.hbs",
        include_str!("../config/templates/page.sms.hbs"),
    ),
    (
        "resolved.txt",
        "resolved.txt.hbs",
        include_str!("../config/templates/resolved.txt.hbs"),
    ),
    (
        "resolved.sms",
        "resolved.sms.hbs",
        include_str!("../config/templates/resolved.sms.hbs"),
    ),
    (
        "page.chat",
        "page.chat.hbs",
        include_str!("../config/templates/page.chat.hbs"),
    ),
    (
        "drill_report.txt",
        "drill_report.txt.hbs",
        include_str!("../config/templates/drill_report.txt.hbs"),
    ),
    (
        "secret.txt",
        "secret.txt.hbs",
        include_str!("../config/templates/secret.txt.hbs"),
    ),
];

/// A template that does not compile or render.
#[derive(Debug, thiserror::Error)]
#[error("template {name}: {message}")]
pub struct TemplateError {
    pub name: String,
    pub message: String,
}

/// The compiled templates. HTML templates escape values; text ones do not.
pub struct Templates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
}

impl Templates {
    /// Compiles the built-in templates, each replaced by `dir/<file>` when present.
    pub fn load(dir: &Path) -> Result<Self, TemplateError> {
        let mut html = Handlebars::new();
        let mut text = Handlebars::new();
        text.register_escape_fn(handlebars::no_escape);
        for (name, file, built_in) in BUILT_IN {
            let path = dir.join(file);
            let source = match std::fs::read_to_string(&path) {
                Ok(source) => source,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => built_in.to_string(),
                Err(error) => {
                    return Err(TemplateError {
                        name: path.display().to_string(),
                        message: error.to_string(),
                    });
                }
            };
            let registry = if name.ends_with(".html") {
                &mut html
            } else {
                &mut text
            };
            registry
                .register_template_string(name, source)
                .map_err(|error| TemplateError {
                    name: path.display().to_string(),
                    message: error.to_string(),
                })?;
        }
        Ok(Self { html, text })
    }

    /// Renders `name` (`page.txt`, `page.html`, `page.sms`, …) with `context`.
    pub fn render(&self, name: &str, context: &Value) -> Result<String, TemplateError> {
        self.render_in(name, &Context::from(context.clone()))
    }

    /// Renders `name` with a context made once for all of a message's templates:
    /// Handlebars' `render` copies its data into a context of its own every time.
    pub fn render_in(&self, name: &str, context: &Context) -> Result<String, TemplateError> {
        let registry = if name.ends_with(".html") {
            &self.html
        } else {
            &self.text
        };
        registry
            .render_with_context(name, context)
            .map(|text| text.trim_end().to_string())
            .map_err(|error| TemplateError {
                name: name.to_string(),
                message: error.to_string(),
            })
    }
}

/// Renders an SMS within `limit` characters by shortening the `summary` field.
pub fn fit_sms(
    templates: &Templates,
    name: &str,
    context: &mut Context,
    summary: &str,
    limit: usize,
) -> Result<String, TemplateError> {
    context.data_mut()["summary"] = Value::from(summary);
    let full = templates.render_in(name, context)?;
    let excess = full.chars().count().saturating_sub(limit);
    if excess == 0 {
        return Ok(full);
    }
    let keep = summary.chars().count().saturating_sub(excess + 1);
    let short: String = summary.chars().take(keep).collect::<String>() + "…";
    context.data_mut()["summary"] = Value::from(short);
    templates.render_in(name, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_stays_within_160_characters_and_keeps_the_reply_codes() {
        let templates = Templates::load(Path::new("/nonexistent")).unwrap();
        let mut context = Context::from(
            serde_json::json!({ "incident": { "id": 4521, "priority": "P1", "resource": "db-01.prod.example.net" } }),
        );
        let summary = "x".repeat(400);
        let sms = fit_sms(&templates, "page.sms", &mut context, &summary, 160).unwrap();
        assert!(sms.chars().count() <= 160, "{}", sms.len());
        assert!(sms.ends_with("Reply ACK 4521 or RES 4521"), "{sms}");
        let short = fit_sms(&templates, "page.sms", &mut context, "disk full", 160).unwrap();
        assert_eq!(
            short,
            "[P1] #4521 db-01.prod.example.net: disk full Reply ACK 4521 or RES 4521"
        );
        context.data_mut()["console_url"] = "https://tocsin.example.com/ui/incidents/4521".into();
        let linked = fit_sms(&templates, "page.sms", &mut context, &summary, 160).unwrap();
        assert!(linked.chars().count() <= 160, "{linked}");
        assert!(
            linked.ends_with("RES 4521 https://tocsin.example.com/ui/incidents/4521"),
            "the console link rides beside the reply codes: {linked}"
        );
    }

    #[test]
    fn html_escapes_and_text_does_not() {
        let templates = Templates::load(Path::new("/nonexistent")).unwrap();
        let context = serde_json::json!({ "incident": { "id": 1, "title": "<b>x</b>", "summary": "a & b" }, "alerts": [] });
        assert!(
            templates
                .render("page.html", &context)
                .unwrap()
                .contains("&lt;b&gt;x&lt;/b&gt;")
        );
        assert!(
            templates
                .render("page.txt", &context)
                .unwrap()
                .contains("<b>x</b>")
        );
    }
}
