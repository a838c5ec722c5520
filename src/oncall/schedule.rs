//! Rotations: who is on call at an instant. Hand-offs are wall-clock times in the
//! schedule's IANA time zone, so a 09:00 hand-off stays at 09:00 across daylight-saving
//! changes. Pure.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// A temporary replacement of the rotation.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub user: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// A validated `[[schedules]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub name: String,
    pub time_zone: Tz,
    /// Length of one shift in whole days (a week is 7).
    pub every_days: i64,
    pub handoff_time: NaiveTime,
    /// The hand-off weekday, for weekly rotations written `"Mon 09:00"`.
    pub handoff_day: Option<Weekday>,
    pub users: Vec<String>,
    pub overrides: Vec<Override>,
    /// The first shift starts on this local date (the first user's turn).
    pub anchor: NaiveDate,
}

/// One shift: who, and from when until when.
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    pub user: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Shift {
    /// This shift as it goes on after `at`: after an override that cut into it, the
    /// rotation's shift resumes when the override ends, not when it began.
    pub fn resumed_at(self, at: DateTime<Utc>) -> Self {
        Self {
            start: self.start.max(at),
            ..self
        }
    }
}

/// Why a schedule was refused: the value as written and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("time zone {0:?} is not an IANA name such as \"Europe/Paris\"")]
    TimeZone(String),
    #[error("rotation.every must be whole days, such as \"1d\" or \"1w\"")]
    NotWholeDays,
    #[error("hand-off {handoff:?}: {day:?} is not a weekday such as Mon")]
    HandoffDay { handoff: String, day: String },
    #[error("hand-off {0:?}: write \"Mon 09:00\" (weekly) or \"09:00\" (daily)")]
    HandoffTime(String),
    #[error("rotation.users is empty: name at least one user")]
    NoUsers,
}

/// Parses `"Mon 09:00"` or `"09:00"`.
pub fn parse_handoff(text: &str) -> Result<(Option<Weekday>, NaiveTime), ScheduleError> {
    let (day, time) = match text.trim().split_once(' ') {
        Some((day, time)) => (
            Some(
                day.parse::<Weekday>()
                    .map_err(|_| ScheduleError::HandoffDay {
                        handoff: text.to_string(),
                        day: day.to_string(),
                    })?,
            ),
            time,
        ),
        None => (None, text.trim()),
    };
    let time = NaiveTime::parse_from_str(time, "%H:%M")
        .map_err(|_| ScheduleError::HandoffTime(text.to_string()))?;
    Ok((day, time))
}

/// 2024-01-01 was a Monday: rotations count their shifts from the first hand-off day
/// on or after it unless the schedule names its own start.
fn default_anchor(day: Option<Weekday>) -> NaiveDate {
    let mut anchor = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
    if let Some(day) = day {
        while anchor.weekday() != day {
            anchor = anchor.succ_opt().unwrap_or(anchor);
        }
    }
    anchor
}

impl Schedule {
    /// Builds a schedule; `every` must be whole days.
    pub fn new(
        name: &str,
        time_zone: &str,
        every: TimeDelta,
        handoff: &str,
        users: Vec<String>,
        start: Option<NaiveDate>,
        overrides: Vec<Override>,
    ) -> Result<Self, ScheduleError> {
        let time_zone: Tz = time_zone
            .parse()
            .map_err(|_| ScheduleError::TimeZone(time_zone.to_string()))?;
        if every.num_seconds() <= 0 || every.num_seconds() % 86_400 != 0 {
            return Err(ScheduleError::NotWholeDays);
        }
        let (handoff_day, handoff_time) = parse_handoff(handoff)?;
        if users.is_empty() {
            return Err(ScheduleError::NoUsers);
        }
        Ok(Self {
            name: name.to_string(),
            time_zone,
            every_days: every.num_days(),
            handoff_time,
            handoff_day,
            users,
            overrides,
            anchor: start.unwrap_or_else(|| default_anchor(handoff_day)),
        })
    }

    /// The UTC instant of the hand-off on local date `date`. In a DST gap the
    /// hand-off happens at the first valid instant after it; in an overlap, the first.
    fn handoff_on(&self, date: NaiveDate) -> DateTime<Utc> {
        let local = date.and_time(self.handoff_time);
        let resolved = self
            .time_zone
            .from_local_datetime(&local)
            .earliest()
            .or_else(|| {
                self.time_zone
                    .from_local_datetime(&(local + TimeDelta::hours(1)))
                    .earliest()
            });
        resolved.map_or_else(|| local.and_utc(), |at| at.with_timezone(&Utc))
    }

    /// Index of the shift that contains `at` and the local date it started on.
    fn shift_at(&self, at: DateTime<Utc>) -> (i64, NaiveDate) {
        let mut date = at.with_timezone(&self.time_zone).date_naive();
        if self.handoff_on(date) > at {
            date = date.pred_opt().unwrap_or(date);
        }
        let days = (date - self.anchor).num_days();
        let index = days.div_euclid(self.every_days);
        let start = self.anchor + TimeDelta::days(index * self.every_days);
        (index, start)
    }

    /// Who is on call at `at`, overrides first.
    pub fn on_call(&self, at: DateTime<Utc>) -> Shift {
        if let Some(found) = self.overrides.iter().find(|o| o.start <= at && at < o.end) {
            return Shift {
                user: found.user.clone(),
                start: found.start,
                end: found.end,
            };
        }
        let (index, start_date) = self.shift_at(at);
        let count = self.users.len() as i64;
        let user = self.users[usize::try_from(index.rem_euclid(count)).unwrap_or(0)].clone();
        let end_date = start_date + TimeDelta::days(self.every_days);
        Shift {
            user,
            start: self.handoff_on(start_date),
            end: self.handoff_on(end_date),
        }
    }

    /// The shift after the current one.
    pub fn next(&self, at: DateTime<Utc>) -> Shift {
        let current = self.on_call(at);
        self.on_call(current.end).resumed_at(current.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn weekly() -> Schedule {
        Schedule::new(
            "primary",
            "Europe/Paris",
            TimeDelta::weeks(1),
            "Mon 09:00",
            vec!["alice".into(), "bob".into()],
            Some(NaiveDate::from_ymd_opt(2026, 3, 23).unwrap()),
            vec![],
        )
        .unwrap()
    }

    #[test]
    fn weekly_handoff_stays_at_nine_local_across_daylight_saving() {
        let schedule = weekly();
        // Paris is UTC+1 until Sunday 2026-03-29, then UTC+2.
        assert_eq!(schedule.on_call(utc("2026-03-23T08:00:00Z")).user, "alice");
        assert_eq!(schedule.on_call(utc("2026-03-28T12:00:00Z")).user, "alice");
        // Monday 30 March 09:00 Paris is 07:00 UTC after the change.
        assert_eq!(schedule.on_call(utc("2026-03-30T06:59:00Z")).user, "alice");
        let bob = schedule.on_call(utc("2026-03-30T07:00:00Z"));
        assert_eq!(bob.user, "bob");
        assert_eq!(bob.start, utc("2026-03-30T07:00:00Z"));
        assert_eq!(bob.end, utc("2026-04-06T07:00:00Z"));
        assert_eq!(schedule.next(utc("2026-03-30T07:00:00Z")).user, "alice");
    }

    #[test]
    fn daily_rotation_and_overrides() {
        let mut schedule = Schedule::new(
            "nights",
            "UTC",
            TimeDelta::days(1),
            "18:00",
            vec!["a".into(), "b".into(), "c".into()],
            Some(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()),
            vec![],
        )
        .unwrap();
        assert_eq!(schedule.on_call(utc("2026-11-01T18:00:00Z")).user, "a");
        assert_eq!(schedule.on_call(utc("2026-11-02T17:59:00Z")).user, "a");
        assert_eq!(schedule.on_call(utc("2026-11-02T18:00:00Z")).user, "b");
        assert_eq!(schedule.on_call(utc("2026-11-04T19:00:00Z")).user, "a");
        schedule.overrides.push(Override {
            user: "z".into(),
            start: utc("2026-11-04T00:00:00Z"),
            end: utc("2026-11-05T00:00:00Z"),
        });
        assert_eq!(schedule.on_call(utc("2026-11-04T19:00:00Z")).user, "z");
        // After the override, the rotation's shift it cut into resumes at its end.
        let next = schedule.next(utc("2026-11-04T19:00:00Z"));
        assert_eq!(next.user, "a");
        assert_eq!(next.start, utc("2026-11-05T00:00:00Z"));
        assert_eq!(next.end, utc("2026-11-05T18:00:00Z"));
    }

    #[test]
    fn bad_schedules_say_why() {
        let bad = |tz: &str, every: TimeDelta, handoff: &str| {
            Schedule::new("s", tz, every, handoff, vec!["a".into()], None, vec![])
                .unwrap_err()
                .to_string()
        };
        assert!(bad("Mars/Olympus", TimeDelta::days(1), "09:00").contains("IANA"));
        assert!(bad("UTC", TimeDelta::hours(12), "09:00").contains("whole days"));
        assert!(bad("UTC", TimeDelta::days(7), "Monday 9h").contains("hand-off"));
    }

    #[test]
    fn a_refused_schedule_names_the_value_and_what_to_write() {
        let bad = |tz: &str, handoff: &str, users: Vec<String>| {
            Schedule::new("s", tz, TimeDelta::days(7), handoff, users, None, vec![])
                .unwrap_err()
                .to_string()
        };
        let one = || vec!["a".to_string()];
        assert_eq!(
            bad("Mars/Olympus", "09:00", one()),
            r#"time zone "Mars/Olympus" is not an IANA name such as "Europe/Paris""#
        );
        assert_eq!(
            bad("UTC", "Moonday 09:00", one()),
            r#"hand-off "Moonday 09:00": "Moonday" is not a weekday such as Mon"#
        );
        assert_eq!(
            bad("UTC", "Mon 9h", one()),
            r#"hand-off "Mon 9h": write "Mon 09:00" (weekly) or "09:00" (daily)"#
        );
        assert_eq!(
            bad("UTC", "09:00", vec![]),
            "rotation.users is empty: name at least one user"
        );
    }
}
