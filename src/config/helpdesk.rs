//! `[[tickets]]`, `[[remote_access]]` and the rules' `kb` and `tickets` keys: what each
//! platform needs to take a call, and link templates that compile.

use super::Checker;
use super::raw::RawConfig;
use crate::incident::links::{RemoteAccess, check_template};
use crate::ticket::{Platform, TicketConfig};

pub(super) fn tickets(raw: &RawConfig, check: &mut Checker<'_>) -> Vec<TicketConfig> {
    let mut tickets: Vec<TicketConfig> = Vec::new();
    for (i, ticket) in raw.tickets.iter().enumerate() {
        let path = format!("tickets[{i}]");
        let Ok(platform) = ticket.platform.parse::<Platform>() else {
            check.error(
                format!("{path}.platform"),
                format!(
                    "unknown platform {:?}; use zendesk, freshdesk, servicenow or jira",
                    ticket.platform
                ),
            );
            continue;
        };
        if tickets.iter().any(|known| known.platform == platform) {
            check.error(
                format!("{path}.platform"),
                format!("{platform} has two [[tickets]] tables; keep one per platform"),
            );
        }
        let base_url = ticket.base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            check.error(
                format!("{path}.base_url"),
                format!("{base_url:?} is not an http(s) URL such as \"https://acme.zendesk.com\""),
            );
        }
        if ticket.token.trim().is_empty() {
            check.error(
                format!("{path}.token"),
                "is empty; set it from the environment, e.g. token = \"${ZENDESK_TOKEN}\"",
            );
        }
        if platform != Platform::Freshdesk && ticket.user.trim().is_empty() {
            check.error(
                format!("{path}.user"),
                format!("{platform} needs the account the token belongs to"),
            );
        }
        if platform == Platform::Freshdesk && ticket.requester.is_none() {
            check.error(
                format!("{path}.requester"),
                "Freshdesk tickets need a requester email, e.g. requester = \"monitoring@acme.example\"",
            );
        }
        if platform == Platform::Jira && ticket.project.is_none() {
            check.error(
                format!("{path}.project"),
                "Jira needs the project key issues go to, e.g. project = \"OPS\"",
            );
        }
        if let Some(secret) = &ticket.webhook_secret
            && secret.len() < 8
        {
            check.error(
                format!("{path}.webhook_secret"),
                "is shorter than 8 characters; use a long random string",
            );
        }
        let priorities = ticket
            .priorities
            .iter()
            .enumerate()
            .filter_map(|(j, p)| check.priority(&format!("{path}.priorities[{j}]"), p))
            .collect();
        tickets.push(TicketConfig {
            platform,
            base_url,
            user: ticket.user.clone(),
            token: ticket.token.clone(),
            priorities,
            group: ticket.group.clone(),
            requester: ticket.requester.clone(),
            tags: ticket.tags.clone(),
            project: ticket.project.clone(),
            issue_type: ticket.issue_type.clone(),
            resolve_transition: ticket.resolve_transition.clone(),
            close_code: ticket.close_code.clone(),
            webhook_secret: ticket.webhook_secret.clone(),
            deadline: check.duration(&format!("{path}.deadline"), &ticket.deadline),
        });
    }
    for (i, rule) in raw.rules.iter().enumerate() {
        for (j, name) in rule.tickets.iter().flatten().enumerate() {
            if !tickets
                .iter()
                .any(|ticket| ticket.platform.as_str() == name)
            {
                check.error(
                    format!("rules[{i}].tickets[{j}]"),
                    format!("{name:?} has no [[tickets]] table"),
                );
            }
        }
        for (j, template) in rule.kb.iter().enumerate() {
            if let Err(error) = check_template(template) {
                check.error(format!("rules[{i}].kb[{j}]"), error.to_string());
            }
        }
    }
    tickets
}

pub(super) fn remote_access(raw: &RawConfig, check: &mut Checker<'_>) -> Vec<RemoteAccess> {
    raw.remote_access
        .iter()
        .enumerate()
        .map(|(i, access)| {
            let path = format!("remote_access[{i}]");
            if let Err(error) = check_template(&access.url) {
                check.error(format!("{path}.url"), error.to_string());
            }
            RemoteAccess {
                name: access.name.clone(),
                matchers: super::matchers(&format!("{path}.match"), &access.matchers, check),
                url: access.url.clone(),
            }
        })
        .collect()
}

/// The ticket desk reads the running configuration through this.
impl crate::ticket::Settings for super::Config {
    fn tickets(&self) -> &[TicketConfig] {
        &self.tickets
    }
    fn public_url(&self) -> &str {
        &self.public_url
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn every_missing_or_wrong_piece_is_reported_with_its_key() {
        let text = r#"
[[tickets]]
platform = "zendesk"
base_url = "acme.zendesk.com"
token = ""

[[tickets]]
platform = "freshdesk"
base_url = "https://acme.freshdesk.com"
token = "key"

[[tickets]]
platform = "jira"
base_url = "https://acme.atlassian.net"
user = "ops@acme.example"
token = "t"
webhook_secret = "short"

[[tickets]]
platform = "otrs"
base_url = "https://otrs.example"
token = "t"

[[rules]]
name = "r"
kb = ["https://wiki.example/{{check"]
tickets = ["servicenow"]

[[remote_access]]
name = "AnyDesk"
match = ["not a matcher"]
url = "anydesk:{{labels.id"
"#;
        let errors = Config::parse(text, "t.toml").unwrap_err().errors;
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        for expected in [
            "tickets[0].base_url",
            "tickets[0].token",
            "tickets[0].user",
            "tickets[1].requester",
            "tickets[2].project",
            "tickets[2].webhook_secret",
            "tickets[3].platform",
            "rules[0].kb[0]",
            "rules[0].tickets[0]",
            "remote_access[0].match[0]",
            "remote_access[0].url",
        ] {
            assert!(
                paths.contains(&expected),
                "{expected} missing from {paths:?}"
            );
        }
    }
}
