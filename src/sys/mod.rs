//! The one platform switch.
//!
//! Portable code never says `cfg(unix)` / `cfg(windows)`; it names the items
//! below, which each backend file provides.
//!
//! # Backend contract
//!
//! Every backend (`unix.rs`, `windows.rs`) provides:
//!
//! - `RawSource`: the raw OS handle a [`polling::Poller`] registers (a file
//!   descriptor on Unix, a `SOCKET` on Windows), `Copy`.
//! - `AsSourceHandle`: the trait an I/O object implements to be registered
//!   (`AsFd` on Unix, `AsSocket` on Windows), with `raw_source(&self)`.
//! - `unsafe fn borrow(raw) -> impl polling::AsSource`: a borrowed handle for
//!   `Poller::modify` / `Poller::delete`, valid while the caller guarantees
//!   the handle is open.
//! - `fn set_nonblocking(&impl AsSourceHandle) -> io::Result<()>`.
//! - `fn raw(&impl AsSourceHandle) -> RawSource`.
//! - `connect_in_progress(&io::Error) -> bool`: a non-blocking `connect`
//!   started (`EINPROGRESS`, `WSAEWOULDBLOCK`).
//! - `prepare_file_options(&mut OpenOptions) -> bool` and
//!   `read_file_at_overlapped` / `write_file_at_overlapped`: files opened
//!   for the completion backend (overlapped on Windows; `false` and
//!   `Err(buf)` on Unix, where files use the blocking pool).
//! - `read_file_at` / `write_file_at`: positional file I/O, run on the
//!   blocking pool by `crate::fs` (`pread`/`pwrite`; `seek_read`/
//!   `seek_write` on Windows).
//! - `thread_has_exited(&JoinHandle<()>) -> bool`: the thread is gone, so
//!   `join` returns at once. `JoinHandle::is_finished` says only that its
//!   closure returned; on Windows the thread must still take the loader
//!   lock to exit, and a thread running thread-local destructors (a
//!   runtime kept in a `thread_local!`) holds it, so joining there would
//!   never return.
//!
//! # Operation backends
//!
//! An owned-buffer operation reaches the OS through one of three backends,
//! and portable code (`crate::net`, `crate::fs`) chooses by what the
//! platform offers, never by `cfg`:
//!
//! - **Readiness** (`crate::io::Async`): try the non-blocking syscall, wait
//!   for the reactor's readiness event on `WouldBlock`, retry. Cancelling is
//!   dropping the future; the kernel holds nothing between attempts.
//! - **Blocking pool** (`crate::op::Op::blocking`): the job owns the op
//!   state and completes the op's slot when it returns.
//! - **Completion** (IOCP overlapped, later io_uring): the backend submits
//!   the op with its state owned by an op-table slot
//!   (`OpTable::submit_owned`), requests cancellation when the future is
//!   dropped (`CancelIoEx`, `IORING_OP_ASYNC_CANCEL`), and calls
//!   `OpTable::complete` with the op's key when the OS reports the op over,
//!   from the reactor thread. Such a backend adds here: `submit(op) ->
//!   io::Result<OpKey>`, `cancel(key)`, and a hook the reactor calls for each
//!   completion event it dequeues. Nothing portable changes.
//!
//! The items every backend provides for this: `is_completion_key(key)`
//! (poller keys that are completions, not readiness; none where there is
//! no completion backend), `on_completion(poller, ops, key, wakers, garbage)`
//! (the reactor's hook, called with no lock held) and
//! `cancel_owned(&owned)` (the op table's hook when a future is dropped
//! while its slot owns OS state). Windows implements them with overlapped
//! I/O in `windows_overlapped.rs`.
//!
//! Plus, for every platform, `Poller` and `Events` with `polling`'s API
//! (`polling`'s own types; on Linux, `epoll.rs`, which does one system call
//! per wait where `polling` does five; under Miri, a condvar stand-in).
//!
//! The readiness reactor (`crate::reactor`) is built only on these. Later
//! backends (overlapped IOCP operations, io_uring) add their own items here
//! and nowhere else.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;
#[cfg(windows)]
pub(crate) mod windows_overlapped;

// Signals: handlers that set a flag and write to a self-pipe (signal
// handlers on Unix, the console control handler on Windows). Each provides
// `CTRL_C`, `self_pipe() -> (PipeReader, PipeWriter)`, `PipeReader::drain`,
// `Handlers::install(signals, writer)` and `Handlers::take_pending`.
#[cfg(unix)]
pub(crate) mod unix_signal;
#[cfg(unix)]
pub(crate) use unix_signal as signal;
#[cfg(windows)]
pub(crate) mod windows_signal;
#[cfg(windows)]
pub(crate) use windows_signal as signal;

// Unix-domain socket addresses some systems add (the abstract namespace).
#[cfg(unix)]
mod unix_socket;
#[cfg(unix)]
pub(crate) use unix_socket::abstract_unix_addr;

pub use imp::AsSourceHandle;
pub(crate) use imp::{
    borrow, cancel_owned, connect_in_progress, is_completion_key, on_completion,
    prepare_file_options, raw, read_file_at, read_file_at_overlapped, set_nonblocking,
    thread_has_exited, write_file_at, write_file_at_overlapped, RawSource,
};

// The OS poller. Under Miri (no `timerfd`), a condvar stand-in that
// registers no handles, so Miri can check everything but sockets.
#[cfg(miri)]
mod miri;
#[cfg(miri)]
pub(crate) use miri::{Events, Poller};
// On Linux, a leaner epoll poller with `polling`'s API (one system call per
// wait instead of five; see `epoll.rs`); `polling` everywhere else.
#[cfg(all(target_os = "linux", not(miri)))]
mod epoll;
#[cfg(all(target_os = "linux", not(miri)))]
pub(crate) use epoll::{Events, Poller};
#[cfg(all(not(target_os = "linux"), not(miri)))]
pub(crate) use polling::{Events, Poller};

/// Whether `Poller` events say when a stream's read side is closed
/// (`Event::is_interrupt`, from `EPOLLRDHUP`), so a short stream read may
/// skip the next `recv` (`reactor::source` step 6). `polling`'s backends do
/// not report it.
pub(crate) const REPORTS_READ_CLOSED: bool = cfg!(all(target_os = "linux", not(miri)));

// TCP reads that say whether they emptied the receive queue: `TCP_INQ`
// on Linux (`tcp_inq.rs`); elsewhere a plain `recv` with no hint.
#[cfg(all(target_os = "linux", not(miri)))]
mod tcp_inq;

/// Asks the OS to report, with each read of `stream`, how many bytes are
/// still queued (`tcp_inq.rs` step 1). A no-op where there is no such
/// report or the OS refuses: reads then carry no hint.
pub(crate) fn tcp_enable_queue_hint(stream: &std::net::TcpStream) {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        use std::os::fd::AsFd;
        let _ = tcp_inq::enable(stream.as_fd());
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    let _ = stream;
}

/// One `recv` from `stream` into `buf`: the bytes read and, where the OS
/// reports it (after [`tcp_enable_queue_hint`]), how many are still queued.
pub(crate) fn tcp_recv(
    stream: &std::net::TcpStream,
    buf: &mut [std::mem::MaybeUninit<u8>],
) -> std::io::Result<(usize, Option<usize>)> {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        use std::os::fd::AsFd;
        tcp_inq::recv(stream.as_fd(), buf)
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    {
        Ok((socket2::SockRef::from(stream).recv(buf)?, None))
    }
}
