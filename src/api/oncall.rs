//! `GET /api/v1/oncall`: who is on call now and next, per schedule, and whom each
//! policy's tiers would page now.

use super::AppState;
use crate::clock::rfc3339;
use crate::config::Config;
use crate::oncall::schedule::Shift;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The handler.
pub async fn oncall(State(state): State<AppState>) -> Json<Value> {
    Json(report(&state.config.load(), state.clock.now()))
}

/// The report, also printed by `tocsin oncall`.
pub fn report(config: &Config, now: DateTime<Utc>) -> Value {
    let directory = &config.directory;
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
