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
    let mut any_process = false;
    for (_, _, stat) in processes()? {
        any_process = true;
        if is_live_member(&stat, pgid) {
            return Some(true);
        }
    }
    any_process.then_some(false)
}

/// The live members of group `pgid` that can only have missed a `signal` sent to the
/// group: the signal's action is still the default (neither caught nor ignored), none is
/// pending, and yet they run. Such a process was between `fork` and `exec` when the group
/// was signalled (the copy of a shell that had caught the signal takes it in that window,
/// then `exec` resets the handler and the new program never learns of it), or it ignored
/// the signal then and has since restored the default. Empty when `/proc` cannot be read.
pub(crate) fn members_that_missed(pgid: Pid, signal: Signal) -> Vec<Pid> {
    let Some(processes) = processes() else {
        return Vec::new();
    };
    let bit = 1u64 << (signal as i32 - 1);
    processes
        .filter(|(_, _, stat)| is_live_member(stat, pgid))
        .filter_map(|(pid, dir, _)| {
            let status = std::fs::read_to_string(dir.join("status")).ok()?;
            signal_masks(&status)
                .is_some_and(|handled| handled & bit == 0)
                .then_some(pid)
        })
        .collect()
}

/// Every process in `/proc` whose `stat` could be read (one that exits meanwhile is left
/// out), with its folder and `stat`; `None` when `/proc` cannot be read.
fn processes() -> Option<impl Iterator<Item = (Pid, std::path::PathBuf, String)>> {
    let entries = std::fs::read_dir("/proc").ok()?;
    Some(entries.flatten().filter_map(|entry| {
        let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        Some((Pid::from_raw(pid), entry.path(), stat))
    }))
}

/// Whether `stat` is that of a non-zombie process of group `pgid`.
fn is_live_member(stat: &str, pgid: Pid) -> bool {
    matches!(state_and_group(stat), Some((state, pgrp)) if pgrp == pgid.as_raw() && state != 'Z')
}

/// The union of the pending, ignored and caught signal masks of `/proc/<pid>/status`: a
/// signal outside it would have ended the process had it arrived.
fn signal_masks(status: &str) -> Option<u64> {
    let mut union = 0;
    let mut seen = 0;
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if matches!(key, "SigPnd" | "ShdPnd" | "SigIgn" | "SigCgt") {
            union |= u64::from_str_radix(value.trim(), 16).ok()?;
            seen += 1;
        }
    }
    (seen == 4).then_some(union)
}

/// Sends `signal` to one process; one that is already gone is no error.
pub(crate) fn signal_one(pid: Pid, signal: Signal) -> Result<(), Errno> {
    match nix::sys::signal::kill(pid, signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
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
    fn signal_masks_union_pending_ignored_and_caught() {
        let status = "Name:\tsleep\nSigQ:\t0/1\nSigPnd:\t0000000000000000\n\
                      ShdPnd:\t0000000000000100\nSigBlk:\t0000000000000002\n\
                      SigIgn:\t0000000000000004\nSigCgt:\t0000000000010000\n";
        assert_eq!(signal_masks(status), Some(0x10104));
        assert_eq!(signal_masks("Name:\tx\nSigPnd:\t0\n"), None);
    }

    #[test]
    fn this_process_does_not_count_as_missing_a_signal_it_catches_or_ignores() {
        // The test harness ignores nothing in particular, but SIGKILL can never be caught or
        // ignored, so asking about it lists this (live, default-action) process; SIGPIPE is
        // ignored by Rust's runtime, so asking about it never does.
        let own_group = nix::unistd::getpgrp();
        let me = nix::unistd::getpid();
        assert!(members_that_missed(own_group, Signal::SIGKILL).contains(&me));
        assert!(!members_that_missed(own_group, Signal::SIGPIPE).contains(&me));
    }

    #[test]
    fn own_group_is_alive_and_a_free_group_is_not() {
        let own = nix::unistd::getpgrp();
        assert!(alive(own));
        // A pid far above any pid_max default names no group.
        assert!(!alive(Pid::from_raw(i32::MAX - 1)));
    }
}
