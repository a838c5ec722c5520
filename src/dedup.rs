//! Deduplication: the identity of an alert, and the in-memory index of open alerts
//! that answers "new, repeat or resolve?" without touching the disk. The index is a
//! cache of the store, rebuilt from it at start and after a failed commit.

use crate::alert::{Alert, AlertStatus, Labels, Priority};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The stable hash of `source + resource + check` used when a sender has no identity
/// of its own (spec §2).
pub fn fallback_key(source: &str, resource: &str, check: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [source, resource, check] {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    hex::encode(&hasher.finalize()[..16])
}

/// Alertmanager's fingerprint stand-in for senders that omit it: a hash of the
/// sorted label set.
pub fn label_fingerprint(labels: &Labels) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in labels {
        hasher.update(name.as_bytes());
        hasher.update([0x1f]);
        hasher.update(value.as_bytes());
        hasher.update([0x1e]);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// Alerts are unique per source: two senders may use the same key for different things.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DedupKey {
    pub source: String,
    pub key: String,
}

impl DedupKey {
    /// One string for maps that need a plain key.
    pub fn joined(&self) -> String {
        format!("{}\u{1f}{}", self.source, self.key)
    }

    /// The identity of `alert`.
    pub fn of(alert: &Alert) -> Self {
        Self {
            source: alert.source.clone(),
            key: alert.dedup_key.clone(),
        }
    }
}

/// What the index remembers about an open (firing) alert.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAlert {
    pub id: i64,
    pub incident_id: Option<i64>,
    pub priority: Priority,
    pub count: i64,
    pub last_seen: DateTime<Utc>,
    pub silenced: bool,
    pub inhibited: bool,
    pub flapping: bool,
}

/// What to do with an incoming alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// First firing of this key (or the first since it resolved).
    Open,
    /// The key is already firing: count it, page no one.
    Repeat(i64),
    /// The open alert with this id resolves.
    Resolve(i64),
    /// A resolve for a key that is not firing: nothing to do.
    Stale,
}

/// Open alerts by identity.
#[derive(Debug, Default)]
pub struct OpenAlerts {
    by_key: HashMap<DedupKey, OpenAlert>,
}

impl OpenAlerts {
    /// Decides what `status` means for `key`.
    pub fn decide(&self, key: &DedupKey, status: AlertStatus) -> Decision {
        match (self.by_key.get(key), status) {
            (Some(open), AlertStatus::Firing) => Decision::Repeat(open.id),
            (Some(open), AlertStatus::Resolved) => Decision::Resolve(open.id),
            (None, AlertStatus::Firing) => Decision::Open,
            (None, AlertStatus::Resolved) => Decision::Stale,
        }
    }

    /// The open alert of `key`.
    pub fn get(&self, key: &DedupKey) -> Option<&OpenAlert> {
        self.by_key.get(key)
    }

    /// Mutable access for repeats.
    pub fn get_mut(&mut self, key: &DedupKey) -> Option<&mut OpenAlert> {
        self.by_key.get_mut(key)
    }

    /// Starts tracking an open alert.
    pub fn insert(&mut self, key: DedupKey, alert: OpenAlert) {
        self.by_key.insert(key, alert);
    }

    /// Stops tracking `key` (it resolved).
    pub fn remove(&mut self, key: &DedupKey) -> Option<OpenAlert> {
        self.by_key.remove(key)
    }

    /// Forgets every open alert of `incident_id` (the incident was resolved by hand),
    /// returning them.
    pub fn remove_incident(&mut self, incident_id: i64) -> Vec<(DedupKey, OpenAlert)> {
        let mut removed = Vec::new();
        self.by_key.retain(|key, open| {
            let keep = open.incident_id != Some(incident_id);
            if !keep {
                removed.push((key.clone(), open.clone()));
            }
            keep
        });
        removed
    }

    /// Forgets every open alert of the `incidents` (sorted; they are read again), in one pass.
    pub fn forget_incidents(&mut self, incidents: &[i64]) {
        if incidents.is_empty() {
            return;
        }
        self.by_key.retain(|_, open| {
            open.incident_id
                .is_none_or(|id| incidents.binary_search(&id).is_err())
        });
    }

    /// Number of open alerts.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when nothing is firing.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> DedupKey {
        DedupKey {
            source: "generic".into(),
            key: k.into(),
        }
    }

    #[test]
    fn firing_then_repeat_then_resolve() {
        let mut open = OpenAlerts::default();
        assert_eq!(open.decide(&key("a"), AlertStatus::Firing), Decision::Open);
        assert_eq!(
            open.decide(&key("a"), AlertStatus::Resolved),
            Decision::Stale
        );
        open.insert(
            key("a"),
            OpenAlert {
                id: 7,
                incident_id: Some(1),
                priority: Priority::P1,
                count: 1,
                last_seen: Utc::now(),
                silenced: false,
                inhibited: false,
                flapping: false,
            },
        );
        assert_eq!(
            open.decide(&key("a"), AlertStatus::Firing),
            Decision::Repeat(7)
        );
        assert_eq!(
            open.decide(&key("a"), AlertStatus::Resolved),
            Decision::Resolve(7)
        );
        assert_eq!(open.remove_incident(1)[0].1.id, 7);
        assert!(open.is_empty());
    }

    #[test]
    fn fallback_keys_separate_fields() {
        assert_ne!(fallback_key("g", "ab", "c"), fallback_key("g", "a", "bc"));
    }
}
