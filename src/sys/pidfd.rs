//! Linux process-exit descriptors: `pidfd_open(2)` (Linux 5.3+) gives a
//! descriptor that turns readable when the process exits, which the
//! reactor can wait on like any other handle.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// A descriptor that becomes readable when process `pid` exits; `None`
/// where the kernel has no `pidfd_open` (or refuses it), and the caller
/// falls back to `SIGCHLD`.
pub(crate) fn process_exit_fd(pid: u32) -> io::Result<Option<OwnedFd>> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // Non-blocking from the start (Linux 5.10+), so registering it with the
    // reactor finds `O_NONBLOCK` set and changes nothing; older kernels
    // refuse the flag with `EINVAL` and get the plain call.
    // SAFETY: plain syscalls with integer arguments (pid, flags).
    let mut fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, libc::O_NONBLOCK) };
    if fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // SAFETY: as above.
        fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    }
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
