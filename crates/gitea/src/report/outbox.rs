//! The rows the server has not acknowledged, and the arithmetic of Gitea's UpdateLog
//! (docs/internals/gitea-protocol.md), with no IO: every call sends `index` = the first
//! unacknowledged row and the unacknowledged rows after it (capped per call); the answer's
//! `ack_index` drops the rows below it; an `ack_index` above what was sent is clamped to it; one below
//! what was acknowledged before means the server lost rows, which are then sent again
//! from the spool.
//!
//! It also remembers how far calls whose answer never came may have reached: such a call
//! may have stored rows the reporter still counts as unacknowledged, which decides whether
//! the final `no_more` call needs a sentinel row to be sure the server archives the log.

use std::collections::VecDeque;
use std::time::Instant;

use super::rows::Row;

/// A row waiting for its acknowledgement.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub row: Row,
    /// When the reporter received it, for the latency histogram.
    pub received: Instant,
}

/// One UpdateLog call's rows: `rows[i]` has the global index `index + i`.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub index: i64,
    pub rows: Vec<Row>,
}

impl Batch {
    pub(crate) fn end(&self) -> i64 {
        self.index + self.rows.len() as i64
    }
}

/// What an answer's `ack_index` did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AckOutcome {
    /// Rows below the ack were dropped; their receipt instants are returned.
    Advanced {
        acked: Vec<Instant>,
        /// The server acknowledged more than the call sent; taken as what was sent.
        clamped: bool,
    },
    /// The ack is below what the server acknowledged before: it lost rows
    /// `from..had`, which must come back from the spool ([`Outbox::rewind`]).
    Lost { from: i64, had: i64 },
}

/// Unacknowledged rows `acked..total()`, in order.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    acked: i64,
    queue: VecDeque<Pending>,
    /// One past the highest row index ever sent (rows below it are sent "again").
    sent_end: i64,
    /// One past the highest row a call without an answer may have stored.
    unknown_end: i64,
}

impl Outbox {
    /// An outbox whose server already holds rows `0..acked`.
    pub(crate) fn new(acked: i64) -> Outbox {
        Outbox {
            acked,
            queue: VecDeque::new(),
            sent_end: acked,
            unknown_end: acked,
        }
    }

    /// Rows `0..acked()` are acknowledged.
    pub(crate) fn acked(&self) -> i64 {
        self.acked
    }

    /// One past the last row.
    pub(crate) fn total(&self) -> i64 {
        self.acked + self.queue.len() as i64
    }

    pub(crate) fn unacked(&self) -> usize {
        self.queue.len()
    }

    /// When the oldest unacknowledged row arrived.
    pub(crate) fn oldest(&self) -> Option<Instant> {
        self.queue.front().map(|p| p.received)
    }

    pub(crate) fn push(&mut self, row: Row, received: Instant) {
        self.queue.push_back(Pending { row, received });
    }

    /// The next call's rows: from the first unacknowledged row, at most `max_rows` rows
    /// and about `max_bytes` of content (always at least one row when any is waiting).
    pub(crate) fn batch(&self, max_rows: usize, max_bytes: usize) -> Batch {
        let mut bytes = 0;
        let rows = self
            .queue
            .iter()
            .take(max_rows.max(1))
            .enumerate()
            .take_while(|(i, p)| {
                bytes += p.row.content.len() + 16;
                *i == 0 || bytes <= max_bytes
            })
            .map(|(_, p)| p.row.clone())
            .collect();
        Batch {
            index: self.acked,
            rows,
        }
    }

    /// Notes a call carrying `batch` went out: (rows sent for the first time, rows sent
    /// again).
    pub(crate) fn record_sent(&mut self, batch: &Batch) -> (u64, u64) {
        let end = batch.end();
        let again = (end.min(self.sent_end) - batch.index).max(0);
        let first = (end - batch.index) - again;
        self.sent_end = self.sent_end.max(end);
        (first as u64, again as u64)
    }

    /// Notes a call carrying `batch` got no answer: the server may hold its rows.
    pub(crate) fn record_unknown(&mut self, batch: &Batch) {
        self.unknown_end = self.unknown_end.max(batch.end());
    }

    /// The most rows the server may hold (acknowledged, or stored by a call whose answer
    /// was lost).
    pub(crate) fn server_may_hold(&self) -> i64 {
        self.acked.max(self.unknown_end)
    }

    /// Applies the `ack_index` answered to a call that carried `batch`.
    pub(crate) fn on_ack(&mut self, batch: &Batch, ack: i64) -> AckOutcome {
        let clamped = ack > batch.end();
        let ack = ack.min(batch.end());
        if ack < self.acked {
            return AckOutcome::Lost {
                from: ack.max(0),
                had: self.acked,
            };
        }
        let count = usize::try_from(ack - self.acked)
            .unwrap_or(0)
            .min(self.queue.len());
        let acked = self.queue.drain(..count).map(|p| p.received).collect();
        self.acked += count as i64;
        AckOutcome::Advanced { acked, clamped }
    }

    /// Puts back rows `from..acked()` (read from the spool) after the server lost them.
    pub(crate) fn rewind(&mut self, from: i64, rows: Vec<Row>, now: Instant) {
        debug_assert_eq!(from + rows.len() as i64, self.acked);
        for row in rows.into_iter().rev() {
            self.queue.push_front(Pending { row, received: now });
        }
        self.acked = from;
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn outbox_with(rows: usize) -> Outbox {
        let mut o = Outbox::new(0);
        let now = Instant::now();
        for i in 0..rows {
            o.push(
                Row {
                    time: SystemTime::now(),
                    content: format!("row {i}"),
                },
                now,
            );
        }
        o
    }

    fn contents(b: &Batch) -> Vec<String> {
        b.rows.iter().map(|r| r.content.clone()).collect()
    }

    #[test]
    fn a_full_ack_drops_the_rows_sent() {
        let mut o = outbox_with(5);
        let b = o.batch(100, 1 << 20);
        assert_eq!((b.index, b.rows.len()), (0, 5));
        assert_eq!(o.record_sent(&b), (5, 0));
        let AckOutcome::Advanced { acked, clamped } = o.on_ack(&b, 5) else {
            panic!("advanced")
        };
        assert_eq!((acked.len(), clamped), (5, false));
        assert_eq!((o.acked(), o.unacked(), o.total()), (5, 0, 5));
        assert!(o.oldest().is_none());
    }

    #[test]
    fn a_lagging_ack_resends_the_rest_from_it() {
        let mut o = outbox_with(10);
        let b = o.batch(100, 1 << 20);
        o.record_sent(&b);
        assert!(matches!(o.on_ack(&b, 7), AckOutcome::Advanced { .. }));
        let again = o.batch(100, 1 << 20);
        assert_eq!(again.index, 7);
        assert_eq!(contents(&again), ["row 7", "row 8", "row 9"]);
        assert_eq!(o.record_sent(&again), (0, 3), "all three were sent before");
    }

    #[test]
    fn an_ack_past_what_was_sent_is_clamped() {
        let mut o = outbox_with(10);
        let b = o.batch(4, 1 << 20);
        assert_eq!(b.rows.len(), 4);
        o.record_sent(&b);
        let AckOutcome::Advanced { acked, clamped } = o.on_ack(&b, 9) else {
            panic!("advanced")
        };
        assert!(clamped);
        assert_eq!((acked.len(), o.acked()), (4, 4));
        let next = o.batch(100, 1 << 20);
        assert_eq!(o.record_sent(&next), (6, 0));
    }

    #[test]
    fn an_ack_below_the_acked_rows_asks_for_them_again() {
        let mut o = outbox_with(6);
        let b = o.batch(3, 1 << 20);
        o.record_sent(&b);
        o.on_ack(&b, 3);
        let b = o.batch(100, 1 << 20);
        assert_eq!(b.index, 3);
        o.record_sent(&b);
        assert_eq!(o.on_ack(&b, 1), AckOutcome::Lost { from: 1, had: 3 });
        assert_eq!(o.acked(), 3, "nothing changes before the rewind");
        let lost = (1..3)
            .map(|i| Row {
                time: SystemTime::now(),
                content: format!("row {i}"),
            })
            .collect();
        o.rewind(1, lost, Instant::now());
        let again = o.batch(100, 1 << 20);
        assert_eq!(again.index, 1);
        assert_eq!(
            contents(&again),
            ["row 1", "row 2", "row 3", "row 4", "row 5"]
        );
        assert_eq!(o.record_sent(&again), (0, 5));
    }

    #[test]
    fn batches_are_capped_by_rows_and_bytes_but_never_empty() {
        let mut o = Outbox::new(40);
        let now = Instant::now();
        for size in [1000, 1000, 1000] {
            o.push(
                Row {
                    time: SystemTime::now(),
                    content: "x".repeat(size),
                },
                now,
            );
        }
        assert_eq!(o.batch(100, 2100).rows.len(), 2);
        assert_eq!(o.batch(100, 10).rows.len(), 1);
        assert_eq!(o.batch(0, 1 << 20).rows.len(), 1);
        assert_eq!(o.batch(100, 1 << 20).index, 40);
        assert_eq!(o.total(), 43);
    }

    #[test]
    fn unanswered_calls_raise_what_the_server_may_hold() {
        let mut o = outbox_with(8);
        assert_eq!(o.server_may_hold(), 0);
        let b = o.batch(5, 1 << 20);
        o.record_sent(&b);
        o.record_unknown(&b);
        assert_eq!(o.server_may_hold(), 5);
        let b = o.batch(100, 1 << 20);
        o.on_ack(&b, 8);
        assert_eq!(o.server_may_hold(), 8);
    }
}
