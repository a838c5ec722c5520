//! The only place that reads wall time. Everything else asks a [`Clock`], so tests
//! move time forward instead of sleeping. Also the duration syntax of the
//! configuration and manifests (`parse_duration`).

use chrono::{DateTime, Duration, Utc};
use std::sync::Mutex;

/// A source of "now". Shared as `Arc<dyn Clock>`.
pub trait Clock: Send + Sync + 'static {
    /// The current instant, UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; used by tests and `simulate`.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock frozen at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: DateTime<Utc>) {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Formats a timestamp the way the API promises: RFC 3339, UTC, milliseconds, `Z`.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Store representation of a timestamp: milliseconds since the Unix epoch.
pub fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// Inverse of [`to_millis`]; out-of-range values clamp to the epoch rather than fail,
/// because they can only come from a hand-edited database.
pub fn from_millis(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

/// Why a duration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("duration {0:?} has no unit; {DURATION_HINT}")]
    NoUnit(String),
    #[error("duration {0:?} does not start with a number; {DURATION_HINT}")]
    NoNumber(String),
    #[error("duration {0:?} is not valid; {DURATION_HINT}")]
    Invalid(String),
    #[error(
        "duration {0:?} is over 10 years; nothing in Tocsin waits that long, write e.g. \"52w\""
    )]
    TooLong(String),
}

const DURATION_HINT: &str =
    "write one integer and one unit s, m, h, d or w, such as \"90s\" or \"10m\"";

/// Parses the duration syntax of spec §10: one integer and one unit, `s m h d w`.
pub fn parse_duration(text: &str) -> Result<chrono::TimeDelta, DurationError> {
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| DurationError::NoUnit(text.to_string()))?;
    let (number, unit) = text.split_at(unit_at);
    let number: i64 = number
        .parse()
        .map_err(|_| DurationError::NoNumber(text.to_string()))?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(DurationError::Invalid(text.to_string())),
    };
    number
        .checked_mul(seconds_per_unit)
        .filter(|seconds| *seconds <= MAX_DURATION_SECONDS)
        .and_then(chrono::TimeDelta::try_seconds)
        .ok_or_else(|| DurationError::TooLong(text.to_string()))
}

/// Ten years (3,653 days): longer durations are typos, and adding them to a date
/// overflows.
const MAX_DURATION_SECONDS: i64 = 3_653 * 86_400;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::parse_from_rfc3339("2026-11-29T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::minutes(15));
        assert_eq!(rfc3339(clock.now()), "2026-11-29T03:15:00.000Z");
    }
}
