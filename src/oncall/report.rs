//! Who is on call now and next, per schedule, and whom each policy's tiers would page
//! now: `GET /api/v1/oncall`, the dashboard and `tocsin oncall` show it.

use super::Directory;
use super::schedule::Shift;
use crate::clock::rfc3339;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The report, also printed by `tocsin oncall`.
pub fn report(directory: &Directory, now: DateTime<Utc>) -> Value {
    let shift = |shift: Shift| {
        let name = directory
            .users
            .get(&shift.user)
            .map_or(shift.user.clone(), |u| u.name.clone());
        json!({ "user": shift.user, "name": name, "start": rfc3339(shift.start), "end": rfc3339(shift.end) })
    };
    let schedules: Vec<Value> = directory
        .schedules
        .values()
        .map(|schedule| {
            json!({
                "name": schedule.name,
                "time_zone": schedule.time_zone.name(),
                "now": shift(directory.on_call(schedule, now)),
                "next": shift(directory.next(schedule, now)),
            })
        })
        .collect();
    let policies: Vec<Value> = directory
        .policies
        .values()
        .map(|policy| {
            let tiers: Vec<Value> = policy
                .tiers
                .iter()
                .map(|tier| {
                    let (users, nobody) = directory.resolve(tier, now);
                    json!({
                        "level": tier.level,
                        "after_seconds": tier.after.num_seconds(),
                        "users": users.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
                        "nobody_for": nobody,
                    })
                })
                .collect();
            json!({ "name": policy.name, "repeat": policy.repeat, "tiers": tiers })
        })
        .collect();
    json!({ "at": rfc3339(now), "schedules": schedules, "policies": policies })
}
/// Who each policy pages first, read from a [`report`]: `(policy, level, users)`.
/// Without schedules, this is who "on call" means.
pub fn first_tiers(report: &Value) -> Vec<(String, String, Vec<String>)> {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    report["policies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|policy| {
            let tier = policy["tiers"].get(0)?;
            let users = tier["users"].as_array()?.iter().map(text).collect();
            Some((text(&policy["name"]), text(&tier["level"]), users))
        })
        .collect()
}
