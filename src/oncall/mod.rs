//! People and who to page: users with their notification rules, schedules, and
//! escalation policies with their tiers. `Directory` answers "whom does this tier
//! page now?". Pure.

pub mod report;
pub mod schedule;
pub mod stored;

use crate::alert::Priority;
use crate::name::UnknownName;
use chrono::{DateTime, TimeDelta, Utc};
use schedule::{Schedule, Shift};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A way to reach a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    Email,
    Sms,
    Webhook,
    Slack,
    Telegram,
    Ntfy,
    Teams,
    Mattermost,
    /// A phone call to `phone`; only where a rule asks for it, never by default.
    Voice,
}

impl Channel {
    /// Every channel but voice, in the order a user without rules is reached and a
    /// failing channel falls back (a phone that rings is asked for by a rule).
    pub const ALL: [Self; 8] = [
        Self::Email,
        Self::Sms,
        Self::Webhook,
        Self::Slack,
        Self::Telegram,
        Self::Ntfy,
        Self::Teams,
        Self::Mattermost,
    ];

    /// The name used in config, the store and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Telegram => "telegram",
            Self::Ntfy => "ntfy",
            Self::Teams => "teams",
            Self::Mattermost => "mattermost",
            Self::Voice => "voice",
        }
    }
}

impl Channel {
    /// The `[[users]]` key holding a user's address on this channel.
    pub fn user_key(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "phone",
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Telegram => "telegram",
            Self::Ntfy => "ntfy_topic",
            Self::Voice => "phone",
            Self::Teams => "teams_webhook",
            Self::Mattermost => "mattermost_webhook",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        match text {
            "email" => Ok(Self::Email),
            "sms" => Ok(Self::Sms),
            "webhook" => Ok(Self::Webhook),
            "slack" => Ok(Self::Slack),
            "telegram" => Ok(Self::Telegram),
            "ntfy" => Ok(Self::Ntfy),
            "voice" => Ok(Self::Voice),
            "teams" => Ok(Self::Teams),
            "mattermost" => Ok(Self::Mattermost),
            _ => Err(UnknownName::new(
                "channel",
                text,
                "email, sms, webhook, slack, telegram, ntfy, voice, teams, mattermost",
            )),
        }
    }
}

/// "Reach me on this channel, this long after I am paged, for incidents at least
/// this urgent."
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyRule {
    pub channel: Channel,
    pub after: TimeDelta,
    /// `P2` means P2 and P1; `None` means every priority.
    pub min_priority: Option<Priority>,
}

/// A validated `[[users]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub webhook: Option<String>,
    /// Slack member id (`U…`), Telegram chat id, ntfy topic.
    pub slack: Option<String>,
    pub telegram: Option<String>,
    pub ntfy_topic: Option<String>,
    /// Incoming-webhook URLs: Teams (Workflows) and Mattermost. Credentials.
    pub teams_webhook: Option<String>,
    pub mattermost_webhook: Option<String>,
    pub notify: Vec<NotifyRule>,
}

impl User {
    /// The contact for `channel`, if the user has one.
    pub fn address(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Email => self.email.as_deref(),
            Channel::Sms => self.phone.as_deref(),
            Channel::Webhook => self.webhook.as_deref(),
            Channel::Slack => self.slack.as_deref(),
            Channel::Telegram => self.telegram.as_deref(),
            Channel::Ntfy => self.ntfy_topic.as_deref(),
            Channel::Voice => self.phone.as_deref(),
            Channel::Teams => self.teams_webhook.as_deref(),
            Channel::Mattermost => self.mattermost_webhook.as_deref(),
        }
    }

    /// The rules that apply to an incident of `priority`. A user without rules is
    /// reached at once on every channel they have an address for.
    pub fn rules_for(&self, priority: Priority) -> Vec<NotifyRule> {
        if self.notify.is_empty() {
            return Channel::ALL
                .into_iter()
                .filter(|channel| self.address(*channel).is_some())
                .map(|channel| NotifyRule {
                    channel,
                    after: TimeDelta::zero(),
                    min_priority: None,
                })
                .collect();
        }
        self.notify
            .iter()
            .filter(|rule| rule.min_priority.is_none_or(|min| priority <= min))
            .cloned()
            .collect()
    }
}

/// What a tier pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    User(String),
    Schedule(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(id) => write!(f, "user:{id}"),
            Self::Schedule(name) => write!(f, "schedule:{name}"),
        }
    }
}

/// One level of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub level: String,
    pub targets: Vec<Target>,
    /// Wait since the previous tier was paged.
    pub after: TimeDelta,
}

/// A validated `[[escalation_policies]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationPolicy {
    pub name: String,
    pub tiers: Vec<Tier>,
    /// How many more times the policy starts again at the first tier.
    pub repeat: u32,
    /// Wait after the last tier before starting again.
    pub repeat_after: TimeDelta,
    /// An acknowledged incident not resolved within this re-triggers.
    pub ack_timeout: Option<TimeDelta>,
}

/// Users, schedules and policies by name.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub users: BTreeMap<String, User>,
    pub schedules: BTreeMap<String, Schedule>,
    pub policies: BTreeMap<String, EscalationPolicy>,
    /// Overrides written from the console, which win over the configuration's.
    pub stored: stored::StoredOverrides,
}

impl Directory {
    /// The policy an incident follows: the rule's, else the one called `default`, else
    /// the only one there is.
    pub fn policy_for(&self, named: Option<&str>) -> Option<&EscalationPolicy> {
        match named {
            Some(name) => self.policies.get(name),
            None => self.policies.get("default").or_else(|| {
                (self.policies.len() == 1)
                    .then(|| self.policies.values().next())
                    .flatten()
            }),
        }
    }

    /// The users a tier pages at `now`, and the targets that had nobody.
    pub fn resolve(&self, tier: &Tier, now: DateTime<Utc>) -> (Vec<&User>, Vec<String>) {
        let mut users: Vec<&User> = Vec::new();
        let mut empty = Vec::new();
        for target in &tier.targets {
            let id = match target {
                Target::User(id) => Some(id.clone()),
                Target::Schedule(name) => {
                    self.schedules.get(name).map(|s| self.on_call(s, now).user)
                }
            };
            match id.and_then(|id| self.users.get(&id)) {
                Some(user) if !users.iter().any(|u| u.id == user.id) => users.push(user),
                Some(_) => {}
                None => empty.push(target.to_string()),
            }
        }
        (users, empty)
    }

    /// Who is on call on `schedule` at `at`: a stored override, else the schedule's.
    pub fn on_call(&self, schedule: &Schedule, at: DateTime<Utc>) -> Shift {
        match self.stored.at(&schedule.name, at) {
            Some(taken) => Shift {
                user: taken.user,
                start: taken.start,
                end: taken.end,
            },
            None => schedule.on_call(at),
        }
    }

    /// The shift after the one at `at`.
    pub fn next(&self, schedule: &Schedule, at: DateTime<Utc>) -> Shift {
        let current = self.on_call(schedule, at);
        self.on_call(schedule, current.end).resumed_at(current.end)
    }

    /// The user whose phone number is `phone`, comparing digits only.
    pub fn user_by_phone(&self, phone: &str) -> Option<&User> {
        let digits = |text: &str| {
            text.chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
        };
        let wanted = digits(phone);
        if wanted.is_empty() {
            return None;
        }
        self.users
            .values()
            .find(|user| user.phone.as_deref().is_some_and(|p| digits(p) == wanted))
    }

    /// The user whose address on `channel` (a Slack member id, a Telegram chat id)
    /// is `id`: who clicked a chat button.
    pub fn user_by_address(&self, channel: Channel, id: &str) -> Option<&User> {
        if id.is_empty() {
            return None;
        }
        self.users
            .values()
            .find(|user| user.address(channel) == Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, notify: Vec<NotifyRule>) -> User {
        User {
            id: id.into(),
            name: id.into(),
            email: Some(format!("{id}@example.com")),
            phone: Some("+33 6 00 00 00 01".into()),
            webhook: None,
            slack: None,
            telegram: None,
            ntfy_topic: None,
            teams_webhook: None,
            mattermost_webhook: None,
            notify,
        }
    }

    #[test]
    fn min_priority_includes_more_urgent_incidents() {
        let alice = user(
            "alice",
            vec![
                NotifyRule {
                    channel: Channel::Email,
                    after: TimeDelta::zero(),
                    min_priority: None,
                },
                NotifyRule {
                    channel: Channel::Sms,
                    after: TimeDelta::zero(),
                    min_priority: Some(Priority::P2),
                },
            ],
        );
        assert_eq!(alice.rules_for(Priority::P1).len(), 2);
        assert_eq!(alice.rules_for(Priority::P2).len(), 2);
        assert_eq!(alice.rules_for(Priority::P3).len(), 1);
        let plain = user("bob", vec![]);
        let channels: Vec<Channel> = plain
            .rules_for(Priority::P4)
            .iter()
            .map(|r| r.channel)
            .collect();
        assert_eq!(channels, [Channel::Email, Channel::Sms]);
    }

    #[test]
    fn tiers_resolve_users_and_report_empty_targets() {
        let mut directory = Directory::default();
        directory
            .users
            .insert("alice".into(), user("alice", vec![]));
        let tier = Tier {
            level: "L1".into(),
            targets: vec![
                Target::User("alice".into()),
                Target::User("alice".into()),
                Target::Schedule("none".into()),
            ],
            after: TimeDelta::zero(),
        };
        let (users, empty) = directory.resolve(&tier, Utc::now());
        assert_eq!(users.len(), 1);
        assert_eq!(empty, ["schedule:none"]);
        assert_eq!(
            directory
                .user_by_phone("0033-600000001")
                .map(|u| u.id.as_str()),
            None
        );
        assert_eq!(
            directory
                .user_by_phone("+33600000001")
                .map(|u| u.id.as_str()),
            Some("alice")
        );
    }
}
