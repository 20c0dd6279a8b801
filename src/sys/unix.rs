//! Unix primitives: descriptors, non-blocking mode, positional file I/O.
//! Readiness comes from the crate's own epoll poller on Linux (`epoll.rs`)
//! and from `polling` (kqueue) on macOS and the BSDs.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// The raw handle the poller registers: a file descriptor.
pub(crate) type RawSource = RawFd;

/// An I/O object the reactor can register: anything that owns a descriptor.
pub trait AsSourceHandle: AsFd {}
impl<T: AsFd> AsSourceHandle for T {}

/// Raw descriptor of `io`.
pub(crate) fn raw(io: &impl AsSourceHandle) -> RawSource {
    io.as_fd().as_raw_fd()
}

/// Borrows `raw` for a `modify`/`delete` call.
///
/// # Safety
///
/// `raw` must be an open descriptor for the whole lifetime of the returned
/// value.
pub(crate) unsafe fn borrow<'a>(raw: RawSource) -> BorrowedFd<'a> {
    // SAFETY: the caller guarantees `raw` stays open while borrowed.
    unsafe { BorrowedFd::borrow_raw(raw) }
}

/// Puts `io` in non-blocking mode (`O_NONBLOCK`).
pub(crate) fn set_nonblocking(io: &impl AsSourceHandle) -> io::Result<()> {
    let fd = raw(io);
    // SAFETY: `fd` is open (borrowed from `io` for this call); F_GETFL takes
    // no pointer argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags == -1 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK != 0 {
        return Ok(());
    }
    // SAFETY: as above; F_SETFL takes an integer argument.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One `read(2)` from `fd` into `buf`, which may be uninitialized; the
/// bytes read are initialized after it.
pub(crate) fn read_uninit(
    fd: BorrowedFd<'_>,
    buf: &mut [std::mem::MaybeUninit<u8>],
) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` writable bytes; `read` writes
    // at most that many and no more than it reports.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Positional read for the blocking pool (`pread`: the file cursor stays).
pub(crate) fn read_file_at(file: &std::fs::File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, pos)
}

/// Positional write for the blocking pool (`pwrite`).
pub(crate) fn write_file_at(file: &std::fs::File, buf: &[u8], pos: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::write_at(file, buf, pos)
}

/// See the backend contract: on Unix a finished thread exits without
/// waiting for any lock, so `join` after `is_finished` returns at once.
pub(crate) fn thread_has_exited(thread: &std::thread::JoinHandle<()>) -> bool {
    thread.is_finished()
}

/// Options a listening TCP socket gets before `bind`: `SO_REUSEADDR`, so a
/// restarted server can bind while old connections sit in `TIME_WAIT`.
pub(crate) fn prepare_listener(socket: &socket2::Socket) -> io::Result<()> {
    socket.set_reuse_address(true)
}

/// Whether a non-blocking `connect` error means "started, not finished"
/// (`EINPROGRESS`).
pub(crate) fn connect_in_progress(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINPROGRESS)
}

/// Files use the blocking pool on Unix (no completion backend): no flags.
pub(crate) fn prepare_file_options(_opts: &mut std::fs::OpenOptions) -> bool {
    false
}
