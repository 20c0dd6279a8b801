//! Process exits as a descriptor on macOS and the BSDs: a kqueue of its own
//! per child, holding one `EVFILT_PROC` / `NOTE_EXIT` filter. A kqueue
//! descriptor is readable while it has a pending event, so the reactor's
//! poller (kqueue too) waits on it like on any handle, as on Linux it waits
//! on a `pidfd`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A descriptor that becomes readable when process `pid` exits; `None`
/// when the filter cannot be added (the caller falls back to `SIGCHLD`,
/// whose first `try_wait` finds a child that is gone already).
pub(crate) fn process_exit_fd(pid: u32) -> io::Result<Option<OwnedFd>> {
    // SAFETY: plain FFI, no arguments.
    let kq = unsafe { libc::kqueue() };
    if kq < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `kqueue` returned a new descriptor that nothing else owns.
    let kq = unsafe { OwnedFd::from_raw_fd(kq) };
    // SAFETY: all-zero is a valid `kevent` (integers and a null pointer).
    let mut change: libc::kevent = unsafe { std::mem::zeroed() };
    change.ident = pid as libc::uintptr_t;
    change.filter = libc::EVFILT_PROC;
    change.flags = libc::EV_ADD | libc::EV_ONESHOT;
    change.fflags = libc::NOTE_EXIT;
    // SAFETY: one valid change, no event list, no timeout.
    let rc = unsafe {
        libc::kevent(
            kq.as_raw_fd(),
            &change,
            1,
            std::ptr::null_mut(),
            0,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        return Ok(None);
    }
    Ok(Some(kq))
}

/// Pipes keep the size the OS gives them here.
pub(crate) fn grow_pipe(_pipe: std::os::fd::BorrowedFd<'_>) {}
