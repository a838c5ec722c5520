//! Whether a runbook may start now: cooldown per target, a cap on runs per hour, a
//! concurrency limit, and a circuit breaker that stops a runbook on a target after
//! repeated failures. Automation must never make an outage worse.
//!
//! Every verdict is computed from the runs themselves, as stored: the guard holds a
//! copy of the recent rows, loaded with the rest of the writer's view and updated with
//! each row the writer writes. A restart, a failed commit (the view is reloaded) or
//! another replica's turn therefore leave it exactly as the store says.

use super::Runbook;
use crate::store::runs::RunRecord;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;

/// How long an open breaker keeps refusing runs after the failure that opened it.
pub const BREAKER_OPEN_FOR: TimeDelta = TimeDelta::hours(1);
/// Runs older than this (and not running) no longer count, unless a cooldown is longer.
const MEMORY: TimeDelta = TimeDelta::days(1);

/// Why the guard refuses a run; shown on the incident's timeline and to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "circuit breaker open after {failures} failures in a row on {target}; it closes at {closes}"
    )]
    BreakerOpen {
        failures: u32,
        target: String,
        closes: String,
    },
    #[error("in cooldown on {target} until {until}")]
    Cooldown { target: String, until: String },
    #[error("max_runs_per_hour ({cap}) reached")]
    HourlyCap { cap: u32 },
    #[error("already running {running} time(s) (concurrency {concurrency}); wait for a run to end")]
    Concurrency { running: usize, concurrency: u32 },
}

/// What a stored run means to the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Proposed, waiting for a responder: counts toward cooldown and the cap, so a
    /// storm proposes it once.
    Waiting,
    Running,
    /// Ended; `None` when it says nothing of the runbook (cut short by a stop).
    Ended(Option<bool>),
    /// Never ran (its approval expired): counts for nothing.
    NotRun,
}

#[derive(Debug, Clone)]
struct Run {
    runbook: String,
    target: String,
    started_at: DateTime<Utc>,
    ended_at: DateTime<Utc>,
    state: State,
}

impl Run {
    fn of(record: &RunRecord) -> Self {
        let state = match record.status.as_str() {
            "pending_approval" => State::Waiting,
            "running" => State::Running,
            "approval_expired" => State::NotRun,
            "failed" | "timeout" => State::Ended(Some(false)),
            "interrupted" => State::Ended(None),
            // success, awaiting_recovery, recovered, recovery_missed: the run worked.
            _ => State::Ended(Some(true)),
        };
        Self {
            runbook: record.runbook.clone(),
            target: record.target.clone(),
            started_at: record.started_at,
            ended_at: record.finished_at.unwrap_or(record.started_at),
            state,
        }
    }

    fn counts(&self) -> bool {
        self.state != State::NotRun
    }
}

/// The recent runs, by id.
#[derive(Debug, Default)]
pub struct Guard {
    runs: HashMap<i64, Run>,
}

impl Guard {
    /// The guard of these stored runs.
    pub fn of(records: &[RunRecord]) -> Self {
        let mut guard = Self::default();
        for record in records {
            guard.record(record);
        }
        guard
    }

    /// The oldest start a guard over `runbooks` needs to see, besides what still runs.
    pub fn since(runbooks: &[Runbook], now: DateTime<Utc>) -> DateTime<Utc> {
        let longest = runbooks
            .iter()
            .map(|runbook| runbook.cooldown)
            .fold(MEMORY, TimeDelta::max);
        now - longest
    }

    /// A run row was written (started, proposed, approved, ended).
    pub fn record(&mut self, record: &RunRecord) {
        self.runs.insert(record.id, Run::of(record));
    }

    /// Forgets ended runs older than `since`, so memory stays bounded.
    pub fn prune(&mut self, since: DateTime<Utc>) {
        self.runs.retain(|_, run| {
            matches!(run.state, State::Waiting | State::Running) || run.started_at >= since
        });
    }

    /// `Err` says why the run is refused.
    pub fn check(
        &self,
        runbook: &Runbook,
        target: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        if let Some(closes) = self.breaker_closes(runbook, target, now) {
            return Err(Refused::BreakerOpen {
                failures: runbook.breaker_failures,
                target: target.to_string(),
                closes: crate::clock::rfc3339(closes),
            });
        }
        let on_target = self.of_runbook(runbook).filter(|run| run.target == target);
        if let Some(last) = on_target.map(|run| run.started_at).max()
            && now - last < runbook.cooldown
        {
            return Err(Refused::Cooldown {
                target: target.to_string(),
                until: crate::clock::rfc3339(last + runbook.cooldown),
            });
        }
        self.check_by_hand(runbook, now)
    }

    /// The limits a person's decision does not lift: runs at once over all
    /// replicas, and the hourly cap (one leaked responder token must not loop a
    /// password reset over every account).
    pub fn check_by_hand(&self, runbook: &Runbook, now: DateTime<Utc>) -> Result<(), Refused> {
        if let Some(cap) = runbook.max_runs_per_hour {
            let last_hour = self
                .of_runbook(runbook)
                .filter(|run| now - run.started_at < TimeDelta::hours(1))
                .count();
            if last_hour >= cap as usize {
                return Err(Refused::HourlyCap { cap });
            }
        }
        self.check_concurrency(runbook, 0)
    }

    /// Runs at once over all replicas, with `starting` more of it about to start
    /// (one approval of several waiting runs): what an approval must still respect.
    pub fn check_concurrency(&self, runbook: &Runbook, starting: usize) -> Result<(), Refused> {
        let running = self
            .of_runbook(runbook)
            .filter(|run| run.state == State::Running)
            .count()
            + starting;
        if running >= runbook.concurrency as usize {
            return Err(Refused::Concurrency {
                running,
                concurrency: runbook.concurrency,
            });
        }
        Ok(())
    }

    /// When the breaker of `runbook` on `target` closes, if it is open now: the last
    /// `breaker_failures` ended runs there all failed, the last within the hour. The
    /// first run after that is a trial; failing, it opens the breaker again.
    pub fn breaker_closes(
        &self,
        runbook: &Runbook,
        target: &str,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let mut ended: Vec<(DateTime<Utc>, bool)> = self
            .of_runbook(runbook)
            .filter(|run| run.target == target)
            .filter_map(|run| match run.state {
                State::Ended(Some(success)) => Some((run.ended_at, success)),
                _ => None,
            })
            .collect();
        ended.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        let needed = runbook.breaker_failures as usize;
        let last = ended.first()?.0;
        let failed_in_a_row = ended.iter().take_while(|(_, success)| !success).count();
        let closes = last + BREAKER_OPEN_FOR;
        (failed_in_a_row >= needed && now < closes).then_some(closes)
    }

    fn of_runbook<'g>(&'g self, runbook: &'g Runbook) -> impl Iterator<Item = &'g Run> + 'g {
        self.runs
            .values()
            .filter(move |run| run.runbook == runbook.name && run.counts())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn runbook(extra: &str) -> Runbook {
        super::super::parse(
            "r",
            Path::new("."),
            &format!("command = [\"./r.sh\"]\n{extra}"),
        )
        .unwrap()
    }

    fn run(id: i64, target: &str, status: &str, at: DateTime<Utc>) -> RunRecord {
        RunRecord {
            id,
            runbook: "r".into(),
            incident_id: None,
            trigger: "auto".into(),
            actor: "tocsin".into(),
            target: target.into(),
            params: Default::default(),
            status: status.into(),
            exit_code: None,
            output: String::new(),
            started_at: at,
            finished_at: (status != "running").then_some(at),
            recovery_due: None,
            approval_due: None,
        }
    }

    #[test]
    fn cooldown_is_per_target() {
        let runbook = runbook("cooldown = \"10m\"\nconcurrency = 5\n");
        let now = Utc::now();
        let mut guard = Guard::default();
        guard.check(&runbook, "a", now).unwrap();
        guard.record(&run(1, "a", "running", now));
        assert!(
            guard
                .check(&runbook, "a", now + TimeDelta::minutes(9))
                .unwrap_err()
                .to_string()
                .contains("cooldown")
        );
        guard.check(&runbook, "b", now).unwrap();
        guard
            .check(&runbook, "a", now + TimeDelta::minutes(10))
            .unwrap();
    }

    #[test]
    fn the_hourly_cap_holds_even_when_runs_alternate_success_and_failure() {
        let runbook = runbook("max_runs_per_hour = 3\nbreaker_failures = 10\n");
        let now = Utc::now();
        let statuses = ["success", "failed", "success"];
        let runs: Vec<RunRecord> = (0..3)
            .map(|i| run(i, "t", statuses[i as usize], now + TimeDelta::minutes(i)))
            .collect();
        let guard = Guard::of(&runs);
        assert!(
            guard
                .check(&runbook, "t", now + TimeDelta::minutes(5))
                .unwrap_err()
                .to_string()
                .contains("max_runs_per_hour")
        );
        guard
            .check(&runbook, "t", now + TimeDelta::minutes(61))
            .unwrap();
    }

    #[test]
    fn the_breaker_opens_after_repeated_failures_on_a_target() {
        let runbook = runbook("breaker_failures = 2\nconcurrency = 9\n");
        let now = Utc::now();
        let mut guard = Guard::of(&[run(1, "t", "failed", now)]);
        assert_eq!(guard.breaker_closes(&runbook, "t", now), None);
        guard.record(&run(2, "t", "timeout", now));
        assert!(
            guard
                .check(&runbook, "t", now)
                .unwrap_err()
                .to_string()
                .contains("circuit breaker")
        );
        guard.check(&runbook, "other", now).unwrap();
        guard.check(&runbook, "t", now + BREAKER_OPEN_FOR).unwrap();
        guard.record(&run(3, "t", "success", now + BREAKER_OPEN_FOR));
        assert_eq!(
            guard.breaker_closes(&runbook, "t", now + BREAKER_OPEN_FOR),
            None
        );
    }

    #[test]
    fn a_person_lifts_cooldown_but_not_the_hourly_cap() {
        let runbook = runbook("cooldown = \"1h\"\nmax_runs_per_hour = 2\nconcurrency = 5\n");
        let now = Utc::now();
        let guard = Guard::of(&[run(1, "a", "success", now)]);
        assert!(guard.check(&runbook, "a", now).is_err(), "in cooldown");
        guard.check_by_hand(&runbook, now).unwrap();
        let guard = Guard::of(&[run(1, "a", "success", now), run(2, "b", "success", now)]);
        assert!(
            guard
                .check_by_hand(&runbook, now)
                .unwrap_err()
                .to_string()
                .contains("max_runs_per_hour")
        );
    }

    #[test]
    fn running_runs_of_any_replica_hold_the_slots_and_expired_proposals_nothing() {
        let runbook = runbook("concurrency = 1\ncooldown = \"1h\"\n");
        let now = Utc::now();
        let mut guard = Guard::of(&[run(1, "a", "running", now)]);
        assert!(
            guard
                .check_concurrency(&runbook, 0)
                .unwrap_err()
                .to_string()
                .contains("concurrency")
        );
        guard.record(&run(1, "a", "interrupted", now));
        guard.check_concurrency(&runbook, 0).unwrap();
        assert!(
            guard.check_concurrency(&runbook, 1).is_err(),
            "one slot, and one of this approval already takes it"
        );
        guard.record(&run(2, "b", "approval_expired", now));
        guard.check(&runbook, "b", now).unwrap();
    }
}
