//! `[console]`: the responder console's sessions.

use chrono::TimeDelta;
use serde::Deserialize;

/// `[console]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConsole {
    /// How long a console session lasts after login.
    pub session_ttl: String,
}

impl Default for RawConsole {
    fn default() -> Self {
        Self {
            session_ttl: "12h".into(),
        }
    }
}

/// `[console]`, validated.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleConfig {
    pub session_ttl: TimeDelta,
}
