//! Background processes a job's steps left running (`server &`), found and stopped when
//! the job ends, as GitHub's runner does: every step process gets `RUNNER_TRACKING_ID`
//! in its environment, children inherit it, and at the end of the job every process
//! still carrying the job's id is sent SIGTERM, then SIGKILL.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The variable GitHub's runner uses to tag a job's processes.
pub const TRACKING_VARIABLE: &str = "RUNNER_TRACKING_ID";

/// The start of the tracking ids of every job run by the process `pid`
/// (`hybrid-runner_<pid>_`; the engine's `JobState::tracking_id` appends the job's
/// folder), so a daemon can stop what the jobs of a killed predecessor left running.
pub fn daemon_prefix(pid: u32) -> String {
    format!("hybrid-runner_{pid}_")
}

/// Processes whose environment holds `RUNNER_TRACKING_ID=<id>` (read from `/proc`);
/// processes that cannot be read (another user's) are passed over.
pub fn tracked_processes(id: &str) -> Vec<Pid> {
    matching_processes(|value| value == id.as_bytes())
}

/// Processes whose `RUNNER_TRACKING_ID` starts with `prefix`.
pub fn tracked_processes_with_prefix(prefix: &str) -> Vec<Pid> {
    matching_processes(|value| value.starts_with(prefix.as_bytes()))
}

fn matching_processes(matches: impl Fn(&[u8]) -> bool) -> Vec<Pid> {
    let needle = format!("{TRACKING_VARIABLE}=");
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != own)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|var| var.strip_prefix(needle.as_bytes()).is_some_and(&matches))
            })
        })
        .filter_map(|pid| i32::try_from(pid).ok().map(Pid::from_raw))
        .collect()
}

/// Stops every process still tagged with `id`: SIGTERM, then SIGKILL after `grace` for
/// those still there. Returns how many were found.
pub async fn stop_tracked(id: &str, grace: Duration) -> usize {
    stop_all(|| tracked_processes(id), grace).await
}

/// [`stop_tracked`] for every process whose tracking id starts with `prefix`.
pub async fn stop_tracked_prefix(prefix: &str, grace: Duration) -> usize {
    stop_all(|| tracked_processes_with_prefix(prefix), grace).await
}

async fn stop_all(find: impl Fn() -> Vec<Pid>, grace: Duration) -> usize {
    let found = find();
    for pid in &found {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    if found.is_empty() {
        return 0;
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline && !find().is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for pid in find() {
        let _ = kill(pid, Signal::SIGKILL);
    }
    found.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tagged_background_processes_are_found_and_stopped() {
        let id = format!("test-{}", std::process::id());
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30"])
            .env(TRACKING_VARIABLE, &id)
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            tracked_processes(&id).len() >= 2,
            "sh and its sleeps carry the id"
        );
        assert!(tracked_processes("some-other-id").is_empty());
        let stopped = stop_tracked(&id, Duration::from_secs(2)).await;
        assert!(stopped >= 2);
        let _ = child.wait();
        assert!(tracked_processes(&id).is_empty());
    }
}
