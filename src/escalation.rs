//! The escalation engine's decisions: which tier pages whom and when the next step is
//! due. Pure: it returns [`crate::page`] values; the pipeline turns them into rows and
//! the store keeps the timers, so a restart loses no step.

use crate::incident::{Incident, TimelineKind};
use crate::oncall::{Channel, Directory, EscalationPolicy, Tier};
use crate::page::{Escalation, EscalationState, NotificationKind, Page};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{BTreeSet, HashMap};

/// What one pass over a due escalation decided.
#[derive(Debug, Default)]
pub struct Paging {
    /// The messages to queue.
    pub pages: Vec<Page>,
    /// `(kind, message)` lines for the incident timeline.
    pub timeline: Vec<(TimelineKind, String)>,
    /// Levels paged, for `tocsin_escalations_total{level}`.
    pub levels: Vec<String>,
    /// The timer to keep, or `None` to delete it.
    pub next: Option<Escalation>,
    /// A tier beyond the first (or a repeat) was paged.
    pub escalated: bool,
}

/// The timer of a new incident: its first tier is due after that tier's delay.
pub fn start(policy: &EscalationPolicy, incident: &Incident, now: DateTime<Utc>) -> Escalation {
    Escalation {
        incident_id: incident.id,
        policy: policy.name.clone(),
        tier: 0,
        cycle: 0,
        steps: 0,
        due_at: policy.tiers.first().map(|tier| now + tier.after),
        state: EscalationState::Tiers,
        last_step: None,
    }
}

/// Pages every tier that is due at `now`, skipping tiers with nobody on call, and
/// sets the timer for the next one. `force` pages the next tier even if not yet due
/// (a responder's `escalate`).
pub fn page_due(
    mut escalation: Escalation,
    policy: &EscalationPolicy,
    incident: &mut Incident,
    directory: &Directory,
    deadline: &dyn Fn(Channel) -> TimeDelta,
    now: DateTime<Utc>,
    force: bool,
) -> Paging {
    let mut paging = Paging::default();
    let mut force = force;
    // Bounded: each pass advances one tier, and a policy has tiers × (repeat + 1) steps.
    let budget = policy.tiers.len() * (policy.repeat as usize + 1) + 1;
    for _ in 0..budget {
        let due = escalation.due_at.is_some_and(|due| due <= now);
        if !(due || force) {
            break;
        }
        force = false;
        let Some(tier) = usize::try_from(escalation.tier)
            .ok()
            .and_then(|i| policy.tiers.get(i))
        else {
            escalation.due_at = None;
            break;
        };
        let step = format!("{}#{}", tier.level, escalation.steps);
        let anyone = page_tier(tier, &step, incident, directory, deadline, now, &mut paging);
        if !anyone {
            // Nobody could be reached: move on to the next tier now rather than wait.
            paging.timeline.push((
                TimelineKind::EscalationSkipped,
                format!("{} skipped: nobody to page", tier.level),
            ));
            escalation.steps += 1;
            advance(&mut escalation, policy, now);
            if escalation.due_at.is_some() {
                escalation.due_at = Some(now);
            }
            continue;
        }
        incident.escalation_level = tier.level.clone();
        paging.levels.push(tier.level.clone());
        paging.escalated |= escalation.tier > 0 || escalation.cycle > 0;
        escalation.last_step = Some(step);
        escalation.steps += 1;
        advance(&mut escalation, policy, now);
    }
    paging.next = Some(escalation);
    paging
}

/// Queues the pages of one tier; returns false when nobody could be reached.
fn page_tier(
    tier: &Tier,
    step: &str,
    incident: &Incident,
    directory: &Directory,
    deadline: &dyn Fn(Channel) -> TimeDelta,
    now: DateTime<Utc>,
    paging: &mut Paging,
) -> bool {
    let (users, nobody) = directory.resolve(tier, now);
    for target in &nobody {
        paging.timeline.push((
            TimelineKind::Paging,
            format!("{}: nobody is on call for {target}", tier.level),
        ));
    }
    let mut paged = Vec::new();
    let mut unreachable = Vec::new();
    for user in users {
        let mut channels = Vec::new();
        for rule in user.rules_for(incident.priority) {
            let Some(address) = user.address(rule.channel) else {
                continue;
            };
            let due_at = now + rule.after;
            paging.pages.push(Page {
                incident_id: incident.id,
                user_id: user.id.clone(),
                channel: rule.channel,
                address: address.to_string(),
                kind: NotificationKind::Page,
                step: step.to_string(),
                due_at,
                deadline: due_at + deadline(rule.channel),
            });
            channels.push(rule.channel.as_str());
        }
        if channels.is_empty() {
            unreachable.push(user.id.clone());
        } else {
            paged.push(format!("{} ({})", user.id, channels.join(", ")));
        }
    }
    if !unreachable.is_empty() {
        paging.timeline.push((
            TimelineKind::Paging,
            format!(
                "{}: no channel reaches {} for a {} incident",
                tier.level,
                unreachable.join(", "),
                incident.priority
            ),
        ));
    }
    if !paged.is_empty() {
        paging.timeline.push((
            TimelineKind::Escalated,
            format!("{} paged: {}", tier.level, paged.join(", ")),
        ));
    }
    !paged.is_empty()
}

/// After a priority upgrade: pages the last paged tier again under the new priority.
/// Channels already used for that step are not used again (the outbox drops
/// duplicates), so only channels the upgrade made eligible (such as SMS for P2 and
/// above) go out.
pub fn repage_after_upgrade(
    escalation: &Escalation,
    policy: &EscalationPolicy,
    incident: &Incident,
    directory: &Directory,
    deadline: &dyn Fn(Channel) -> TimeDelta,
    now: DateTime<Utc>,
) -> Paging {
    let mut paging = Paging::default();
    let Some(step) = escalation.last_step.as_deref() else {
        return paging;
    };
    let level = step.split('#').next().unwrap_or_default();
    if let Some(tier) = policy.tiers.iter().find(|tier| tier.level == level) {
        page_tier(tier, step, incident, directory, deadline, now, &mut paging);
    }
    paging.next = Some(escalation.clone());
    paging
}

fn advance(escalation: &mut Escalation, policy: &EscalationPolicy, now: DateTime<Utc>) {
    let next = usize::try_from(escalation.tier + 1).unwrap_or(usize::MAX);
    if let Some(tier) = policy.tiers.get(next) {
        escalation.tier += 1;
        escalation.due_at = Some(now + tier.after);
    } else if escalation.cycle < i64::from(policy.repeat) {
        escalation.tier = 0;
        escalation.cycle += 1;
        escalation.due_at = Some(now + policy.repeat_after);
    } else {
        escalation.due_at = None;
    }
}

/// After an acknowledgement: the timer that re-triggers the incident when it is not
/// resolved within the policy's `ack_timeout`, or none.
pub fn acknowledged(
    escalation: Option<Escalation>,
    policy: Option<&EscalationPolicy>,
    now: DateTime<Utc>,
) -> Option<Escalation> {
    let timeout = policy?.ack_timeout?;
    let mut escalation = escalation?;
    escalation.state = EscalationState::AckTimeout;
    escalation.due_at = Some(now + timeout);
    Some(escalation)
}

/// The ack timeout expired: start the policy again from its first tier.
pub fn retrigger(mut escalation: Escalation, now: DateTime<Utc>) -> Escalation {
    escalation.state = EscalationState::Tiers;
    escalation.tier = 0;
    escalation.cycle = 0;
    escalation.due_at = Some(now);
    escalation
}

/// The escalation timers of the open incidents, kept beside them so a decision reads
/// an incident's timer as it reads the incident, and the timer pass finds the due
/// ones soonest first without walking every open incident.
#[derive(Debug, Default)]
pub struct Timers {
    of: HashMap<i64, Escalation>,
    due: BTreeSet<(DateTime<Utc>, i64)>,
}

impl Timers {
    /// The timer of an incident, if its escalation still runs or waits.
    pub fn get(&self, incident_id: i64) -> Option<&Escalation> {
        self.of.get(&incident_id)
    }

    /// Keeps (or replaces) an incident's timer.
    pub fn set(&mut self, timer: Escalation) {
        self.end(timer.incident_id);
        if let Some(at) = timer.due_at {
            self.due.insert((at, timer.incident_id));
        }
        self.of.insert(timer.incident_id, timer);
    }

    /// Drops an incident's timer: its escalation ended.
    pub fn end(&mut self, incident_id: i64) {
        if let Some(old) = self.of.remove(&incident_id)
            && let Some(at) = old.due_at
        {
            self.due.remove(&(at, incident_id));
        }
    }

    /// The timers due at or before `now`, soonest first; they stay until set or
    /// ended.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<Escalation> {
        self.due
            .iter()
            .take_while(|(at, _)| *at <= now)
            .filter_map(|(_, id)| self.of.get(id).cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, AlertAction, AlertStatus, Labels, Priority, Severity};
    use crate::oncall::{NotifyRule, Target, User};
    use crate::rules::Classification;
    use crate::sla::SlaTarget;

    fn directory() -> Directory {
        let mut directory = Directory::default();
        for id in ["alice", "carol", "dave"] {
            directory.users.insert(
                id.into(),
                User {
                    id: id.into(),
                    name: id.into(),
                    email: Some(format!("{id}@example.com")),
                    phone: Some("+15550001".into()),
                    webhook: None,
                    slack: None,
                    telegram: None,
                    ntfy_topic: None,
                    teams_webhook: None,
                    mattermost_webhook: None,
                    notify: vec![
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
                },
            );
        }
        let tier = |level: &str, user: &str, after: i64| Tier {
            level: level.into(),
            targets: vec![Target::User(user.into())],
            after: TimeDelta::minutes(after),
        };
        directory.policies.insert(
            "default".into(),
            EscalationPolicy {
                name: "default".into(),
                tiers: vec![
                    tier("L1", "alice", 0),
                    tier("L2", "carol", 10),
                    tier("L3", "dave", 20),
                ],
                repeat: 0,
                repeat_after: TimeDelta::minutes(20),
                ack_timeout: None,
            },
        );
        directory
    }

    fn incident(now: DateTime<Utc>) -> Incident {
        let alert = Alert {
            source: "generic".into(),
            dedup_key: "k".into(),
            resource: "db".into(),
            check: "pg".into(),
            severity: Severity::Critical,
            status: AlertStatus::Firing,
            action: AlertAction::Report,
            summary: "down".into(),
            details: serde_json::Value::Null,
            labels: Labels::new(),
            links: vec![],
            occurred_at: None,
        };
        let class = Classification {
            priority: Priority::P1,
            rule: None,
            escalation_policy: None,
            runbooks: vec![],
            group_key: None,
        };
        let sla = SlaTarget {
            respond: TimeDelta::minutes(15),
            resolve: TimeDelta::hours(1),
            escalate_on_breach: false,
        };
        Incident::open(1, &alert, &class, sla, now)
    }

    #[test]
    fn tiers_page_in_order_each_once() {
        let directory = directory();
        let policy = directory.policy_for(None).unwrap();
        let deadline = |_: Channel| TimeDelta::hours(24);
        let t0 = Utc::now();
        let mut incident = incident(t0);
        let escalation = start(policy, &incident, t0);
        let first = page_due(
            escalation,
            policy,
            &mut incident,
            &directory,
            &deadline,
            t0,
            false,
        );
        assert_eq!(first.pages.len(), 2, "alice by email and sms");
        assert_eq!(first.levels, ["L1"]);
        let next = first.next.unwrap();
        assert_eq!(next.due_at, Some(t0 + TimeDelta::minutes(10)));
        // Not due yet: nothing happens.
        let early = page_due(
            next.clone(),
            policy,
            &mut incident,
            &directory,
            &deadline,
            t0 + TimeDelta::minutes(9),
            false,
        );
        assert!(early.pages.is_empty());
        let second = page_due(
            next,
            policy,
            &mut incident,
            &directory,
            &deadline,
            t0 + TimeDelta::minutes(10),
            false,
        );
        assert_eq!(second.pages[0].user_id, "carol");
        assert_eq!(second.pages[0].step, "L2#1");
        assert_eq!(incident.escalation_level, "L2");
        let third_due = second.next.unwrap();
        assert_eq!(third_due.due_at, Some(t0 + TimeDelta::minutes(30)));
        let third = page_due(
            third_due,
            policy,
            &mut incident,
            &directory,
            &deadline,
            t0 + TimeDelta::minutes(30),
            false,
        );
        assert_eq!(third.pages[0].user_id, "dave");
        assert_eq!(
            third.next.unwrap().due_at,
            None,
            "repeat = 0: the policy runs once"
        );
    }

    #[test]
    fn an_upgrade_to_p1_adds_only_the_newly_eligible_channels() {
        let directory = directory();
        let policy = directory.policy_for(None).unwrap();
        let now = Utc::now();
        let mut incident = incident(now);
        incident.priority = Priority::P3;
        let first = page_due(
            start(policy, &incident, now),
            policy,
            &mut incident,
            &directory,
            &|_| TimeDelta::hours(1),
            now,
            false,
        );
        let timer = first.next.unwrap();
        incident.priority = Priority::P1;
        let again = repage_after_upgrade(
            &timer,
            policy,
            &incident,
            &directory,
            &|_| TimeDelta::hours(1),
            now,
        );
        let channels: Vec<(Channel, &str)> = again
            .pages
            .iter()
            .map(|n| (n.channel, n.step.as_str()))
            .collect();
        assert_eq!(
            channels,
            [(Channel::Email, "L1#0"), (Channel::Sms, "L1#0")],
            "same step: the email is a duplicate the store drops"
        );
    }

    #[test]
    fn a_p3_skips_sms_rules_with_min_priority_p2() {
        let directory = directory();
        let policy = directory.policy_for(None).unwrap();
        let now = Utc::now();
        let mut incident = incident(now);
        incident.priority = Priority::P3;
        let paging = page_due(
            start(policy, &incident, now),
            policy,
            &mut incident,
            &directory,
            &|_| TimeDelta::hours(1),
            now,
            false,
        );
        assert_eq!(paging.pages.len(), 1);
        assert_eq!(paging.pages[0].channel, Channel::Email);
    }

    #[test]
    fn timers_come_due_soonest_first_and_end_with_their_escalation() {
        let at = |minute| DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(minute);
        let timer = |incident_id, due_at| Escalation {
            incident_id,
            policy: "default".into(),
            tier: 0,
            cycle: 0,
            steps: 0,
            due_at,
            state: EscalationState::Tiers,
            last_step: None,
        };
        let ids = |timers: Vec<Escalation>| -> Vec<i64> {
            timers.iter().map(|timer| timer.incident_id).collect()
        };
        let mut timers = Timers::default();
        timers.set(timer(3, Some(at(30))));
        timers.set(timer(1, Some(at(10))));
        timers.set(timer(2, None));
        assert_eq!(ids(timers.due(at(5))), Vec::<i64>::new());
        assert_eq!(ids(timers.due(at(30))), vec![1, 3]);
        // Paged and moved on: due later, not twice.
        timers.set(timer(1, Some(at(40))));
        assert_eq!(ids(timers.due(at(30))), vec![3]);
        timers.end(3);
        assert_eq!(ids(timers.due(at(60))), vec![1]);
        assert!(timers.get(3).is_none());
        assert_eq!(timers.get(2).map(|timer| timer.due_at), Some(None));
    }
}
