//! Composing: every kind of message (page, resolution notice, stakeholder update,
//! failed-drill report, scheduled report, runbook secret) rendered from its template
//! into a [`Message`] that any channel can send.

use super::Outbox;
use super::facts::Facts;
use crate::clock::rfc3339;
use crate::incident::Incident;
use crate::notify::NotifyError;
use crate::notify::ack_link::{AckClaim, ApprovalClaim, CSAT_PREFIX};
use crate::oncall::Channel;
use crate::store::paging::{Notification, NotificationKind};
use crate::store::runs::RunRecord;
use crate::templates::fit_sms;
use chrono::TimeDelta;
use serde_json::{Value, json};

/// What each satisfaction score, 1 to 5, means to the person answering.
pub const CSAT_LABELS: [&str; 5] = [
    "very unsatisfied",
    "unsatisfied",
    "neutral",
    "satisfied",
    "very satisfied",
];

const SMS_LIMIT: usize = 160;

/// One rendered message. Email sends `subject`, `text` and `html`; the short
/// channels send `short`; the chat and push channels also use `context` (incident,
/// ack URL, level) for their buttons.
pub struct Message {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    pub short: String,
    pub resolved: bool,
    pub context: Value,
}

impl Message {
    fn email(subject: String, text: String, html: Option<String>) -> Self {
        Self {
            short: subject.clone(),
            subject,
            text,
            html,
            resolved: false,
            context: Value::Null,
        }
    }
}

impl Outbox {
    /// Renders `notification` about `incident` for its channel.
    pub(super) fn compose(
        &self,
        notification: &Notification,
        incident: &Incident,
        facts: &Facts,
    ) -> Result<Message, NotifyError> {
        match notification.kind {
            NotificationKind::Stakeholder => self.compose_stakeholder(notification, incident),
            NotificationKind::DrillReport => self.compose_drill_report(incident),
            _ => self.compose_page(notification, incident, facts),
        }
    }

    fn compose_page(
        &self,
        notification: &Notification,
        incident: &Incident,
        facts: &Facts,
    ) -> Result<Message, NotifyError> {
        // Moved into Handlebars' context for the renders and back out for the channel.
        let mut context = handlebars::Context::from(self.context(notification, incident, facts));
        let resolved = notification.kind == NotificationKind::Resolved;
        let short_name = match (resolved, notification.channel) {
            (true, _) => "resolved.sms",
            (false, Channel::Email | Channel::Sms | Channel::Webhook | Channel::Voice) => {
                "page.sms"
            }
            // Buttons act here: the SMS reply codes would only mislead.
            (
                false,
                Channel::Slack
                | Channel::Telegram
                | Channel::Ntfy
                | Channel::Teams
                | Channel::Mattermost,
            ) => "page.chat",
        };
        let short = match notification.channel {
            Channel::Sms => Some(
                fit_sms(
                    &self.templates,
                    short_name,
                    &mut context,
                    &incident.summary,
                    SMS_LIMIT,
                )
                .map_err(template_error)?,
            ),
            // An email sends its subject and bodies: a storm's pages rendered a third
            // template each for nothing. Its short form is the subject, as for every
            // other email.
            Channel::Email => None,
            _ => Some(self.render_in(short_name, &context)?),
        };
        let (subject, text, html) = if notification.channel != Channel::Email {
            (
                incident.subject(&format!("[{}]", incident.priority)),
                short.clone().unwrap_or_default(),
                None,
            )
        } else if resolved {
            (
                incident.subject("[RESOLVED]"),
                self.render_in("resolved.txt", &context)?,
                None,
            )
        } else {
            (
                incident.subject(&format!("[{}]", incident.priority)),
                self.render_in("page.txt", &context)?,
                Some(self.render_in("page.html", &context)?),
            )
        };
        Ok(Message {
            short: short.unwrap_or_else(|| subject.clone()),
            subject,
            text,
            html,
            resolved,
            context: std::mem::take(context.data_mut()),
        })
    }

    /// An update to a client contact; the resolution carries one-click satisfaction
    /// links (`GET /csat/{token}?score=1..5`).
    fn compose_stakeholder(
        &self,
        notification: &Notification,
        incident: &Incident,
    ) -> Result<Message, NotifyError> {
        let resolved = notification.step == "resolved";
        let claim = AckClaim {
            incident_id: incident.id,
            user_id: format!("{CSAT_PREFIX}{}", notification.address),
            expires_at: self.clock.now() + TimeDelta::days(30),
            nonce: notification.id,
        };
        let token = self.links.sign(&claim);
        let csat: Vec<Value> = (1..=5)
            .map(|score| json!({ "score": score, "label": CSAT_LABELS[score - 1], "url": format!("{}/csat/{token}?score={score}", self.config.load().public_url) }))
            .collect();
        let context = json!({
            "incident": {
                "id": incident.id,
                "title": incident.title,
                "summary": incident.summary,
                "priority": incident.priority.as_str(),
                "resource": incident.resource,
                "created_at": rfc3339(incident.created_at),
                "resolved_at": incident.resolved_at.map(rfc3339),
                "response_due": rfc3339(incident.response_due),
                "resolve_due": rfc3339(incident.resolve_due),
            },
            "opened": notification.step == "opened",
            "resolved": resolved,
            "csat": csat,
        });
        let text = self.render("stakeholder.txt", &context)?;
        let what = if resolved {
            "resolved".to_string()
        } else if notification.step == "opened" {
            "we are on it".to_string()
        } else {
            format!("now {}", incident.priority)
        };
        let subject = format!("#{} {}: {what}", incident.id, incident.title);
        Ok(Message::email(subject, text, None))
    }

    /// Tells the policy's last tier that a drill went unacknowledged, so the gap in
    /// the rota is found before a real incident finds it.
    fn compose_drill_report(&self, incident: &Incident) -> Result<Message, NotifyError> {
        let context = json!({
            "incident": {
                "id": incident.id,
                "check": incident.check,
                "priority": incident.priority.as_str(),
            },
            "policy": incident.escalation_policy.as_deref().unwrap_or("default"),
            "started": incident.created_at.to_rfc3339(),
        });
        let text = self.render("drill_report.txt", &context)? + "\n";
        Ok(Message::email(
            incident.subject("[DRILL FAILED]"),
            text,
            None,
        ))
    }

    /// A scheduled report (weekly, monthly), rendered from the store as it is now.
    pub(super) async fn compose_report(
        &self,
        notification: &Notification,
    ) -> Result<Message, NotifyError> {
        let (subject, html) = crate::report::render(
            self.store.as_ref(),
            &self.templates,
            &self.config.load(),
            &notification.step,
            self.clock.now(),
        )
        .await
        .map_err(|error| NotifyError::Transient(error.to_string()))?;
        let text = "This report is HTML; open it in a mail client that shows HTML.".to_string();
        Ok(Message::email(subject, text, Some(html)))
    }

    /// The email carrying a secret a runbook produced.
    pub(super) fn compose_secret(
        &self,
        runbook: &str,
        secret: &str,
    ) -> Result<Message, NotifyError> {
        let text = self.render(
            "secret.txt",
            &json!({ "runbook": runbook, "secret": secret }),
        )?;
        Ok(Message::email(
            "Your temporary password".to_string(),
            text,
            None,
        ))
    }

    fn render(&self, name: &str, context: &Value) -> Result<String, NotifyError> {
        self.templates.render(name, context).map_err(template_error)
    }

    fn render_in(&self, name: &str, context: &handlebars::Context) -> Result<String, NotifyError> {
        self.templates
            .render_in(name, context)
            .map_err(template_error)
    }

    /// One link per run waiting for approval on the incident, valid while it waits.
    fn approval_links(
        &self,
        notification: &Notification,
        incident_id: i64,
        waiting: &[RunRecord],
    ) -> Vec<Value> {
        let public = self.config.load().public_url.clone();
        waiting
            .iter()
            .filter_map(|run| {
                let claim = ApprovalClaim {
                    incident_id,
                    runbook: run.runbook.clone(),
                    user_id: notification.user_id.clone(),
                    expires_at: run.approval_due?,
                };
                let url = format!("{public}/approve/{}", self.links.sign_approval(&claim));
                Some(json!({ "runbook": claim.runbook, "target": run.target, "url": url }))
            })
            .collect()
    }

    fn context(&self, notification: &Notification, incident: &Incident, facts: &Facts) -> Value {
        let alerts = facts.alerts(incident.id);
        let tickets = facts.tickets(incident.id);
        let approvals =
            self.approval_links(notification, incident.id, facts.approvals(incident.id));
        let changes: Vec<Value> = facts
            .changes(incident.id)
            .iter()
            .map(|change| {
                json!({
                    "at": rfc3339(change.at),
                    "source": change.source,
                    "resource": change.resource,
                    "summary": change.summary,
                    "links": change.links,
                })
            })
            .collect();
        let claim = AckClaim {
            incident_id: incident.id,
            user_id: notification.user_id.clone(),
            expires_at: self.clock.now() + self.links.ttl,
            nonce: notification.id,
        };
        let public = &self.config.load().public_url;
        let user_name = self
            .config
            .load()
            .directory
            .users
            .get(&notification.user_id)
            .map_or(notification.user_id.clone(), |user| user.name.clone());
        json!({
            "incident": {
                "id": incident.id,
                "title": incident.title,
                "priority": incident.priority.as_str(),
                "status": incident.status.as_str(),
                "summary": incident.summary,
                "resource": incident.resource,
                "check": incident.check,
                "source": incident.source,
                "created_at": rfc3339(incident.created_at),
                "resolved_at": incident.resolved_at.map(rfc3339),
                "response_due": rfc3339(incident.response_due),
                "resolve_due": rfc3339(incident.resolve_due),
                "escalation_level": incident.escalation_level,
                "alert_count": incident.alert_count,
            },
            "recent_changes": changes,
            "alerts": alerts.iter().map(|alert| json!({
                "check": alert.check,
                "resource": alert.resource,
                "severity": alert.severity.as_str(),
                "summary": alert.summary,
                "count": alert.count,
                "count_repeats": alert.count > 1,
                "labels": alert.labels,
                "links": alert.links,
            })).collect::<Vec<_>>(),
            "user": { "id": notification.user_id, "name": user_name },
            "links": incident.links,
            "tickets": tickets.iter().map(crate::store::tickets::Ticket::to_json).collect::<Vec<_>>(),
            "level": notification.step.split('#').next().unwrap_or_default(),
            "ack_url": format!("{public}/ack/{}", self.links.sign(&claim)),
            "approvals": approvals,
            "incident_url": format!("{public}/api/v1/incidents/{}", incident.id),
            "console_url": format!("{public}/ui/incidents/{}", incident.id),
            "summary": incident.summary,
        })
    }
}

fn template_error(error: crate::templates::TemplateError) -> NotifyError {
    NotifyError::Permanent(error.to_string())
}
