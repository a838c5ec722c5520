//! One timer pass for all replicas. Every replica ticks every 250 ms, and a pass
//! takes the whole write turn: it waits for every batch in flight on every replica
//! and reads the open incidents again. One pass a period serves them all, so a
//! replica skips its tick while another replica's pass is younger than a period —
//! the first to pass keeps passing, and when it stops, the next tick of another
//! replica passes. A replica still passes once its view is older than
//! [`VIEW_KEPT`]: the pass reloads it, so incidents other replicas resolved leave
//! its memory and its open-incident gauge.

use super::{Command, Queued, Writer};
use chrono::{DateTime, TimeDelta, Utc};

/// Another replica's pass younger than this makes this replica's tick needless (the
/// scheduler's period).
const PERIOD: TimeDelta = TimeDelta::milliseconds(250);
/// A replica's view is read again at least this often.
const VIEW_KEPT: TimeDelta = TimeDelta::seconds(10);

impl Writer {
    /// With replicas, the commands without the ticks another replica's recent pass
    /// made needless, which are answered (nothing fired); and whether a pass remains.
    pub(super) async fn share_timer_pass(&mut self, commands: Vec<Queued>) -> (Vec<Queued>, bool) {
        let ticks = commands
            .iter()
            .any(|queued| matches!(queued.command, Command::Tick { .. }));
        if !ticks || !self.decider.replicas || !self.passed_elsewhere().await {
            return (commands, ticks && self.decider.replicas);
        }
        let mut rest = Vec::with_capacity(commands.len());
        for queued in commands {
            match queued.command {
                Command::Tick { reply } => {
                    // Its sender may have given up; nothing to tell then.
                    let _ = reply.send(Ok(0));
                }
                command => rest.push(Queued { command, ..queued }),
            }
        }
        (rest, false)
    }

    /// Tells the other replicas this one passed over the timers at `now`: worth no
    /// error, a lost mark costs them one pass.
    pub(super) async fn mark_timer_pass(&mut self, now: DateTime<Utc>) {
        let at = crate::clock::from_millis(crate::clock::to_millis(now));
        match self.store.mark_timers_passed(at).await {
            Ok(()) => self.own_pass = Some(at),
            Err(error) => tracing::warn!(%error, "cannot tell other replicas of a timer pass"),
        }
    }

    async fn passed_elsewhere(&self) -> bool {
        let now = self.clock.now();
        if now - self.reloaded_at >= VIEW_KEPT {
            return false;
        }
        match self.store.timers_passed_at().await {
            // A pass stamped ahead of this clock (another replica's clock runs fast)
            // is recent too: that replica keeps passing.
            Ok(at) => Some(at) != self.own_pass && now - at < PERIOD,
            Err(error) => {
                tracing::warn!(%error, "cannot read when the timers were last passed; passing");
                false
            }
        }
    }
}
