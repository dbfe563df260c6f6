//! A step's process group: signalling it and telling whether anything is left in it.
//!
//! "Left" means a live process: a zombie whose parent never reaps it (common in containers
//! whose PID 1 is not an init) no longer runs anything, so it must not hold the stop
//! sequence up. On Linux `/proc` tells zombies apart; elsewhere, or when `/proc` cannot be
//! read, a signal-0 probe answers (which counts zombies too).

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Sends `signal` to every process of group `pgid`; an already empty group is no error.
pub(crate) fn signal(pgid: Pid, signal: Signal) -> Result<(), Errno> {
    match killpg(pgid, signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether a live (non-zombie) process is left in group `pgid`.
pub(crate) fn alive(pgid: Pid) -> bool {
    if killpg(pgid, None).is_err() {
        return false;
    }
    live_member_in_proc(pgid).unwrap_or(true)
}

/// Scans `/proc` for a non-zombie process of the group; `None` when `/proc` is unreadable.
fn live_member_in_proc(pgid: Pid) -> Option<bool> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut any_process = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue; // exited meanwhile
        };
        any_process = true;
        if let Some((state, pgrp)) = state_and_group(&stat)
            && pgrp == pgid.as_raw()
            && state != 'Z'
        {
            return Some(true);
        }
    }
    any_process.then_some(false)
}

/// State and process group from `/proc/<pid>/stat`: `pid (comm) state ppid pgrp ...`,
/// where `comm` may itself contain spaces and parentheses.
fn state_and_group(stat: &str) -> Option<(char, i32)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let stat = "4242 (we (ird) name) Z 1 4240 4240 0 -1 4194560 ...";
        assert_eq!(state_and_group(stat), Some(('Z', 4240)));
        assert_eq!(state_and_group("garbage"), None);
    }

    #[test]
    fn own_group_is_alive_and_a_free_group_is_not() {
        let own = nix::unistd::getpgrp();
        assert!(alive(own));
        // A pid far above any pid_max default names no group.
        assert!(!alive(Pid::from_raw(i32::MAX - 1)));
    }
}
