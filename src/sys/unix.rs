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

/// Positional read that never waits for the disk: `preadv2(RWF_NOWAIT)`
/// into `spare`, `Some(result)` when the data was in the page cache (or at
/// end of file), `None` when the read would block or the kernel or file
/// system cannot tell (then the caller goes to the blocking pool). After
/// one "not supported" answer the process stops trying.
#[cfg(all(target_os = "linux", target_env = "gnu", not(miri)))]
pub(crate) fn read_file_at_cached(
    file: &std::fs::File,
    spare: &mut [std::mem::MaybeUninit<u8>],
    pos: u64,
) -> Option<io::Result<usize>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
    if UNSUPPORTED.load(Ordering::Relaxed) || spare.is_empty() {
        return None;
    }
    let Ok(offset) = libc::off_t::try_from(pos) else {
        return None; // past off_t: the pool's `pread` reports it
    };
    let iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: spare.len(),
    };
    // SAFETY: `iov` describes `spare`, valid for `spare.len()` writable
    // bytes (uninitialized memory is fine for the kernel to write); the
    // call writes at most that many and returns the count.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    if n >= 0 {
        return Some(Ok(n as usize));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) => None,
        Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => {
            UNSUPPORTED.store(true, Ordering::Relaxed);
            None
        }
        _ => Some(Err(err)),
    }
}

/// Elsewhere no read can promise not to wait: always the blocking pool.
#[cfg(not(all(target_os = "linux", target_env = "gnu", not(miri))))]
pub(crate) fn read_file_at_cached(
    _file: &std::fs::File,
    _spare: &mut [std::mem::MaybeUninit<u8>],
    _pos: u64,
) -> Option<io::Result<usize>> {
    None
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
/// (`EINPROGRESS`, or `EALREADY`).
pub(crate) fn connect_in_progress(e: &io::Error) -> bool {
    // `EALREADY`: a connect already under way on this socket (an
    // io_uring `CONNECT` the kernel submitted again).
    matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EALREADY))
}

/// Files use the blocking pool on Unix (no completion backend): no flags.
pub(crate) fn prepare_file_options(_opts: &mut std::fs::OpenOptions) -> bool {
    false
}

/// A monotonic clock for the stall detector, read once per task poll, in
/// nanoseconds. On Linux the coarse clock (`CLOCK_MONOTONIC_COARSE`): the
/// kernel's last tick, read from the vDSO page without touching the TSC, a
/// few times cheaper than `Instant::now`; it lags real time by less than
/// [`coarse_clock_resolution`]. Elsewhere the plain monotonic clock.
#[inline]
pub(crate) fn coarse_clock() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC_COARSE;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
    let mut ts = std::mem::MaybeUninit::<libc::timespec>::uninit();
    // SAFETY: `ts` is valid for a write of a timespec; a monotonic clock
    // exists on every supported system, so the call cannot fail and fills
    // `ts` (which is then initialised).
    let ts = unsafe {
        libc::clock_gettime(CLOCK, ts.as_mut_ptr());
        ts.assume_init()
    };
    // Wrapping, not saturating: a monotonic clock's seconds since boot stay
    // far below the 584 years that would overflow, and this runs per poll.
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// How far [`coarse_clock`] may lag real time, in nanoseconds (the kernel
/// tick on Linux, 1–10 ms).
pub(crate) fn coarse_clock_resolution() -> u64 {
    #[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: as in `coarse_clock`.
        if unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } == 0 {
            return (ts.tv_sec as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(ts.tv_nsec as u64);
        }
        10_000_000
    }
    #[cfg(not(all(any(target_os = "linux", target_os = "android"), not(miri))))]
    {
        1_000
    }
}
