//! The monthly service review ("points mensuels"): the month's SLA compliance per
//! priority and per week, MTTA/MTTR against the months before, volume, FCR, what the
//! runbooks saved, CSAT, drills, the noisiest alerts and who carried the pages. One
//! model, rendered as an HTML email or page and as CSV, with the figures of
//! `GET /api/v1/kpi` for the same window.

use super::{ReportError, queue, read, rows, savings};
use crate::clock::{Clock, rfc3339};
use crate::config::Config;
use crate::kpi;
use crate::store::{Store, StoreError};
use crate::templates::Templates;
use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The outbox step of a monthly review: `monthly:2026-11`.
pub const MONTHLY: &str = "monthly:";
/// Months shown before this one in the trend.
const TREND_MONTHS: u32 = 3;
/// An incident resolved by its alerts this fast, unacknowledged, counts as noise.
const SELF_HEAL: TimeDelta = TimeDelta::minutes(10);

/// `[from, to)` of a month written `YYYY-MM`, in UTC.
pub fn bounds(month: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), ReportError> {
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .ok()
        .filter(|_| month.len() == 7)
        .ok_or_else(|| ReportError::NotAMonth(month.to_string()))?;
    let out_of_range = || ReportError::OutOfRange(month.to_string());
    let next = first
        .checked_add_months(Months::new(1))
        .ok_or_else(out_of_range)?;
    let midnight = |day: NaiveDate| day.and_hms_opt(0, 0, 0).map(|at| at.and_utc());
    midnight(first).zip(midnight(next)).ok_or_else(out_of_range)
}

/// Queues the review of the last complete month to every recipient.
pub async fn queue_monthly(
    store: &dyn Store,
    clock: &dyn Clock,
    to: &[String],
    outbox: &Notify,
) -> Result<(), StoreError> {
    let step = format!("{MONTHLY}{}", last_month(clock.now()));
    queue(store, clock, to, outbox, step).await
}

/// The last complete month before `now`, as `YYYY-MM`.
pub fn last_month(now: DateTime<Utc>) -> String {
    let today = now.date_naive();
    today
        .with_day(1)
        .and_then(|first| first.checked_sub_months(Months::new(1)))
        .unwrap_or(today)
        .format("%Y-%m")
        .to_string()
}

/// The review's figures for `month`.
pub async fn review(
    store: &dyn Store,
    config: &Config,
    month: &str,
    now: DateTime<Utc>,
) -> Result<Value, ReportError> {
    let (from, to) = bounds(month)?;
    let current = read::kpis(store, from, to, now).await?;
    // The months before, oldest first; the last of them is the "previous" of the table.
    let mut before = Vec::new();
    for back in (1..=TREND_MONTHS).rev() {
        let start = from.checked_sub_months(Months::new(back)).unwrap_or(from);
        let end = start.checked_add_months(Months::new(1)).unwrap_or(from);
        before.push((start, read::kpis(store, start, end, now).await?));
    }
    let mut trend: Vec<Value> = before
        .iter()
        .map(|(start, figures)| trend_point(*start, figures))
        .collect();
    trend.push(trend_point(from, &current));
    let previous = before.last().map_or(&Value::Null, |(_, figures)| figures);
    let mut weeks = Vec::new();
    let mut start = from;
    while start < to {
        let end = (start + TimeDelta::days(7)).min(to);
        weeks.push(week(start, end, &read::kpis(store, start, end, now).await?));
        start = end;
    }
    let mut created = read::created_between(store, from, to).await?;
    created.retain(|incident| !incident.drill);
    let noise = crate::noise::analyse(store, from, to, SELF_HEAL, team_time_zone(config)).await?;
    Ok(json!({
        "month": month,
        "from": rfc3339(from),
        "to": rfc3339(to),
        "kpi": current,
        "rows": rows(config, &current, previous),
        "weeks": weeks,
        "trend": trend,
        "savings": savings(&created),
        "noise": noise["top"],
        "pages": noise["pages"]["per_person"],
    }))
}

/// Night pages are counted in the time zone of the on-call schedules (the first by
/// name), else UTC.
pub fn team_time_zone(config: &Config) -> chrono_tz::Tz {
    config
        .directory
        .schedules
        .values()
        .next()
        .map_or(chrono_tz::Tz::UTC, |schedule| schedule.time_zone)
}

fn trend_point(start: DateTime<Utc>, figures: &Value) -> Value {
    let overall = &figures["overall"];
    json!({
        "month": start.format("%Y-%m").to_string(),
        "incidents": overall["incidents"],
        "mtta_seconds": overall["mtta_seconds"],
        "mttr_seconds": overall["mttr_seconds"],
        "mtta": kpi::duration(&overall["mtta_seconds"]),
        "mttr": kpi::duration(&overall["mttr_seconds"]),
    })
}

fn week(start: DateTime<Utc>, end: DateTime<Utc>, figures: &Value) -> Value {
    let compliance = |figures: &Value| {
        json!({
            "incidents": figures["incidents"],
            "sla_response_compliance": figures["sla_response_compliance"],
            "sla_resolve_compliance": figures["sla_resolve_compliance"],
            "response": kpi::percent(&figures["sla_response_compliance"]),
            "resolve": kpi::percent(&figures["sla_resolve_compliance"]),
        })
    };
    let priorities: serde_json::Map<String, Value> = crate::alert::Priority::ALL
        .iter()
        .map(|p| {
            (
                p.as_str().to_string(),
                compliance(&figures["priorities"][p.as_str()]),
            )
        })
        .collect();
    json!({
        "label": format!("{} to {}", start.format("%m-%d"), (end - TimeDelta::days(1)).format("%m-%d")),
        "overall": compliance(&figures["overall"]),
        "priorities": priorities,
    })
}

/// Subject and HTML body of the emailed review.
pub async fn email(
    store: &dyn Store,
    templates: &Templates,
    config: &Config,
    month: &str,
    now: DateTime<Utc>,
) -> Result<(String, String), ReportError> {
    let model = review(store, config, month, now).await?;
    Ok((
        format!("[Tocsin] Monthly review {month}"),
        html(templates, &model)?,
    ))
}

/// The review as HTML.
pub fn html(templates: &Templates, model: &Value) -> Result<String, ReportError> {
    Ok(templates.render("monthly.html", model)?)
}

/// The review as CSV, one figure per line: section, name, metric, value. The `sla`
/// section holds every figure of `GET /api/v1/kpi` for the month.
pub fn csv(model: &Value) -> Result<String, ReportError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut write = |section: &str, name: &str, metric: &str, value: &Value| {
        let value = match value {
            Value::Null => String::new(),
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        out.write_record([section, name, metric, &value])
            .map_err(|error| ReportError::Csv(error.to_string()))
    };
    write("section", "name", "metric", &json!("value"))?;
    let kpi = &model["kpi"];
    let mut groups = vec![("overall".to_string(), &kpi["overall"])];
    for priority in crate::alert::Priority::ALL {
        groups.push((
            priority.as_str().to_string(),
            &kpi["priorities"][priority.as_str()],
        ));
    }
    for (name, figures) in groups {
        for (metric, value) in figures.as_object().into_iter().flatten() {
            write("sla", &name, metric, value)?;
        }
    }
    for week in model["weeks"].as_array().into_iter().flatten() {
        let label = week["label"].as_str().unwrap_or_default();
        for metric in [
            "incidents",
            "sla_response_compliance",
            "sla_resolve_compliance",
        ] {
            write("week", label, metric, &week["overall"][metric])?;
            for priority in crate::alert::Priority::ALL {
                let name = format!("{label} {}", priority.as_str());
                write(
                    "week",
                    &name,
                    metric,
                    &week["priorities"][priority.as_str()][metric],
                )?;
            }
        }
    }
    for point in model["trend"].as_array().into_iter().flatten() {
        let month = point["month"].as_str().unwrap_or_default();
        for metric in ["incidents", "mtta_seconds", "mttr_seconds"] {
            write("trend", month, metric, &point[metric])?;
        }
    }
    for metric in ["remediated", "hours"] {
        write("savings", "runbooks", metric, &model["savings"][metric])?;
    }
    for metric in ["count", "passed", "failed", "undelivered", "mtta_seconds"] {
        write("drills", "all", metric, &kpi["drills"][metric])?;
    }
    for (rank, entry) in model["noise"].as_array().into_iter().flatten().enumerate() {
        let name = format!(
            "{} {}/{}",
            rank + 1,
            entry["source"].as_str().unwrap_or_default(),
            entry["check"].as_str().unwrap_or_default()
        );
        for metric in ["alerts", "incidents", "self_healed", "suggestion"] {
            write("noise", &name, metric, &entry[metric])?;
        }
    }
    for person in model["pages"].as_array().into_iter().flatten() {
        let user = person["user"].as_str().unwrap_or_default();
        for metric in ["pages", "night_pages"] {
            write("pages", user, metric, &person[metric])?;
        }
    }
    let bytes = out
        .into_inner()
        .map_err(|error| ReportError::Csv(error.to_string()))?;
    String::from_utf8(bytes).map_err(|error| ReportError::Csv(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_runs_from_its_first_midnight_to_the_next_months() {
        let (from, to) = bounds("2026-12").unwrap();
        assert_eq!(rfc3339(from), "2026-12-01T00:00:00.000Z");
        assert_eq!(rfc3339(to), "2027-01-01T00:00:00.000Z");
        let new_year = DateTime::parse_from_rfc3339("2027-01-03T10:00:00Z").unwrap();
        assert_eq!(last_month(new_year.with_timezone(&Utc)), "2026-12");
        for bad in ["2026-13", "2026-1", "november", "2026-11-05"] {
            assert!(
                bounds(bad).unwrap_err().to_string().contains("YYYY-MM"),
                "{bad}"
            );
        }
    }
}
