//! Signed, expiring, single-use links in emails (`/ack/{token}`, `/csat/{token}`: a GET
//! shows, a POST acts). The token carries the incident, the user and an expiry, sealed
//! with HMAC-SHA256 under a key kept in the store; single use is enforced by the store.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const MAC_LEN: usize = 32;

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckClaim {
    pub incident_id: i64,
    pub user_id: String,
    pub expires_at: DateTime<Utc>,
    /// Unique per link: the notification that carried it.
    pub nonce: i64,
}

/// What a satisfaction link's `user_id` puts before the stakeholder's address, so
/// that one is never taken for an acknowledge link, nor the other way round.
pub const CSAT_PREFIX: &str = "csat:";

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this link is not one Tocsin issued")]
    Forged,
    #[error("this link has expired; acknowledge from the API, the CLI or by SMS")]
    Expired,
}

/// Issues and checks links.
#[derive(Clone)]
pub struct AckLinks {
    keyed: Hmac<Sha256>,
    pub ttl: TimeDelta,
}

impl AckLinks {
    /// Links signed with `key`, valid for `ttl`. `None` only for an empty key.
    pub fn new(key: &[u8], ttl: TimeDelta) -> Option<Self> {
        if key.is_empty() {
            return None;
        }
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(key).ok()?;
        Some(Self { keyed, ttl })
    }

    fn mac(&self) -> Hmac<Sha256> {
        self.keyed.clone()
    }

    /// A URL-safe token for `claim`.
    pub fn sign(&self, claim: &AckClaim) -> String {
        let payload = format!(
            "{}\n{}\n{}\n{}",
            claim.incident_id,
            claim.expires_at.timestamp_millis(),
            claim.nonce,
            claim.user_id
        );
        self.seal(payload)
    }

    /// Checks the signature, then the expiry.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AckClaim, LinkError> {
        let text = self.open(token)?;
        let mut parts = text.splitn(4, '\n');
        let mut next = || parts.next().ok_or(LinkError::Forged);
        let incident_id = next()?.parse().map_err(|_| LinkError::Forged)?;
        let expires_at = unexpired(next()?, now)?;
        let nonce = next()?.parse().map_err(|_| LinkError::Forged)?;
        let user_id = next()?.to_string();
        Ok(AckClaim {
            incident_id,
            user_id,
            expires_at,
            nonce,
        })
    }
}

/// What a valid approval link says: approve `runbook` on an incident, for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalClaim {
    pub incident_id: i64,
    pub runbook: String,
    pub user_id: String,
    pub expires_at: DateTime<Utc>,
}

/// Opens approval payloads, so an acknowledgement token is never read as one and the
/// other way round.
const APPROVAL: &str = "approve";

impl AckLinks {
    /// A URL-safe token that approves `claim.runbook` on its incident.
    pub fn sign_approval(&self, claim: &ApprovalClaim) -> String {
        let payload = format!(
            "{APPROVAL}\n{}\n{}\n{}\n{}",
            claim.incident_id,
            claim.expires_at.timestamp_millis(),
            claim.runbook,
            claim.user_id
        );
        self.seal(payload)
    }

    /// Checks an approval token's signature, then its expiry.
    pub fn verify_approval(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalClaim, LinkError> {
        let text = self.open(token)?;
        let mut parts = text.splitn(5, '\n');
        let mut next = || parts.next().ok_or(LinkError::Forged);
        if next()? != APPROVAL {
            return Err(LinkError::Forged);
        }
        let incident_id = next()?.parse().map_err(|_| LinkError::Forged)?;
        let expires_at = unexpired(next()?, now)?;
        let runbook = next()?.to_string();
        let user_id = next()?.to_string();
        Ok(ApprovalClaim {
            incident_id,
            runbook,
            user_id,
            expires_at,
        })
    }
}

/// What a chat button (Mattermost's) says: `action` (`ack`, `resolve`) on an
/// incident, for the user it was sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonClaim {
    pub incident_id: i64,
    pub action: String,
    pub user_id: String,
    pub expires_at: DateTime<Utc>,
}

/// Opens button payloads, distinct from links and approvals.
const BUTTON: &str = "button";

impl AckLinks {
    /// A token carrying the HMAC of a button's incident, action and user.
    pub fn sign_button(&self, claim: &ButtonClaim) -> String {
        let payload = format!(
            "{BUTTON}\n{}\n{}\n{}\n{}",
            claim.incident_id,
            claim.expires_at.timestamp_millis(),
            claim.action,
            claim.user_id
        );
        self.seal(payload)
    }

    /// Checks a button token's signature, then its expiry.
    pub fn verify_button(&self, token: &str, now: DateTime<Utc>) -> Result<ButtonClaim, LinkError> {
        let text = self.open(token)?;
        let mut parts = text.splitn(5, '\n');
        let mut next = || parts.next().ok_or(LinkError::Forged);
        if next()? != BUTTON {
            return Err(LinkError::Forged);
        }
        let incident_id = next()?.parse().map_err(|_| LinkError::Forged)?;
        let expires_at = unexpired(next()?, now)?;
        let action = next()?.to_string();
        let user_id = next()?.to_string();
        Ok(ButtonClaim {
            incident_id,
            action,
            user_id,
            expires_at,
        })
    }
}

impl AckLinks {
    /// `payload` with its MAC, URL-safe.
    fn seal(&self, payload: String) -> String {
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let mut sealed = payload.into_bytes();
        sealed.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// The payload of a token whose MAC holds.
    fn open(&self, token: &str) -> Result<String, LinkError> {
        let sealed = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| LinkError::Forged)?;
        if sealed.len() <= MAC_LEN {
            return Err(LinkError::Forged);
        }
        let (payload, tag) = sealed.split_at(sealed.len() - MAC_LEN);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_slice(tag).map_err(|_| LinkError::Forged)?;
        String::from_utf8(payload.to_vec()).map_err(|_| LinkError::Forged)
    }
}

/// The expiry a payload carries (milliseconds), refused once past.
fn unexpired(millis: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, LinkError> {
    let millis = millis.parse::<i64>().map_err(|_| LinkError::Forged)?;
    let expires_at = DateTime::from_timestamp_millis(millis).ok_or(LinkError::Forged)?;
    if now >= expires_at {
        return Err(LinkError::Expired);
    }
    Ok(expires_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_tampering_and_age() {
        let links = AckLinks::new(b"secret", TimeDelta::hours(24)).unwrap();
        let now = Utc::now();
        let claim = AckClaim {
            incident_id: 42,
            user_id: "alice".into(),
            expires_at: now + links.ttl,
            nonce: 7,
        };
        let token = links.sign(&claim);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{token}"
        );
        let verified = links.verify(&token, now).unwrap();
        assert_eq!(
            (
                verified.incident_id,
                verified.user_id.as_str(),
                verified.nonce
            ),
            (42, "alice", 7)
        );
        let mut tampered = token.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            links.verify(std::str::from_utf8(&tampered).unwrap(), now),
            Err(LinkError::Forged)
        );
        assert_eq!(
            AckLinks::new(b"other", links.ttl)
                .unwrap()
                .verify(&token, now),
            Err(LinkError::Forged)
        );
        assert_eq!(
            links.verify(&token, now + TimeDelta::hours(25)),
            Err(LinkError::Expired)
        );
        assert_eq!(links.verify("", now), Err(LinkError::Forged));
    }

    #[test]
    fn approval_tokens_and_ack_tokens_are_never_taken_for_each_other() {
        let links = AckLinks::new(b"key", TimeDelta::hours(1)).unwrap();
        let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
        let claim = ApprovalClaim {
            incident_id: 7,
            runbook: "reset-password".into(),
            user_id: "alice".into(),
            expires_at: now + TimeDelta::minutes(15),
        };
        let token = links.sign_approval(&claim);
        assert_eq!(links.verify_approval(&token, now), Ok(claim.clone()));
        assert_eq!(links.verify(&token, now), Err(LinkError::Forged));
        let ack = links.sign(&AckClaim {
            incident_id: 7,
            user_id: "alice".into(),
            expires_at: now + TimeDelta::minutes(15),
            nonce: 1,
        });
        assert_eq!(links.verify_approval(&ack, now), Err(LinkError::Forged));
        assert_eq!(
            links.verify_approval(&token, claim.expires_at),
            Err(LinkError::Expired)
        );
    }
}
