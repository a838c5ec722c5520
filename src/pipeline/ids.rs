//! Where the ids of new rows come from. SQLite's single writer counts on from the
//! largest stored id; replicas on PostgreSQL draw from blocks each reserved from a
//! sequence (`SharedWrites::reserve_ids`), topped up before a batch decides anything,
//! so the decision code takes ids without touching the store.

use crate::store::IdTable;
use std::collections::VecDeque;
use std::ops::Range;

/// The ids of one table this writer may hand out.
#[derive(Debug, Default)]
pub(super) struct IdPool {
    ranges: VecDeque<Range<i64>>,
    /// Ids asked for with none left: the batch must not be committed, and the next
    /// top-up reserves that many more.
    missing: i64,
}

impl IdPool {
    /// Every id from `next` on (one writer: nobody else takes any).
    pub(super) fn from(next: i64) -> Self {
        let mut ranges = VecDeque::new();
        ranges.push_back(next..i64::MAX);
        Self { ranges, missing: 0 }
    }

    /// The next id. None left is the caller's miscount of a batch's needs; it gets an
    /// id no row can have, and [`Ids::ran_short`] keeps the batch from being committed.
    pub(super) fn take(&mut self) -> i64 {
        while let Some(range) = self.ranges.front_mut() {
            if let Some(id) = range.next() {
                return id;
            }
            self.ranges.pop_front();
        }
        self.missing += 1;
        0
    }

    /// How many ids are left.
    pub(super) fn available(&self) -> i64 {
        self.ranges
            .iter()
            .map(|range| range.end - range.start)
            .fold(0_i64, i64::saturating_add)
    }

    pub(super) fn add(&mut self, blocks: Vec<Range<i64>>) {
        self.ranges.extend(blocks);
    }

    /// Ids the last batches asked for beyond the pool, forgotten once read.
    pub(super) fn take_missing(&mut self) -> i64 {
        std::mem::take(&mut self.missing)
    }
}

/// The pools of every table whose ids the writer assigns.
#[derive(Debug, Default)]
pub(super) struct Ids {
    pub(super) alerts: IdPool,
    pub(super) incidents: IdPool,
    pub(super) silences: IdPool,
    pub(super) runs: IdPool,
}

impl Ids {
    pub(super) fn pool(&mut self, table: IdTable) -> &mut IdPool {
        match table {
            IdTable::Alerts => &mut self.alerts,
            IdTable::Incidents => &mut self.incidents,
            IdTable::Silences => &mut self.silences,
            IdTable::Runs => &mut self.runs,
        }
    }

    /// Whether some pool ran dry in this batch.
    pub(super) fn ran_short(&self) -> bool {
        [&self.alerts, &self.incidents, &self.silences, &self.runs]
            .iter()
            .any(|pool| pool.missing > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_blocks_in_order_then_run_short() {
        let mut pool = IdPool::default();
        pool.add(vec![1000..1002, 5000..5001]);
        assert_eq!(pool.available(), 3);
        assert_eq!((pool.take(), pool.take(), pool.take()), (1000, 1001, 5000));
        assert_eq!(pool.take(), 0);
        assert_eq!(pool.take(), 0);
        assert_eq!(pool.take_missing(), 2, "reserved on top next time");
        assert_eq!(pool.take_missing(), 0);
    }

    #[test]
    fn one_writer_counts_on_without_end() {
        let mut pool = IdPool::from(42);
        assert_eq!((pool.take(), pool.take()), (42, 43));
        assert!(pool.available() > 1 << 60);
    }
}
