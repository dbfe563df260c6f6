//! Back-pressure from whoever consumes a process's output to the pipes it comes from.
//!
//! An [`OutputBudget`] counts what is handed on but not consumed yet (in any unit the two
//! sides agree on; the engine counts bytes of events). The producer adds what it hands on
//! ([`OutputBudget::take`], never blocking), the consumer gives it back
//! ([`OutputBudget::give_back`]), and a pipe reader awaits [`OutputBudget::room`] before
//! reading more: while the consumer lags, the pipe fills and the process's writes block, as
//! they would on a terminal. Nothing is dropped; what is in flight is bounded by the limit
//! plus what one read can produce.
//!
//! [`OutputSink`] is where a process's lines go: any `FnMut(OutputStream, &str)` closure
//! (no budget), or a type that also tells apart the pieces of a cut line and names a budget.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::host::OutputStream;

/// What may be handed on and not yet consumed before the pipes stop being read.
#[derive(Debug)]
pub struct OutputBudget {
    limit: usize,
    in_flight: AtomicUsize,
    freed: Notify,
}

impl OutputBudget {
    pub fn new(limit: usize) -> Self {
        OutputBudget {
            limit,
            in_flight: AtomicUsize::new(0),
            freed: Notify::new(),
        }
    }

    /// Counts `cost` as handed on. Never blocks: the producer's own messages (a step's
    /// start and end) always get through; only reading more output waits.
    pub fn take(&self, cost: usize) {
        self.in_flight.fetch_add(cost, Ordering::AcqRel);
    }

    /// Counts `cost` as consumed and wakes the readers waiting for room.
    pub fn give_back(&self, cost: usize) {
        let before = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(cost))
            })
            .unwrap_or(0);
        if before >= self.limit && before.saturating_sub(cost) < self.limit {
            self.freed.notify_waiters();
        }
    }

    /// What is handed on and not consumed yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Resolves once what is in flight is under the limit. Safe to cancel.
    pub async fn room(&self) {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a give_back in between is not missed.
            freed.as_mut().enable();
            if self.in_flight() < self.limit {
                return;
            }
            freed.await;
        }
    }
}

/// Where a running process's output lines go.
pub trait OutputSink: Send {
    /// One line of `stream`; `continued` when it is a piece of a longer line cut at
    /// [`crate::lines::MAX_LINE`] bytes whose rest comes next.
    fn line(&mut self, stream: OutputStream, line: &str, continued: bool);

    /// The budget the pipes wait for before each read, if any.
    fn budget(&self) -> Option<&OutputBudget> {
        None
    }
}

impl<F: FnMut(OutputStream, &str) + Send> OutputSink for F {
    fn line(&mut self, stream: OutputStream, line: &str, _continued: bool) {
        self(stream, line);
    }
}

/// Waits for room in a sink's budget, if it has one (see [`OutputSink::budget`]).
pub async fn room_in(budget: Option<&OutputBudget>) {
    if let Some(budget) = budget {
        budget.room().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn room_waits_until_the_consumer_gives_back() {
        let budget = Arc::new(OutputBudget::new(10));
        budget.take(4);
        budget.room().await;
        budget.take(8);
        assert_eq!(budget.in_flight(), 12);
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.room().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        budget.give_back(5);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("room after give_back")
            .expect("task");
        budget.give_back(100);
        assert_eq!(budget.in_flight(), 0);
    }
}
