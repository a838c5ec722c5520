//! The one error of every `FromStr` over a fixed set of names (statuses, priorities,
//! channels, kinds): which kind of name, what was given, and what is accepted.

/// `text` is not one of the names a `what` may have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a known {what}: use one of {accepted}")]
pub struct UnknownName {
    pub what: &'static str,
    pub text: String,
    pub accepted: &'static str,
}

impl UnknownName {
    pub fn new(what: &'static str, text: &str, accepted: &'static str) -> Self {
        Self {
            what,
            text: text.to_string(),
            accepted,
        }
    }
}
