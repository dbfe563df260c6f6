//! The rows the server has not acknowledged, and the arithmetic of Gitea's UpdateLog
//! (docs/internals/gitea-protocol.md), with no IO: every call sends `index` = the first
//! unacknowledged row and the unacknowledged rows after it (capped per call); the answer's
//! `ack_index` drops the rows below it; an `ack_index` above what was sent is clamped to it; one below
//! what was acknowledged before means the server lost rows, which are then sent again
//! from the spool.
//!
//! Only a window of the unacknowledged rows is in memory: rows that are also in the spool
//! wait only there once [`IN_MEMORY_BYTES`] are held ([`Outbox::push_spooled`]), and are
//! read back as acknowledgements make room ([`Outbox::wanted_from_disk`]), so a step that
//! prints faster than the server takes its log (or while the server is down) costs disk,
//! not memory.
//!
//! It also remembers how far calls whose answer never came may have reached: such a call
//! may have stored rows the reporter still counts as unacknowledged, which decides whether
//! the final `no_more` call needs a sentinel row to be sure the server archives the log.

use std::collections::VecDeque;
use std::time::Instant;

use super::rows::Row;

/// About the most memory the unacknowledged rows of one task take (content plus
/// [`ROW_WEIGHT`] each); the rest of them stay in the spool.
pub(crate) const IN_MEMORY_BYTES: usize = 4 << 20;
/// What a row costs in memory besides its content.
const ROW_WEIGHT: usize = 64;

fn weight(row: &Row) -> usize {
    row.content.len() + ROW_WEIGHT
}

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

/// Unacknowledged rows `acked..total()`, in order: the first ones in memory, the
/// `on_disk` after them only in the spool.
#[derive(Debug)]
pub(crate) struct Outbox {
    acked: i64,
    queue: VecDeque<Pending>,
    /// The weight of the rows in `queue`.
    queue_bytes: usize,
    /// Rows after `queue` that are only in the spool.
    on_disk: i64,
    /// The most `queue_bytes` that rows from the spool are taken in for.
    limit: usize,
    /// One past the highest row index ever sent (rows below it are sent "again").
    sent_end: i64,
    /// One past the highest row a call without an answer may have stored.
    unknown_end: i64,
}

impl Outbox {
    /// An outbox whose server already holds rows `0..acked`.
    pub(crate) fn new(acked: i64) -> Outbox {
        Outbox::restored(acked, 0)
    }

    /// An outbox whose server holds rows `0..acked`, with the `on_disk` rows after them
    /// in the spool (a task a stopped daemon left).
    pub(crate) fn restored(acked: i64, on_disk: i64) -> Outbox {
        Outbox {
            acked,
            queue: VecDeque::new(),
            queue_bytes: 0,
            on_disk: on_disk.max(0),
            limit: IN_MEMORY_BYTES,
            sent_end: acked,
            unknown_end: acked,
        }
    }

    /// The same with another memory window (tests).
    #[cfg(test)]
    pub(crate) fn with_limit(mut self, limit: usize) -> Outbox {
        self.limit = limit;
        self
    }

    /// Rows `0..acked()` are acknowledged.
    pub(crate) fn acked(&self) -> i64 {
        self.acked
    }

    /// One past the last row.
    pub(crate) fn total(&self) -> i64 {
        self.acked + self.queue.len() as i64 + self.on_disk
    }

    pub(crate) fn unacked(&self) -> usize {
        self.queue.len() + usize::try_from(self.on_disk).unwrap_or(0)
    }

    /// The weight of the rows held in memory.
    #[cfg(test)]
    pub(crate) fn memory_bytes(&self) -> usize {
        self.queue_bytes
    }

    /// When the oldest unacknowledged row arrived.
    pub(crate) fn oldest(&self) -> Option<Instant> {
        self.queue.front().map(|p| p.received)
    }

    /// Queues a row that is only in memory (the spool failed). Every row the spool holds
    /// must have been taken back in first ([`Outbox::wanted_from_disk`] with `all`).
    pub(crate) fn push(&mut self, row: Row, received: Instant) {
        debug_assert_eq!(self.on_disk, 0, "a memory row after rows on disk");
        self.queue_bytes += weight(&row);
        self.queue.push_back(Pending { row, received });
    }

    /// Queues a row the spool holds: in memory while the window has room and no earlier
    /// row waits on disk, else only counted.
    pub(crate) fn push_spooled(&mut self, row: Row, received: Instant) {
        if self.on_disk > 0 || self.queue_bytes + weight(&row) > self.limit {
            self.on_disk += 1;
        } else {
            self.push(row, received);
        }
    }

    /// Rows to read back from the spool now, as (first index, at most this many rows, about
    /// this many content bytes): when rows wait there and the memory window is at most half
    /// full; with `all`, every one of them whatever the window.
    pub(crate) fn wanted_from_disk(&self, all: bool) -> Option<(i64, usize, usize)> {
        if self.on_disk == 0 || !(all || self.queue_bytes <= self.limit / 2) {
            return None;
        }
        let from = self.acked + self.queue.len() as i64;
        let rows = usize::try_from(self.on_disk).unwrap_or(usize::MAX);
        let bytes = if all {
            usize::MAX
        } else {
            self.limit - self.queue_bytes
        };
        Some((from, rows, bytes))
    }

    /// Takes in the next rows from the spool (at most the rows on disk).
    pub(crate) fn refilled(&mut self, rows: Vec<Row>, received: Instant) {
        let taken = rows.len().min(usize::try_from(self.on_disk).unwrap_or(0));
        for row in rows.into_iter().take(taken) {
            self.queue_bytes += weight(&row);
            self.queue.push_back(Pending { row, received });
        }
        self.on_disk -= taken as i64;
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
        let acked = self
            .queue
            .drain(..count)
            .map(|p| {
                self.queue_bytes -= weight(&p.row);
                p.received
            })
            .collect();
        self.acked += count as i64;
        AckOutcome::Advanced { acked, clamped }
    }

    /// Puts back rows `from..acked()` (read from the spool) after the server lost them,
    /// in memory (the spool failed, so later rows may not be in it).
    pub(crate) fn rewind(&mut self, from: i64, rows: Vec<Row>, now: Instant) {
        debug_assert_eq!(from + rows.len() as i64, self.acked);
        for row in rows.into_iter().rev() {
            self.queue_bytes += weight(&row);
            self.queue.push_front(Pending { row, received: now });
        }
        self.acked = from;
    }

    /// After the server lost rows `from..acked()`, with every row in the spool: all rows
    /// from `from` on wait on disk again, to be read back in order.
    pub(crate) fn spill_back(&mut self, from: i64) {
        let from = from.clamp(0, self.acked);
        self.on_disk += self.queue.len() as i64 + (self.acked - from);
        self.queue.clear();
        self.queue_bytes = 0;
        self.acked = from;
    }

    /// Notes that the server may hold every row (calls whose answers died with a daemon).
    pub(crate) fn record_all_unknown(&mut self) {
        self.unknown_end = self.unknown_end.max(self.total());
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

    fn row(content: String) -> Row {
        Row {
            time: SystemTime::now(),
            content,
        }
    }

    #[test]
    fn past_the_memory_window_spooled_rows_wait_on_disk_and_come_back_in_order() {
        // Rows of 36 + 64 bytes: a 1,000-byte window holds 10.
        let mut o = Outbox::new(0).with_limit(1000);
        let now = Instant::now();
        for i in 0..25 {
            o.push_spooled(row(format!("{i:036}")), now);
        }
        assert_eq!((o.total(), o.unacked(), o.memory_bytes()), (25, 25, 1000));
        assert_eq!(o.wanted_from_disk(false), None, "the window is full");
        let b = o.batch(100, 1 << 20);
        assert_eq!(
            (b.index, b.rows.len()),
            (0, 10),
            "a call carries only rows in memory"
        );
        o.record_sent(&b);
        o.on_ack(&b, 6);
        assert_eq!(o.memory_bytes(), 400);
        // At most half full: read back the rows after the four in memory, up to the window.
        assert_eq!(o.wanted_from_disk(false), Some((10, 15, 600)));
        let back = (10..16).map(|i| row(format!("{i:036}"))).collect();
        o.refilled(back, now);
        assert_eq!((o.total(), o.unacked(), o.memory_bytes()), (25, 19, 1000));
        // A row printed now still waits behind the rows on disk.
        o.push_spooled(row(format!("{:036}", 25)), now);
        assert_eq!(o.total(), 26);
        let b = o.batch(100, 1 << 20);
        assert_eq!(b.index, 6);
        assert_eq!(
            contents(&b),
            (6..16).map(|i| format!("{i:036}")).collect::<Vec<_>>()
        );
        o.record_sent(&b);
        o.on_ack(&b, 16);
        assert_eq!(o.wanted_from_disk(false), Some((16, 10, 1000)));
        assert_eq!(o.wanted_from_disk(true), Some((16, 10, usize::MAX)));
    }

    #[test]
    fn rows_the_server_lost_wait_on_disk_again_when_the_spool_holds_them() {
        let mut o = Outbox::new(0).with_limit(1000);
        let now = Instant::now();
        for i in 0..12 {
            o.push_spooled(row(format!("{i:036}")), now);
        }
        let b = o.batch(100, 1 << 20);
        o.record_sent(&b);
        o.on_ack(&b, 8);
        let b = o.batch(100, 1 << 20);
        o.record_sent(&b);
        assert_eq!(o.on_ack(&b, 3), AckOutcome::Lost { from: 3, had: 8 });
        o.spill_back(3);
        assert_eq!((o.acked(), o.total(), o.memory_bytes()), (3, 12, 0));
        assert_eq!(o.wanted_from_disk(false), Some((3, 9, 1000)));
        assert!(o.batch(100, 1 << 20).rows.is_empty());
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
