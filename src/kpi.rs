//! KPIs over a window, computed at request time from the incidents created in it:
//! volume, MTTA and MTTR (mean, median, p90), SLA compliance, first-contact
//! resolution, automated remediation and escalation rates; plus the backlog of open
//! incidents by age and the busiest hours. Pure.

use crate::alert::Priority;
use crate::clock::rfc3339;
use crate::incident::{Incident, TimelineEntry};
use chrono::{DateTime, Timelike, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;

/// What the KPIs of a window are computed from; the caller reads it
/// (`report::read::kpis`).
#[derive(Debug, Default)]
pub struct Inputs {
    /// The incidents created in the window, drills included.
    pub created: Vec<Incident>,
    /// The incidents not resolved now, drills included.
    pub open: Vec<Incident>,
    /// Per drill created in the window, its timeline (for the channels that failed).
    pub drill_timelines: HashMap<i64, Vec<TimelineEntry>>,
    /// The CSAT answers (1 to 5) given in the window.
    pub csat_scores: Vec<i64>,
}

/// The KPI report of `[from, to)` as seen at `now`.
pub fn compute(
    inputs: Inputs,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Value {
    // Drills test the paging chain, not the service: they are kept out of the SLA
    // figures and reported on their own.
    let (drills, created): (Vec<Incident>, Vec<Incident>) = inputs
        .created
        .into_iter()
        .partition(|incident| incident.drill);
    let mut open = inputs.open;
    open.retain(|incident| !incident.drill);
    let mut report = report(&created, &open, from, to, now);
    let undelivered: Vec<Vec<String>> = drills
        .iter()
        .map(|drill| {
            inputs
                .drill_timelines
                .get(&drill.id)
                .map_or_else(Vec::new, |timeline| undelivered_channels(timeline))
        })
        .collect();
    report["drills"] = drill_figures(&drills, &undelivered);
    let scores = inputs.csat_scores;
    let happy = scores.iter().filter(|score| **score >= 4).count();
    report["overall"]["csat"] = fraction(happy, scores.len());
    report["overall"]["csat_answers"] = json!(scores.len());
    report
}

/// The KPI JSON of spec §6 for incidents created in `[from, to)`, with `open` the
/// incidents not resolved now (for the backlog).
pub fn report(
    created: &[Incident],
    open: &[Incident],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Value {
    let priorities: serde_json::Map<String, Value> = Priority::ALL
        .iter()
        .map(|priority| {
            let subset: Vec<&Incident> =
                created.iter().filter(|i| i.priority == *priority).collect();
            (priority.as_str().to_string(), figures(&subset, now))
        })
        .collect();
    let mut hours = [0_u32; 24];
    for incident in created {
        hours[incident.created_at.hour() as usize] += 1;
    }
    let mut busiest: Vec<(usize, u32)> = hours
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, n)| *n > 0)
        .collect();
    busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    json!({
        "from": rfc3339(from),
        "to": rfc3339(to),
        "overall": figures(&created.iter().collect::<Vec<_>>(), now),
        "priorities": priorities,
        "backlog": backlog(open, now),
        "busiest_hours": busiest.iter().take(5).map(|(hour, count)| json!({ "hour_utc": hour, "incidents": count })).collect::<Vec<_>>(),
    })
}

/// The figures of one set of incidents.
pub fn figures(incidents: &[&Incident], now: DateTime<Utc>) -> Value {
    let mut ack: Vec<f64> = incidents
        .iter()
        .filter_map(|i| i.acknowledged_at.map(|at| seconds(i.created_at, at)))
        .collect();
    let mut resolve: Vec<f64> = incidents
        .iter()
        .filter_map(|i| i.resolved_at.map(|at| seconds(i.created_at, at)))
        .collect();
    let resolved: Vec<&&Incident> = incidents
        .iter()
        .filter(|i| i.resolved_at.is_some())
        .collect();
    let (response_met, response_breached) = compliance(
        incidents,
        now,
        |i| i.acknowledged_at.or(i.resolved_at),
        |i| i.response_due,
    );
    let (resolve_met, resolve_breached) =
        compliance(incidents, now, |i| i.resolved_at, |i| i.resolve_due);
    let first_contact = resolved
        .iter()
        .filter(|i| !i.escalated || i.remediated)
        .count();
    let remediated = resolved.iter().filter(|i| i.remediated).count();
    let escalated = incidents.iter().filter(|i| i.escalated).count();
    json!({
        "incidents": incidents.len(),
        "resolved": resolved.len(),
        "mtta_seconds": mean(&ack),
        "mtta_median_seconds": percentile(&mut ack, 0.5),
        "mtta_p90_seconds": percentile(&mut ack, 0.9),
        "mttr_seconds": mean(&resolve),
        "mttr_median_seconds": percentile(&mut resolve, 0.5),
        "mttr_p90_seconds": percentile(&mut resolve, 0.9),
        "sla_response_met": response_met,
        "sla_response_breached": response_breached,
        "sla_response_compliance": fraction(response_met, response_met + response_breached),
        "sla_resolve_met": resolve_met,
        "sla_resolve_breached": resolve_breached,
        "sla_resolve_compliance": fraction(resolve_met, resolve_met + resolve_breached),
        "fcr_rate": fraction(first_contact, resolved.len()),
        "auto_remediation_rate": fraction(remediated, resolved.len()),
        "escalation_rate": fraction(escalated, incidents.len()),
    })
}

/// (met, breached): met = done by its deadline; breached = done late, or not done
/// and past it; an incident still inside its budget counts in neither.
fn compliance(
    incidents: &[&Incident],
    now: DateTime<Utc>,
    done: impl Fn(&Incident) -> Option<DateTime<Utc>>,
    due: impl Fn(&Incident) -> DateTime<Utc>,
) -> (usize, usize) {
    let mut met = 0;
    let mut breached = 0;
    for incident in incidents {
        match done(incident) {
            Some(at) if at <= due(incident) => met += 1,
            Some(_) => breached += 1,
            None if now > due(incident) && !incident.on_hold => breached += 1,
            None => {}
        }
    }
    (met, breached)
}

/// The channels on which a message of the incident finally failed: a drill's way of
/// finding a wrong phone number or a dead SMS gateway before a real incident does.
fn undelivered_channels(timeline: &[TimelineEntry]) -> Vec<String> {
    let mut channels: Vec<String> = timeline
        .iter()
        .filter_map(|entry| entry.kind.failed_delivery())
        .map(|message| message.channel.clone())
        .collect();
    channels.sort();
    channels.dedup();
    channels
}

/// Drills run, passed (acknowledged), failed (ended unacknowledged), their MTTA,
/// and each drill's outcome with the channels that did not deliver.
fn drill_figures(drills: &[Incident], undelivered: &[Vec<String>]) -> Value {
    let ack_seconds: Vec<f64> = drills
        .iter()
        .filter_map(|drill| {
            drill
                .acknowledged_at
                .map(|at| seconds(drill.created_at, at))
        })
        .collect();
    let failed = drills
        .iter()
        .filter(|drill| drill.acknowledged_at.is_none() && drill.resolved_at.is_some())
        .count();
    let runs: Vec<Value> = drills
        .iter()
        .zip(undelivered)
        .map(|(drill, undelivered)| {
            let outcome = match (drill.acknowledged_at, drill.resolved_at) {
                (Some(_), _) => "passed",
                (None, Some(_)) => "failed",
                (None, None) => "running",
            };
            json!({
                "incident_id": drill.id,
                "drill": drill.check,
                "started_at": rfc3339(drill.created_at),
                "outcome": outcome,
                "ack_seconds": drill.acknowledged_at.map(|at| seconds(drill.created_at, at)),
                "undelivered_channels": undelivered,
            })
        })
        .collect();
    json!({
        "count": drills.len(),
        "passed": ack_seconds.len(),
        "failed": failed,
        "mtta_seconds": mean(&ack_seconds),
        "undelivered": undelivered.iter().filter(|channels| !channels.is_empty()).count(),
        "runs": runs,
    })
}

/// A duration in seconds as people read it: "12 min", "3.5 h", or "–" for none.
pub fn duration(value: &Value) -> String {
    match value.as_f64() {
        None => "–".to_string(),
        Some(seconds) if seconds < 3600.0 => format!("{:.0} min", seconds / 60.0),
        Some(seconds) => format!("{:.1} h", seconds / 3600.0),
    }
}

/// A fraction as a whole percentage, or "–" for none.
pub fn percent(value: &Value) -> String {
    value
        .as_f64()
        .map_or("–".to_string(), |f| format!("{:.0} %", f * 100.0))
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

fn mean(values: &[f64]) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    json!(values.iter().sum::<f64>() / values.len() as f64)
}

/// Nearest-rank percentile.
fn percentile(values: &mut [f64], rank: f64) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    values.sort_by(f64::total_cmp);
    let index = ((rank * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
    json!(values[index])
}

fn fraction(part: usize, whole: usize) -> Value {
    if whole == 0 {
        Value::Null
    } else {
        json!(part as f64 / whole as f64)
    }
}

fn backlog(open: &[Incident], now: DateTime<Utc>) -> Value {
    let buckets = [
        ("under_1h", 3600),
        ("1h_to_4h", 4 * 3600),
        ("4h_to_24h", 24 * 3600),
        ("1d_to_3d", 72 * 3600),
        ("over_3d", i64::MAX),
    ];
    let mut by_age: Vec<(&str, usize)> = buckets.iter().map(|(name, _)| (*name, 0)).collect();
    for incident in open {
        let age = (now - incident.created_at).num_seconds();
        let index = buckets
            .iter()
            .position(|(_, limit)| age < *limit)
            .unwrap_or(buckets.len() - 1);
        by_age[index].1 += 1;
    }
    let by_priority: serde_json::Map<String, Value> = Priority::ALL
        .iter()
        .map(|p| {
            (
                p.as_str().to_string(),
                json!(open.iter().filter(|i| i.priority == *p).count()),
            )
        })
        .collect();
    json!({
        "open": open.len(),
        "by_age": by_age.into_iter().map(|(name, count)| (name.to_string(), json!(count))).collect::<serde_json::Map<_, _>>(),
        "by_priority": by_priority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, AlertAction, AlertStatus, Labels, Severity};
    use crate::rules::Classification;
    use crate::sla::SlaTarget;
    use chrono::TimeDelta;

    fn incident(
        created: DateTime<Utc>,
        ack_after: Option<i64>,
        resolve_after: Option<i64>,
    ) -> Incident {
        let alert = Alert {
            source: "generic".into(),
            dedup_key: "k".into(),
            resource: "r".into(),
            check: "c".into(),
            severity: Severity::Critical,
            status: AlertStatus::Firing,
            action: AlertAction::Report,
            summary: "s".into(),
            details: Value::Null,
            labels: Labels::new(),
            links: vec![],
            occurred_at: None,
        };
        let class = Classification {
            priority: Priority::P1,
            rule: None,
            escalation_policy: None,
            runbooks: vec![],
            group_key: None,
        };
        let sla = SlaTarget {
            respond: TimeDelta::minutes(15),
            resolve: TimeDelta::hours(1),
            escalate_on_breach: false,
        };
        let mut incident = Incident::open(1, &alert, &class, sla, created);
        incident.acknowledged_at = ack_after.map(|m| created + TimeDelta::minutes(m));
        incident.resolved_at = resolve_after.map(|m| created + TimeDelta::minutes(m));
        incident
    }

    #[test]
    fn figures_by_hand() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let now = t0 + TimeDelta::hours(3);
        let incidents = [
            incident(t0, Some(10), Some(50)),                  // met, met
            incident(t0, Some(20), Some(70)),                  // breached, breached
            incident(t0, None, None), // breached (no ack after 3 h), breached
            incident(now - TimeDelta::minutes(5), None, None), // inside both budgets: neither
        ];
        let refs: Vec<&Incident> = incidents.iter().collect();
        let figures = figures(&refs, now);
        assert_eq!(figures["incidents"], 4);
        assert_eq!(figures["mtta_seconds"], 900.0);
        assert_eq!(figures["mttr_seconds"], 3600.0);
        assert_eq!(figures["mttr_median_seconds"], 3000.0);
        assert_eq!(
            (
                figures["sla_response_met"].as_u64(),
                figures["sla_response_breached"].as_u64()
            ),
            (Some(1), Some(2))
        );
        assert!((figures["sla_response_compliance"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(figures["fcr_rate"], 1.0);
        let empty = super::figures(&[], now);
        assert_eq!(empty["mtta_seconds"], Value::Null);
        assert_eq!(empty["sla_resolve_compliance"], Value::Null);
    }
}
