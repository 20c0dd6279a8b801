//! Helpers of the process tests (Unix: they read `/proc`).
#![cfg(unix)]

use std::time::{Duration, Instant};

/// Pids of this process's children that are zombies (exited, not reaped).
pub(crate) fn zombie_children() -> Vec<u32> {
    let me = std::process::id();
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces; split after ')'.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let mut fields = rest.split(' ');
        let state = fields.next().unwrap();
        let ppid: u32 = fields.next().unwrap().parse().unwrap();
        if ppid == me && state == "Z" {
            zombies.push(pid);
        }
    }
    zombies
}

/// Whether process `pid` exists (as a live process or a zombie).
pub(crate) fn exists(pid: u32) -> bool {
    // SAFETY: signal 0 checks for existence only.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

pub(crate) fn until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}
