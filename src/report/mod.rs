//! The scheduled reports. Their cron jobs queue one message per recipient in the
//! outbox, and the outbox renders it when it sends it. The weekly report: the week's
//! KPIs against the SLA targets, the trend against the week before, the worst
//! incidents and what the runbooks saved. The monthly review is in `monthly.rs`.

pub mod monthly;
pub mod read;

use crate::clock::{Clock, rfc3339};
use crate::config::Config;
use crate::incident::Incident;
use crate::oncall::Channel;
use crate::store::paging::{Notification, NotificationKind};
use crate::store::{Store, StoreError};
use crate::templates::Templates;
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use serde_json::{Value, json};
use tokio::sync::Notify;

const WEEKLY: &str = "weekly:";

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("unknown report {0:?}")]
    Unknown(String),
    #[error("month: {0:?} is not a month; write YYYY-MM, e.g. 2026-11")]
    NotAMonth(String),
    #[error("month: {0:?} is out of range")]
    OutOfRange(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}; check the report's template in templates_dir")]
    Template(#[from] crate::templates::TemplateError),
    #[error("cannot write the CSV: {0}")]
    Csv(String),
}

/// Queues the weekly report for the seven days before now, to every recipient.
pub async fn queue_weekly(
    store: &dyn Store,
    clock: &dyn Clock,
    to: &[String],
    outbox: &Notify,
) -> Result<(), StoreError> {
    // Whole minutes: every replica's cron fires within the same minute and names the
    // same report, which the outbox then holds once per recipient.
    let now = clock.now();
    let from = now
        - TimeDelta::days(7)
        - TimeDelta::seconds(i64::from(now.second()))
        - TimeDelta::nanoseconds(i64::from(now.nanosecond()));
    queue(
        store,
        clock,
        to,
        outbox,
        format!("{WEEKLY}{}", rfc3339(from)),
    )
    .await
}

/// Queues the report `step` names to every recipient; the outbox renders it.
async fn queue(
    store: &dyn Store,
    clock: &dyn Clock,
    to: &[String],
    outbox: &Notify,
    step: String,
) -> Result<(), StoreError> {
    let now = clock.now();
    let messages: Vec<Notification> = to
        .iter()
        .map(|address| Notification {
            id: 0,
            incident_id: 0,
            user_id: "report".into(),
            channel: Channel::Email,
            address: address.clone(),
            kind: NotificationKind::Report,
            step: step.clone(),
            attempts: 0,
            due_at: now,
            deadline: now + TimeDelta::hours(24),
        })
        .collect();
    store.queue_notifications(&messages).await?;
    outbox.notify_one();
    Ok(())
}

/// Subject and HTML body of the report a queued message names.
pub async fn render(
    store: &dyn Store,
    templates: &Templates,
    config: &Config,
    step: &str,
    now: DateTime<Utc>,
) -> Result<(String, String), ReportError> {
    if let Some(month) = step.strip_prefix(monthly::MONTHLY) {
        return monthly::email(store, templates, config, month, now).await;
    }
    let from = step
        .strip_prefix(WEEKLY)
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|at| at.with_timezone(&Utc))
        .ok_or_else(|| ReportError::Unknown(step.to_string()))?;
    let to = from + TimeDelta::days(7);
    let current = read::kpis(store, from, to, now).await?;
    let previous = read::kpis(store, from - TimeDelta::days(7), from, now).await?;
    let mut created = read::created_between(store, from, to).await?;
    created.retain(|incident| !incident.drill);
    let context = json!({
        "from": rfc3339(from),
        "to": rfc3339(to),
        "from_day": from.format("%Y-%m-%d").to_string(),
        "to_day": to.format("%Y-%m-%d").to_string(),
        "overall": current["overall"],
        "previous": previous["overall"],
        "rows": rows(config, &current, &previous),
        "worst": worst(&created, now),
        "savings": savings(&created),
    });
    let subject = format!(
        "[Tocsin] Weekly report {} to {}",
        from.format("%Y-%m-%d"),
        to.format("%Y-%m-%d")
    );
    let html = templates.render("report.html", &context)?;
    Ok((subject, html))
}

pub(crate) fn rows(config: &Config, current: &Value, previous: &Value) -> Vec<Value> {
    let row = |name: &str, figures: &Value, before: &Value, targets: String| {
        let now = figures["incidents"].as_i64().unwrap_or(0);
        let then = before["incidents"].as_i64().unwrap_or(0);
        json!({
            "name": name,
            "incidents": now,
            "trend": format!("{:+}", now - then),
            "mtta": crate::kpi::duration(&figures["mtta_seconds"]),
            "mttr": crate::kpi::duration(&figures["mttr_seconds"]),
            "response": crate::kpi::percent(&figures["sla_response_compliance"]),
            "resolve": crate::kpi::percent(&figures["sla_resolve_compliance"]),
            "fcr": crate::kpi::percent(&figures["fcr_rate"]),
            "auto": crate::kpi::percent(&figures["auto_remediation_rate"]),
            "targets": targets,
        })
    };
    let mut rows = vec![row(
        "All",
        &current["overall"],
        &previous["overall"],
        String::new(),
    )];
    for priority in crate::alert::Priority::ALL {
        let target = config.sla_for(priority);
        let name = priority.as_str();
        rows.push(row(
            name,
            &current["priorities"][name],
            &previous["priorities"][name],
            format!(
                "respond {} min, resolve {} h",
                target.respond.num_minutes(),
                target.resolve.num_hours()
            ),
        ));
    }
    rows
}

/// The incidents that missed their SLA, longest first.
fn worst(created: &[Incident], now: DateTime<Utc>) -> Vec<Value> {
    let mut missed: Vec<(&Incident, TimeDelta)> = created
        .iter()
        .filter(|incident| incident.sla_breached(now))
        .map(|incident| {
            (
                incident,
                incident.resolved_at.unwrap_or(now) - incident.created_at,
            )
        })
        .collect();
    missed.sort_by_key(|(_, open_for)| std::cmp::Reverse(*open_for));
    missed
        .iter()
        .take(5)
        .map(|(incident, open_for)| {
            let verdict = match incident.resolved_at {
                Some(_) => format!("resolved after {:.1} h", open_for.num_minutes() as f64 / 60.0),
                None => format!("still open after {:.1} h", open_for.num_minutes() as f64 / 60.0),
            };
            json!({ "id": incident.id, "priority": incident.priority.as_str(), "title": incident.title, "verdict": verdict })
        })
        .collect()
}

/// Incidents fixed by runbooks, and the hours people would have spent on them at the
/// week's human MTTR.
pub(crate) fn savings(created: &[Incident]) -> Value {
    let remediated = created.iter().filter(|i| i.remediated).count();
    let human: Vec<f64> = created
        .iter()
        .filter(|i| !i.remediated)
        .filter_map(|i| {
            i.resolved_at
                .map(|at| (at - i.created_at).num_seconds() as f64)
        })
        .collect();
    let hours = if human.is_empty() {
        0.0
    } else {
        remediated as f64 * human.iter().sum::<f64>() / human.len() as f64 / 3600.0
    };
    json!({ "remediated": remediated, "hours": format!("{hours:.1}") })
}
