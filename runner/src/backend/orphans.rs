//! Background processes a job's steps left running (`server &`), found and stopped when
//! the job ends, as GitHub's runner does: every step process gets `RUNNER_TRACKING_ID`
//! in its environment, children inherit it, and at the end of the job every process
//! still carrying the job's id is sent SIGTERM, then SIGKILL.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The variable GitHub's runner uses to tag a job's processes.
pub const TRACKING_VARIABLE: &str = "RUNNER_TRACKING_ID";

/// Processes whose environment holds `RUNNER_TRACKING_ID=<id>` (read from `/proc`);
/// processes that cannot be read (another user's) are passed over.
pub fn tracked_processes(id: &str) -> Vec<Pid> {
    let needle = format!("{TRACKING_VARIABLE}={id}");
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != own)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
        })
        .filter_map(|pid| i32::try_from(pid).ok().map(Pid::from_raw))
        .collect()
}

/// Stops every process still tagged with `id`: SIGTERM, then SIGKILL after `grace` for
/// those still there. Returns how many were found.
pub async fn stop_tracked(id: &str, grace: Duration) -> usize {
    let found = tracked_processes(id);
    for pid in &found {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    if found.is_empty() {
        return 0;
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline && !tracked_processes(id).is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for pid in tracked_processes(id) {
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
