//! Noise analysis: which alerts wear the on-call team down. Per source and check over
//! a window: alert episodes, incidents opened, incidents that healed themselves
//! (resolved by their alerts within N minutes, nobody acknowledging), flapping episodes
//! and how long they flapped; and
//! who was paged, at which hour. The top ten come with a suggested fix.

use crate::clock::rfc3339;
use crate::incident::{Incident, TimelineKind};
use crate::store::{AlertVolume, IncidentQuery, Store, StoreError};
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Entries in the `top` list.
const TOP: usize = 10;
/// Pages between 22:00 and 07:00, in the team's time zone, count as night pages.
const NIGHT: [u32; 9] = [22, 23, 0, 1, 2, 3, 4, 5, 6];

/// One source and check.
#[derive(Debug, Default)]
struct Figures {
    alerts: i64,
    notifications: i64,
    flapping: i64,
    flapping_seconds: i64,
    incidents: i64,
    self_healed: i64,
    remediated: i64,
}

/// The noise report for `[from, to)`.
pub async fn analyse(
    store: &dyn Store,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    self_heal: TimeDelta,
    time_zone: Tz,
) -> Result<Value, StoreError> {
    let mut checks: BTreeMap<(String, String), Figures> = BTreeMap::new();
    for volume in store.alert_volume(from, to).await? {
        let AlertVolume {
            source,
            check,
            alerts,
            notifications,
            flapping,
            flapping_seconds,
        } = volume;
        let figures = checks.entry((source, check)).or_default();
        figures.alerts = alerts;
        figures.notifications = notifications;
        figures.flapping = flapping;
        figures.flapping_seconds = flapping_seconds;
    }
    let created = store
        .incidents(&IncidentQuery {
            created_from: Some(from),
            created_to: Some(to),
            limit: i64::MAX,
            ..IncidentQuery::default()
        })
        .await?;
    for incident in created {
        if incident.drill {
            continue;
        }
        let healed = self_healed(store, &incident, self_heal).await?;
        let figures = checks
            .entry((incident.source.clone(), incident.check.clone()))
            .or_default();
        figures.incidents += 1;
        figures.self_healed += i64::from(healed);
        figures.remediated += i64::from(incident.remediated);
    }
    let mut ranked: Vec<((String, String), Figures)> = checks.into_iter().collect();
    ranked.sort_by(|(a_key, a), (b_key, b)| {
        (b.alerts + b.self_healed, b.notifications)
            .cmp(&(a.alerts + a.self_healed, a.notifications))
            .then_with(|| a_key.cmp(b_key))
    });
    let minutes = self_heal.num_minutes();
    let entries: Vec<Value> = ranked
        .iter()
        .map(|((source, check), figures)| entry(source, check, figures, minutes))
        .collect();
    let top: Vec<Value> = entries.iter().take(TOP).cloned().collect();
    Ok(json!({
        "from": rfc3339(from),
        "to": rfc3339(to),
        "self_heal_minutes": minutes,
        "top": top,
        "checks": entries,
        "pages": pages(&store.sent_pages(from, to).await?, time_zone),
    }))
}

/// Resolved by its own alerts within `self_heal`, nobody having acknowledged it or
/// run anything: the page woke someone for nothing.
async fn self_healed(
    store: &dyn Store,
    incident: &Incident,
    self_heal: TimeDelta,
) -> Result<bool, StoreError> {
    let quick = incident
        .resolved_at
        .is_some_and(|at| at - incident.created_at <= self_heal);
    if !quick || incident.acknowledged_at.is_some() || incident.remediated {
        return Ok(false);
    }
    let timeline = store.timeline(incident.id).await?;
    Ok(timeline
        .iter()
        .any(|entry| entry.kind == TimelineKind::Resolved && entry.actor == "tocsin"))
}

fn entry(source: &str, check: &str, figures: &Figures, minutes: i64) -> Value {
    json!({
        "source": source,
        "check": check,
        "alerts": figures.alerts,
        "notifications": figures.notifications,
        "flapping": figures.flapping,
        "flapping_seconds": figures.flapping_seconds,
        "incidents": figures.incidents,
        "self_healed": figures.self_healed,
        "remediated": figures.remediated,
        "suggestion": suggestion(figures, minutes),
    })
}

/// The first fix that fits, from the cheapest.
fn suggestion(figures: &Figures, minutes: i64) -> String {
    if figures.flapping > 0 {
        return "it flaps: add hysteresis or a longer `for` duration at the source".into();
    }
    if figures.incidents > 0 && figures.self_healed * 2 >= figures.incidents {
        return format!(
            "{} of {} incidents cleared on their own within {minutes} min: raise the threshold or delay the alert",
            figures.self_healed, figures.incidents
        );
    }
    if figures.incidents == 0 && figures.notifications > figures.alerts * 5 {
        return "repeats without ever opening an incident: add a silence window or lower how often the source re-sends".into();
    }
    if figures.incidents > 1 && figures.remediated == 0 {
        return "a person handled it every time: automate it with a runbook".into();
    }
    if figures.alerts > figures.incidents * 3 {
        return "many alerts per incident: group them with a rule's group_by".into();
    }
    "nothing to change".into()
}

/// Pages per person (all and at night) and per hour of day, in `time_zone`.
fn pages(sent: &[(String, DateTime<Utc>)], time_zone: Tz) -> Value {
    let mut by_hour = [0_u32; 24];
    let mut people: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for (user, at) in sent {
        let hour = at.with_timezone(&time_zone).hour();
        by_hour[hour as usize] += 1;
        let counts = people.entry(user).or_default();
        counts.0 += 1;
        counts.1 += u32::from(NIGHT.contains(&hour));
    }
    let per_person: Vec<Value> = people
        .into_iter()
        .map(|(user, (all, night))| json!({ "user": user, "pages": all, "night_pages": night }))
        .collect();
    json!({
        "total": sent.len(),
        "per_person": per_person,
        "time_zone": time_zone.name(),
        "by_hour": by_hour,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(alerts: i64, incidents: i64, self_healed: i64) -> Figures {
        Figures {
            alerts,
            notifications: alerts,
            incidents,
            self_healed,
            ..Figures::default()
        }
    }

    #[test]
    fn the_suggestion_names_the_cheapest_fix_that_fits() {
        let flapping = Figures {
            flapping: 1,
            ..figures(10, 2, 2)
        };
        assert!(suggestion(&flapping, 10).starts_with("it flaps"));
        assert!(suggestion(&figures(6, 6, 4), 10).starts_with("4 of 6 incidents cleared"));
        assert!(suggestion(&figures(6, 6, 0), 10).contains("runbook"));
        assert!(suggestion(&figures(12, 2, 0), 10).contains("runbook"));
        assert!(suggestion(&figures(12, 1, 0), 10).contains("group_by"));
        assert_eq!(suggestion(&figures(1, 1, 0), 10), "nothing to change");
    }

    #[test]
    fn night_pages_are_those_from_22_to_7() {
        let at = |hour: u32| {
            DateTime::parse_from_rfc3339(&format!("2026-11-02T{hour:02}:30:00Z"))
                .map(|at| at.with_timezone(&Utc))
                .unwrap()
        };
        let sent = vec![
            ("ann".to_string(), at(3)),
            ("ann".to_string(), at(14)),
            ("bob".to_string(), at(22)),
            ("ann".to_string(), at(6)),
            ("bob".to_string(), at(7)),
        ];
        let report = pages(&sent, Tz::UTC);
        assert_eq!(report["total"], 5);
        assert_eq!(
            report["per_person"][0],
            json!({ "user": "ann", "pages": 3, "night_pages": 2 })
        );
        assert_eq!(
            report["per_person"][1],
            json!({ "user": "bob", "pages": 2, "night_pages": 1 })
        );
        assert_eq!(report["by_hour"][3], 1);
        let paris = pages(&sent, chrono_tz::Europe::Paris);
        assert_eq!(
            paris["per_person"][0]["night_pages"], 1,
            "06:30 UTC is 07:30 in Paris, morning already: {paris}"
        );
    }
}
