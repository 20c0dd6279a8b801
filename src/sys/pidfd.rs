//! Linux child-process primitives: process-exit descriptors
//! (`pidfd_open(2)`, Linux 5.3+, readable when the process exits, which the
//! reactor waits on like any other handle) and growing a pipe's buffer.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A descriptor that becomes readable when process `pid` exits; `None`
/// where the kernel has no `pidfd_open` (or refuses it), and the caller
/// falls back to `SIGCHLD`.
pub(crate) fn process_exit_fd(pid: u32) -> io::Result<Option<OwnedFd>> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // Blocking mode does not matter: the descriptor is only polled.
    // SAFETY: a plain syscall with integer arguments (pid, flags).
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            // No such syscall (old kernel) or filtered (seccomp): fall back.
            Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::EACCES) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: the syscall returned a new descriptor that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }))
}

/// How large `grow_pipe` makes a pipe: the default `pipe-max-size`, so no
/// privilege is needed.
const GROWN_PIPE: libc::c_int = 1 << 20;

/// Grows `pipe`'s buffer to 1 MiB (`F_SETPIPE_SZ`) so that each wake-up of
/// its reader or writer moves more bytes. Best effort: a kernel or user
/// budget that refuses leaves the pipe as it was.
pub(crate) fn grow_pipe(pipe: BorrowedFd<'_>) {
    // SAFETY: `pipe` is open for the call; `F_SETPIPE_SZ` takes an integer.
    let _ = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, GROWN_PIPE) };
}
