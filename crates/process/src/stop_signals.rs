//! The signals that stop a run of this program: `exec` and `build` stop on SIGINT (Ctrl-C),
//! SIGTERM (a supervisor, `timeout`, CI cancelling this job) and SIGHUP (the terminal went
//! away); the daemon on SIGTERM and SIGINT ([`StopSignals::DAEMON`]). The caller decides
//! what the first and the second signal do.

/// One of the signals a run stops on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
    Hangup,
}

impl StopSignal {
    /// The signal's name, e.g. `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Hangup => "SIGHUP",
        }
    }

    /// The shell's exit code for a process the signal ended: 128 + its number.
    pub fn exit_code(self) -> u8 {
        match self {
            StopSignal::Interrupt => 130,
            StopSignal::Terminate => 143,
            StopSignal::Hangup => 129,
        }
    }

    fn kind(self) -> tokio::signal::unix::SignalKind {
        use tokio::signal::unix::SignalKind;
        match self {
            StopSignal::Interrupt => SignalKind::interrupt(),
            StopSignal::Terminate => SignalKind::terminate(),
            StopSignal::Hangup => SignalKind::hangup(),
        }
    }
}

/// Listens for a set of [`StopSignal`]s (from its creation on: a signal that arrives
/// before [`StopSignals::next`] is awaited is not lost).
#[derive(Debug)]
pub struct StopSignals {
    listening: Vec<(StopSignal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    /// What stops `exec` and `build`.
    pub const RUN: &[StopSignal] = &[
        StopSignal::Interrupt,
        StopSignal::Terminate,
        StopSignal::Hangup,
    ];
    /// What stops the daemon (SIGHUP is left alone, as most daemons do).
    pub const DAEMON: &[StopSignal] = &[StopSignal::Terminate, StopSignal::Interrupt];

    /// Starts listening (inside a tokio runtime).
    pub fn new(signals: &[StopSignal]) -> std::io::Result<StopSignals> {
        let listening = signals
            .iter()
            .map(|&s| Ok((s, tokio::signal::unix::signal(s.kind())?)))
            .collect::<std::io::Result<_>>()?;
        Ok(StopSignals { listening })
    }

    /// The next signal of the set that arrives.
    pub async fn next(&mut self) -> StopSignal {
        let waits = self.listening.iter_mut().map(|(signal, stream)| {
            let signal = *signal;
            Box::pin(async move {
                // A stream only ends with the runtime; then nothing will arrive.
                if stream.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
                signal
            })
        });
        futures_util::future::select_all(waits).await.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::{Signal, raise};

    #[tokio::test]
    async fn each_signal_of_the_set_is_told_apart_and_none_is_lost_before_the_wait() {
        let mut signals = StopSignals::new(&[StopSignal::Terminate, StopSignal::Hangup]).unwrap();
        raise(Signal::SIGHUP).unwrap();
        assert_eq!(signals.next().await, StopSignal::Hangup);
        raise(Signal::SIGTERM).unwrap();
        assert_eq!(signals.next().await, StopSignal::Terminate);
        assert_eq!(
            (StopSignal::Hangup.exit_code(), StopSignal::Terminate.name()),
            (129, "SIGTERM")
        );
    }
}
