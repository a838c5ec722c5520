//! The durable outbox: every message is a row; due rows are claimed, rendered from the
//! incident as it is now, sent, and their outcome recorded. Transient failures retry
//! with exponential backoff and jitter (from 5 s, capped at 60 s) until the channel's
//! deadline; a channel that keeps failing also brings in the user's next channel.
//! Every attempt is on the incident timeline and in `tocsin_notifications_total`.
//!
//! Messages due the moment they are queued (an L1 page) skip the claim: the writer
//! writes them claimed and hands the claim over ([`Handoff`]) once the batch is
//! durable, so a page leaves one query and one fsync sooner.

use super::NotifyError;
use super::ack_link::{AckClaim, AckLinks, ApprovalClaim, CSAT_PREFIX};
use super::email::EmailSender;
use super::sms::SmsSender;
use super::templates::{Templates, fit_sms};
use crate::clock::{Clock, rfc3339};
use crate::incident::{Incident, IncidentStatus, TimelineEntry};
use crate::metrics::Metrics;
use crate::oncall::Channel;
use crate::store::paging::{Delivery, Notification, NotificationKind};
use crate::store::{
    AlertQuery, CLAIM_LEASE, Claims, RENEW_EVERY, Store, StoreError, work_claimed, work_claims,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What each satisfaction score, 1 to 5, means to the person answering.
pub const CSAT_LABELS: [&str; 5] = [
    "very unsatisfied",
    "unsatisfied",
    "neutral",
    "satisfied",
    "very satisfied",
];

/// Messages claimed per round.
const CLAIM: i64 = 64;
/// Failed attempts after which the user's next channel is tried as well.
const FALLBACK_AFTER: i64 = 3;
const SMS_LIMIT: usize = 160;
const SUBJECT_LIMIT: usize = 200;

/// How the writer tells the outbox about messages it queued: a wake, and the claims
/// it wrote messages due now under, for the outbox to take over.
pub struct Handoff {
    pub wake: Arc<Notify>,
    claims: Mutex<Vec<String>>,
}

impl Handoff {
    pub fn new(wake: Arc<Notify>) -> Self {
        Self {
            wake,
            claims: Mutex::new(Vec::new()),
        }
    }

    /// Called once a batch that queued messages is durable.
    pub fn hand(&self, claim: Option<&str>) {
        self.claims().extend(claim.map(str::to_string));
        self.wake.notify_one();
    }

    fn hand_back(&self, claims: impl Iterator<Item = String>) {
        self.claims().extend(claims);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.claims())
    }

    /// A panic elsewhere while holding the list leaves it whole (pushes and takes
    /// only), so a poisoned lock is still used.
    fn claims(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Delivers what the pipeline queued.
pub struct Outbox {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: crate::config::SharedConfig,
    pub metrics: Metrics,
    pub templates: Arc<Templates>,
    pub links: AckLinks,
    pub email: Option<EmailSender>,
    pub sms: Option<SmsSender>,
    pub http: reqwest::Client,
    pub handoff: Arc<Handoff>,
}

impl Outbox {
    /// Sends everything due now, concurrently within each claimed round; returns how
    /// many messages were attempted.
    pub async fn flush(self: &Arc<Self>) -> Result<usize, StoreError> {
        let deliver = |notification, claim: String| {
            let outbox = Arc::clone(self);
            async move { outbox.deliver(notification, &claim).await }
        };
        let handed = self.take_handed().await?;
        let worked = handed.iter().map(|(_, rows)| rows.len()).sum::<usize>();
        // Every handed claim at once, as one claim round's rows are.
        futures_util::future::join_all(handed.into_iter().map(|(claim, rows)| {
            let deliver = &deliver;
            async move {
                work_claimed(
                    self.store.as_ref(),
                    self.clock.as_ref(),
                    Claims::Notifications,
                    |notification: &Notification| notification.id,
                    &claim,
                    rows,
                    deliver,
                )
                .await;
            }
        }))
        .await;
        let claimed = work_claims(
            self.store.as_ref(),
            self.clock.as_ref(),
            Claims::Notifications,
            |notification: &Notification| notification.id,
            |claim| {
                let (store, now) = (Arc::clone(&self.store), self.clock.now());
                async move {
                    store
                        .claim_notifications(now, CLAIM_LEASE, CLAIM, &claim)
                        .await
                }
            },
            deliver,
        )
        .await?;
        Ok(worked + claimed)
    }

    /// The rows of every claim the writer handed over whose lease leaves this process
    /// time to renew it as an outbox claim would be (3 s): one closer to running out
    /// may be taken over by another process any moment, so it is left to the claim
    /// path. Claims not read because the store failed are handed back.
    async fn take_handed(&self) -> Result<Vec<(String, Vec<Notification>)>, StoreError> {
        let mut claims = self.handoff.take().into_iter();
        let margin = CLAIM_LEASE - TimeDelta::from_std(RENEW_EVERY).unwrap_or_default();
        let mut handed = Vec::new();
        while let Some(claim) = claims.next() {
            let held_past = self.clock.now() + margin;
            match self.store.claimed_notifications(&claim, held_past).await {
                Ok(rows) => handed.push((claim, rows)),
                Err(error) => {
                    self.handoff.hand_back(std::iter::once(claim).chain(claims));
                    return Err(error);
                }
            }
        }
        Ok(handed)
    }

    async fn deliver(&self, notification: Notification, claim: &str) -> Result<(), StoreError> {
        let outcome = if notification.kind == NotificationKind::Report {
            self.send_report(&notification).await
        } else {
            match self.store.incident(notification.incident_id).await? {
                // Acknowledging or resolving cancels the pages still queued; one
                // already claimed (the writer claims L1 pages as it queues them) is
                // cancelled here instead.
                Some(incident)
                    if notification.kind == NotificationKind::Page
                        && incident.status != IncidentStatus::Triggered =>
                {
                    let now = self.clock.now();
                    return self
                        .store
                        .finish_notification(notification.id, claim, &Delivery::Cancelled, now)
                        .await;
                }
                Some(incident) => self.send(&notification, &incident).await,
                None => Err(NotifyError::Permanent(format!(
                    "incident {} no longer exists",
                    notification.incident_id
                ))),
            }
        };
        let now = self.clock.now();
        let attempt = notification.attempts + 1;
        let what = describe(&notification);
        let (delivery, kind, message) = match outcome {
            Ok(via) => (Delivery::Sent, "notified", format!("{what} sent{via}")),
            Err(error) => {
                let (delivery, message) =
                    error.settle(&what, attempt, notification.id, notification.deadline, now);
                let kind = if matches!(delivery, Delivery::Retry { .. }) {
                    "notification_retry"
                } else {
                    "notification_failed"
                };
                (delivery, kind, message)
            }
        };
        let outcome = match &delivery {
            Delivery::Sent => "sent",
            Delivery::Retry { .. } => "retry",
            Delivery::Failed { .. } => "failed",
            Delivery::Cancelled => "cancelled",
        };
        self.metrics
            .notifications
            .with_label_values(&[notification.channel.as_str(), outcome])
            .inc();
        // The row first: a timeline that cannot be written must not leave a message
        // that went out claimable again (it would go out twice).
        self.store
            .finish_notification(notification.id, claim, &delivery, now)
            .await?;
        self.record(&notification, now, kind, message).await?;
        if !matches!(delivery, Delivery::Sent)
            && (attempt == FALLBACK_AFTER || matches!(delivery, Delivery::Failed { .. }))
        {
            self.fall_back(&notification, now).await?;
        }
        Ok(())
    }

    /// Emails a secret a runbook produced (a temporary password) to `address`, at
    /// once and without storing it: it is neither queued as a row nor logged.
    pub async fn deliver_secret(
        &self,
        address: &str,
        runbook: &str,
        secret: &str,
    ) -> Result<(), NotifyError> {
        let domains = self.config.load().secret_domains.clone();
        secret_may_go_to(address, &domains)?;
        let email = self.mailer()?;
        let text = format!(
            "Your temporary password, set by Tocsin's {runbook} runbook:\n\n    {secret}\n\nYou will be asked to change it when you next log in. \
             If you did not expect this message, tell your service desk."
        );
        email
            .send(address, "Your temporary password", text, None)
            .await
    }

    /// Queues the same message on the user's next channel, once.
    async fn fall_back(
        &self,
        failing: &Notification,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let config = self.config.load_full();
        let Some(user) = config.directory.users.get(&failing.user_id) else {
            return Ok(());
        };
        let channels: Vec<Channel> = user
            .notify
            .iter()
            .map(|rule| rule.channel)
            .chain([Channel::Email, Channel::Sms, Channel::Webhook])
            .collect();
        let next = channels
            .iter()
            .skip_while(|channel| **channel != failing.channel)
            .skip(1)
            .chain(channels.iter())
            .find(|channel| **channel != failing.channel && user.address(**channel).is_some());
        let Some(channel) = next else { return Ok(()) };
        let Some(address) = user.address(*channel) else {
            return Ok(());
        };
        let fallback = Notification {
            id: 0,
            channel: *channel,
            address: address.to_string(),
            attempts: 0,
            due_at: now,
            deadline: now + self.config.load().delivery_deadline(*channel),
            ..failing.clone()
        };
        self.record(
            failing,
            now,
            "notification_fallback",
            format!("{} keeps failing: also trying {channel}", describe(failing)),
        )
        .await?;
        self.store.queue_notifications(&[fallback]).await
    }

    /// An update to a client contact; the resolution carries one-click satisfaction
    /// links (`GET /csat/{token}?score=1..5`).
    async fn send_stakeholder(
        &self,
        notification: &Notification,
        incident: &Incident,
    ) -> Result<String, NotifyError> {
        let email = self.mailer()?;
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
        let text = self
            .templates
            .render("stakeholder.txt", &context)
            .map_err(|error| NotifyError::Permanent(error.to_string()))?;
        let what = if resolved {
            "resolved".to_string()
        } else if notification.step == "opened" {
            "we are on it".to_string()
        } else {
            format!("now {}", incident.priority)
        };
        let subject = format!("#{} {}: {what}", incident.id, incident.title);
        email
            .send(&notification.address, &subject, text, None)
            .await
            .map(|()| String::new())
    }

    async fn send_report(&self, notification: &Notification) -> Result<String, NotifyError> {
        let email = self.mailer()?;
        let (subject, html) = crate::report::render(
            self.store.as_ref(),
            &self.templates,
            &self.config.load(),
            &notification.step,
            self.clock.now(),
        )
        .await
        .map_err(NotifyError::Transient)?;
        let text = "This report is HTML; open it in a mail client that shows HTML.".to_string();
        email
            .send(&notification.address, &subject, text, Some(html))
            .await
            .map(|()| String::new())
    }

    async fn record(
        &self,
        notification: &Notification,
        at: DateTime<Utc>,
        kind: &str,
        message: String,
    ) -> Result<(), StoreError> {
        if notification.kind == NotificationKind::Report {
            // Reports belong to no incident; their outcome is in the metrics and logs.
            return Ok(());
        }
        let entry = TimelineEntry {
            incident_id: notification.incident_id,
            at,
            kind: kind.to_string(),
            actor: "tocsin".to_string(),
            message,
            data: json!({ "channel": notification.channel.as_str(), "user": notification.user_id, "step": notification.step, "notification": notification.id }),
        };
        self.store.append_timeline(&[entry]).await
    }

    fn mailer(&self) -> Result<&EmailSender, NotifyError> {
        self.email.as_ref().ok_or_else(|| {
            NotifyError::Permanent("email is off: add an [email] section to the config".into())
        })
    }

    /// Tells the policy's last tier that a drill went unacknowledged, so the gap in
    /// the rota is found before a real incident finds it.
    async fn send_drill_report(
        &self,
        notification: &Notification,
        incident: &Incident,
    ) -> Result<String, NotifyError> {
        let email = self.mailer()?;
        let text = format!(
            "Paging drill {check} (incident {id}, policy {policy}) was not acknowledged.\n\
             It started at {started}; its timeline lists who was paged and how.\n\
             Check the on-call schedule and contact details of everyone paged; a real {priority} \
             incident would have gone unanswered the same way.\n",
            check = incident.check,
            id = incident.id,
            policy = incident.escalation_policy.as_deref().unwrap_or("default"),
            started = incident.created_at.to_rfc3339(),
            priority = incident.priority,
        );
        email
            .send(
                &notification.address,
                &subject("[DRILL FAILED]", incident),
                text,
                None,
            )
            .await
            .map(|()| String::new())
    }

    /// Renders and sends one message; returns a note on how it went out.
    async fn send(
        &self,
        notification: &Notification,
        incident: &Incident,
    ) -> Result<String, NotifyError> {
        if notification.kind == NotificationKind::Stakeholder {
            return self.send_stakeholder(notification, incident).await;
        }
        if notification.kind == NotificationKind::DrillReport {
            return self.send_drill_report(notification, incident).await;
        }
        let mut context = self.context(notification, incident).await?;
        let resolved = notification.kind == NotificationKind::Resolved;
        let render = |name: &str, context: &Value| {
            self.templates
                .render(name, context)
                .map_err(|error| NotifyError::Permanent(error.to_string()))
        };
        match notification.channel {
            Channel::Email => {
                let email = self.mailer()?;
                let (subject, text, html) = if resolved {
                    (
                        subject("[RESOLVED]", incident),
                        render("resolved.txt", &context)?,
                        None,
                    )
                } else {
                    (
                        subject(&format!("[{}]", incident.priority), incident),
                        render("page.txt", &context)?,
                        Some(render("page.html", &context)?),
                    )
                };
                email
                    .send(&notification.address, &subject, text, html)
                    .await
                    .map(|()| String::new())
            }
            Channel::Sms => {
                let sms = self.sms.as_ref().ok_or_else(|| {
                    NotifyError::Permanent("SMS is off: add an [sms] section to the config".into())
                })?;
                let name = if resolved { "resolved.sms" } else { "page.sms" };
                let body = fit_sms(
                    &self.templates,
                    name,
                    &mut context,
                    &incident.summary,
                    SMS_LIMIT,
                )
                .map_err(|error| NotifyError::Permanent(error.to_string()))?;
                sms.send(&notification.address, &body)
                    .await
                    .map(|provider| format!(" via {provider}"))
            }
            Channel::Webhook => {
                let payload = json!({
                    "event": if resolved { "resolved" } else { "page" },
                    "text": render(if resolved { "resolved.sms" } else { "page.sms" }, &context)?,
                    "incident": context["incident"],
                    "ack_url": context["ack_url"],
                    "console_url": context["console_url"],
                    "level": context["level"],
                });
                super::webhook::send(&self.http, &notification.address, &payload)
                    .await
                    .map(|()| String::new())
            }
        }
    }

    /// One link per run waiting for approval on the incident, valid while it waits.
    async fn approval_links(
        &self,
        notification: &Notification,
        incident_id: i64,
    ) -> Result<Vec<Value>, NotifyError> {
        let waiting = self
            .store
            .pending_approvals(incident_id)
            .await
            .map_err(|error| NotifyError::Transient(error.to_string()))?;
        let public = self.config.load().public_url.clone();
        let links = waiting
            .into_iter()
            .filter_map(|run| {
                let claim = ApprovalClaim {
                    incident_id,
                    runbook: run.runbook,
                    user_id: notification.user_id.clone(),
                    expires_at: run.approval_due?,
                };
                let url = format!("{public}/approve/{}", self.links.sign_approval(&claim));
                Some(json!({ "runbook": claim.runbook, "target": run.target, "url": url }))
            })
            .collect();
        Ok(links)
    }

    async fn context(
        &self,
        notification: &Notification,
        incident: &Incident,
    ) -> Result<Value, NotifyError> {
        let alerts = self
            .store
            .alerts(&AlertQuery {
                incident_id: Some(incident.id),
                limit: 20,
                ..AlertQuery::default()
            })
            .await
            .map_err(|error| NotifyError::Transient(error.to_string()))?;
        let tickets = self
            .store
            .tickets(&[incident.id])
            .await
            .map_err(|error| NotifyError::Transient(error.to_string()))?;
        let approvals = self.approval_links(notification, incident.id).await?;
        let window = self.config.load().changes.window;
        let changes: Vec<Value> = self
            .store
            .changes(&crate::change::ChangeQuery::explaining(
                &incident.resource,
                incident.created_at,
                window,
            ))
            .await
            .map_err(|error| NotifyError::Transient(error.to_string()))?
            .iter()
            .filter(|change| change.explains(&incident.resource, incident.created_at, window))
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
        Ok(json!({
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
        }))
    }
}

/// `[P1] #12 db-01: summary`, cut to 200 characters.
pub fn subject(prefix: &str, incident: &Incident) -> String {
    let full = format!(
        "{prefix} #{} {}: {}",
        incident.id, incident.resource, incident.summary
    );
    let single_line = full.replace(['\r', '\n'], " ");
    if single_line.chars().count() <= SUBJECT_LIMIT {
        return single_line;
    }
    single_line
        .chars()
        .take(SUBJECT_LIMIT - 1)
        .collect::<String>()
        + "…"
}

fn describe(notification: &Notification) -> String {
    let what = match notification.kind {
        NotificationKind::Page => format!(
            "{} page",
            notification.step.split('#').next().unwrap_or_default()
        ),
        NotificationKind::Resolved => "resolution notice".to_string(),
        NotificationKind::Report => "weekly report".to_string(),
        NotificationKind::Stakeholder => format!("stakeholder update ({})", notification.step),
        NotificationKind::DrillReport => "failed-drill report".to_string(),
    };
    match notification.channel {
        // Its address is a URL with a secret in it; the timeline is for viewers.
        crate::oncall::Channel::Webhook => {
            format!("{what} to user:{} via webhook", notification.user_id)
        }
        channel => format!(
            "{channel} {what} to {} ({})",
            notification.user_id, notification.address
        ),
    }
}

/// 5 s, 10 s, 20 s, 40 s, then 60 s, each shortened by up to 20 % by a jitter drawn
/// from the message id, so retries of many messages spread out and the first retry
/// still comes within 5 s.
pub fn backoff(attempt: i64, id: i64) -> TimeDelta {
    let exponent = u32::try_from(attempt.clamp(1, 5) - 1).unwrap_or(0);
    let base_ms = (5_000_i64 << exponent).min(60_000);
    let spread = (id.wrapping_mul(2_654_435_761) % 21).abs() - 20;
    TimeDelta::milliseconds(base_ms + base_ms * spread / 100)
}

/// A runbook's secret goes only to a domain an operator vouched for: a runbook led to
/// the wrong address (a forged directory entry, a bug) must not hand a password out.
fn secret_may_go_to(address: &str, domains: &[String]) -> Result<(), NotifyError> {
    let domain = address
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_ascii_lowercase())
        .unwrap_or_default();
    if domains.contains(&domain) {
        return Ok(());
    }
    Err(NotifyError::Permanent(format!(
        "its domain {domain:?} is not in [runbooks] secret_domains ({}); the secret was not sent. Add the domain there if it is your organisation's",
        domains.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_within_five_seconds_and_caps_at_a_minute() {
        for id in 0..50 {
            let first = backoff(1, id);
            assert!(
                first >= TimeDelta::seconds(4) && first <= TimeDelta::seconds(5),
                "{first}"
            );
            assert!(backoff(10, id) <= TimeDelta::seconds(60));
        }
        assert!(backoff(3, 1) > backoff(2, 1));
    }
}
