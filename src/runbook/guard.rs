//! Whether a runbook may start now: cooldown per target, a cap on runs per hour, a
//! concurrency limit, and a circuit breaker that stops a runbook on a target after
//! repeated failures. Automation must never make an outage worse.

use super::Runbook;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{HashMap, VecDeque};

/// How long an open breaker keeps refusing runs.
pub const BREAKER_OPEN_FOR: TimeDelta = TimeDelta::hours(1);

/// The guard's memory (rebuilt empty at start: a restart re-arms nothing dangerous,
/// since cooldowns and caps only ever refuse).
#[derive(Debug, Default)]
pub struct Guard {
    last_run: HashMap<(String, String), DateTime<Utc>>,
    recent: HashMap<String, VecDeque<DateTime<Utc>>>,
    running: HashMap<String, u32>,
    failures: HashMap<(String, String), u32>,
    open_breakers: HashMap<(String, String), DateTime<Utc>>,
}

impl Guard {
    /// `Err` says why the run is refused.
    pub fn check(
        &mut self,
        runbook: &Runbook,
        target: &str,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let key = (runbook.name.clone(), target.to_string());
        if let Some(opened) = self.open_breakers.get(&key) {
            if now - *opened < BREAKER_OPEN_FOR {
                return Err(format!(
                    "circuit breaker open after {} failures in a row on {target}; it closes at {}",
                    runbook.breaker_failures,
                    crate::clock::rfc3339(*opened + BREAKER_OPEN_FOR)
                ));
            }
            self.open_breakers.remove(&key);
            self.failures.remove(&key);
        }
        if let Some(last) = self.last_run.get(&key)
            && now - *last < runbook.cooldown
        {
            return Err(format!(
                "in cooldown on {target} until {}",
                crate::clock::rfc3339(*last + runbook.cooldown)
            ));
        }
        if let Some(cap) = runbook.max_runs_per_hour {
            let recent = self.recent.entry(runbook.name.clone()).or_default();
            while recent
                .front()
                .is_some_and(|at| now - *at >= TimeDelta::hours(1))
            {
                recent.pop_front();
            }
            if recent.len() >= cap as usize {
                return Err(format!("max_runs_per_hour ({cap}) reached"));
            }
        }
        if self.running.get(&runbook.name).copied().unwrap_or(0) >= runbook.concurrency {
            return Err(format!(
                "already running {} time(s) (concurrency {})",
                runbook.concurrency, runbook.concurrency
            ));
        }
        Ok(())
    }

    /// A run starts.
    pub fn started(&mut self, runbook: &Runbook, target: &str, now: DateTime<Utc>) {
        self.last_run
            .insert((runbook.name.clone(), target.to_string()), now);
        self.recent
            .entry(runbook.name.clone())
            .or_default()
            .push_back(now);
        *self.running.entry(runbook.name.clone()).or_default() += 1;
    }

    /// A run ended; returns true when this failure opened the breaker.
    pub fn finished(
        &mut self,
        runbook: &Runbook,
        target: &str,
        success: bool,
        now: DateTime<Utc>,
    ) -> bool {
        if let Some(running) = self.running.get_mut(&runbook.name) {
            *running = running.saturating_sub(1);
        }
        self.counted(runbook, target, success, now)
    }

    /// Counts the outcome of a run this process did not start (another replica's,
    /// lost with it) toward the breaker, without touching this process's concurrency.
    pub fn counted(
        &mut self,
        runbook: &Runbook,
        target: &str,
        success: bool,
        now: DateTime<Utc>,
    ) -> bool {
        let key = (runbook.name.clone(), target.to_string());
        if success {
            self.failures.remove(&key);
            return false;
        }
        let failures = self.failures.entry(key.clone()).or_default();
        *failures += 1;
        if *failures >= runbook.breaker_failures && !self.open_breakers.contains_key(&key) {
            self.open_breakers.insert(key, now);
            return true;
        }
        false
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

    #[test]
    fn cooldown_is_per_target() {
        let runbook = runbook("cooldown = \"10m\"\nconcurrency = 5\n");
        let mut guard = Guard::default();
        let now = Utc::now();
        guard.check(&runbook, "a", now).unwrap();
        guard.started(&runbook, "a", now);
        assert!(
            guard
                .check(&runbook, "a", now + TimeDelta::minutes(9))
                .unwrap_err()
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
        let mut guard = Guard::default();
        let now = Utc::now();
        for i in 0..3 {
            let at = now + TimeDelta::minutes(i);
            guard.check(&runbook, "t", at).unwrap();
            guard.started(&runbook, "t", at);
            guard.finished(&runbook, "t", i % 2 == 0, at);
        }
        assert!(
            guard
                .check(&runbook, "t", now + TimeDelta::minutes(5))
                .unwrap_err()
                .contains("max_runs_per_hour")
        );
        guard
            .check(&runbook, "t", now + TimeDelta::minutes(61))
            .unwrap();
    }

    #[test]
    fn the_breaker_opens_after_repeated_failures_on_a_target() {
        let runbook = runbook("breaker_failures = 2\nconcurrency = 9\n");
        let mut guard = Guard::default();
        let now = Utc::now();
        guard.started(&runbook, "t", now);
        assert!(!guard.finished(&runbook, "t", false, now));
        guard.started(&runbook, "t", now);
        assert!(
            guard.finished(&runbook, "t", false, now),
            "the second failure opens it"
        );
        assert!(
            guard
                .check(&runbook, "t", now)
                .unwrap_err()
                .contains("circuit breaker")
        );
        guard.check(&runbook, "other", now).unwrap();
        guard.check(&runbook, "t", now + BREAKER_OPEN_FOR).unwrap();
    }

    #[test]
    fn another_replicas_lost_run_counts_toward_the_breaker_but_frees_no_slot() {
        let runbook = runbook("concurrency = 1\nbreaker_failures = 1\n");
        let mut guard = Guard::default();
        let now = Utc::now();
        guard.started(&runbook, "a", now);
        assert!(
            guard.counted(&runbook, "b", false, now),
            "its failure opens b's breaker"
        );
        assert!(
            guard
                .check(&runbook, "c", now)
                .unwrap_err()
                .contains("concurrency"),
            "this process's own run still holds the only slot"
        );
        guard.finished(&runbook, "a", true, now);
        guard.check(&runbook, "c", now).unwrap();
    }
}
