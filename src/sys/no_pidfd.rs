//! Unix systems with no process-exit descriptor here (and Miri): child
//! exits are learned from `SIGCHLD`.

use std::io;
use std::os::fd::OwnedFd;

/// Always `None`: the caller waits for `SIGCHLD` instead.
pub(crate) fn process_exit_fd(_pid: u32) -> io::Result<Option<OwnedFd>> {
    Ok(None)
}

/// Pipes keep the size the OS gives them here.
pub(crate) fn grow_pipe(_pipe: std::os::fd::BorrowedFd<'_>) {}
