//! The one platform switch, and the bottom layer: system calls, pollers,
//! raw handles. Nothing here imports from the rest of the crate.
//!
//! Portable code never says `cfg(unix)` / `cfg(windows)` inside its code; it
//! names the items below, which each backend file provides. The table at
//! the end of this doc is the whole choice, read top to bottom.
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
//! - `prepare_listener(&socket2::Socket)`: options a TCP listener gets
//!   before `bind` (`SO_REUSEADDR` on Unix; none on Windows).
//! - `connect_in_progress(&io::Error) -> bool`: a non-blocking `connect`
//!   started (`EINPROGRESS`, `WSAEWOULDBLOCK`).
//! - `prepare_file_options(&mut OpenOptions) -> bool`: sets the open flags
//!   a file needs for the op layer's completion backend and says whether
//!   there is one for files (`FILE_FLAG_OVERLAPPED` and `true` on Windows;
//!   `false` on Unix, where files use the blocking pool).
//! - `read_file_at` / `write_file_at`: positional file I/O, run on the
//!   blocking pool by `crate::fs` (`pread`/`pwrite`; `seek_read`/
//!   `seek_write` on Windows).
//! - `read_file_at_cached`: the positional read that never waits for the
//!   disk, tried inline on the task's thread before the pool
//!   (`preadv2(RWF_NOWAIT)` on Linux; `None`, "go to the pool", elsewhere).
//! - `thread_has_exited(&JoinHandle<()>) -> bool`: the thread is gone, so
//!   `join` returns at once. `JoinHandle::is_finished` says only that its
//!   closure returned; on Windows the thread must still take the loader
//!   lock to exit, and a thread running thread-local destructors (a
//!   runtime kept in a `thread_local!`) holds it, so joining there would
//!   never return.
//!
//! Plus, for every platform, `Poller` and `Events` with `polling`'s API
//! (`polling`'s own types; on Linux, `epoll.rs`, which does one system call
//! per wait where `polling` does five; under Miri, a condvar stand-in).
//!
//! The readiness reactor is built only on these. Completion backends (IOCP
//! overlapped operations, io_uring) are op-layer code, since they own
//! op-table slots: they live in `crate::op` and use the raw calls from
//! here. On Linux the epoll poller can carry an io_uring (`uring.rs`,
//! the `IoBackend::IoUring` backend): it submits the ring's queue before
//! each wait and reports the ring's completions with its events (`completions(&Events)`, empty on every
//! other poller), and `Poller::ring` hands the op layer the ring.
//! `new_poller(IoBackend)` builds the poller a runtime asked for and says
//! which backend it resolved to.
//!
//! | platform | poller | signals | TCP read hint |
//! | --- | --- | --- | --- |
//! | Linux | `epoll.rs` (with `uring.rs` on io_uring) | `unix_signal.rs` | `tcp_inq.rs` |
//! | macOS, BSDs | `polling` (kqueue) | `unix_signal.rs` | none |
//! | Windows | `polling` (IOCP, AFD) | `windows_signal.rs` | none |
//! | Miri | `miri.rs` (condvar, no handles) | as the host | none |

// ---- The platform table: each row picks one implementation. ----

// Handles, sockets, files, threads.
#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as os;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as os;

// The raw overlapped calls under the op layer's IOCP backend.
#[cfg(windows)]
pub(crate) mod windows_io;

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

// The OS poller: on Linux, a leaner epoll poller with `polling`'s API (one
// system call per wait instead of five; `epoll.rs`); `polling` elsewhere;
// under Miri (no `timerfd`), a condvar stand-in that registers no handles,
// so Miri checks everything but sockets.
#[cfg(all(target_os = "linux", not(miri)))]
mod epoll;
// Linux's io_uring, which the epoll poller carries on that backend.
#[cfg(all(target_os = "linux", not(miri)))]
pub(crate) mod uring;
#[cfg(all(target_os = "linux", not(miri)))]
use epoll as poller;
#[cfg(all(not(target_os = "linux"), not(miri)))]
mod polling_poller;
#[cfg(all(not(target_os = "linux"), not(miri)))]
use polling_poller as poller;
#[cfg(miri)]
mod miri;
#[cfg(miri)]
use miri as poller;

// TCP reads that say whether they emptied the receive queue: `TCP_INQ` on
// Linux; elsewhere a plain `recv` with no hint.
#[cfg(all(target_os = "linux", not(miri)))]
#[path = "tcp_inq.rs"]
mod tcp_read;
#[cfg(not(all(target_os = "linux", not(miri))))]
#[path = "tcp_plain.rs"]
mod tcp_read;

// Process exits as a descriptor: `pidfd_open` on Linux, a kqueue with an
// `EVFILT_PROC` filter on macOS and the BSDs; elsewhere none (the process
// module falls back to `SIGCHLD`).
#[cfg(all(target_os = "linux", not(miri)))]
#[path = "pidfd.rs"]
mod process_exit;
#[cfg(all(
    any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ),
    not(miri)
))]
#[path = "kqueue_exit.rs"]
mod process_exit;
#[cfg(all(
    unix,
    not(all(
        any(
            target_os = "linux",
            target_os = "macos",
            target_os = "ios",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "openbsd",
            target_os = "dragonfly"
        ),
        not(miri)
    ))
))]
#[path = "no_pidfd.rs"]
mod process_exit;

// Unix children started without std (`clone` with `CLONE_VFORK` and
// `CLONE_PIDFD` on Linux; elsewhere `spawn` says "use std"), and reaping
// and killing them.
#[cfg(unix)]
pub(crate) mod spawn;

// ---- What the rest of the crate uses. ----

/// One finished operation of a completion backend, as a poller reports
/// it: the op's key and the OS's result (a count, or a negated `errno`,
/// on io_uring; unused, 0, where the backend reads the result itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Completion {
    pub(crate) key: usize,
    pub(crate) result: i32,
}

/// The I/O driver a runtime runs on (see
/// [`Builder::io_backend`](crate::runtime::Builder::io_backend)).
///
/// `Auto` is a request only: a built runtime reports the backend it
/// resolved to in [`Metrics::io_backend`](crate::runtime::Metrics::io_backend).
///
/// # Examples
///
/// ```
/// use ebbtide::runtime::{IoBackend, Runtime};
///
/// let rt = Runtime::builder().current_thread().io_backend(IoBackend::Auto).build()?;
/// assert_ne!(rt.metrics().io_backend, IoBackend::Auto);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoBackend {
    /// The best backend this system offers: io_uring on Linux when the
    /// kernel has what the runtime needs, else the platform's readiness
    /// poller. The environment variable `EBBTIDE_IO_BACKEND`
    /// (`epoll` or `io_uring`) overrides it.
    #[default]
    Auto,
    /// Linux: readiness through `epoll`; files on the blocking pool.
    Epoll,
    /// Linux: completions through an io_uring (files, owned-buffer I/O),
    /// readiness through `epoll` registered in the ring.
    IoUring,
    /// macOS and the BSDs: readiness through `kqueue`.
    Kqueue,
    /// Windows: an I/O completion port (AFD readiness for sockets,
    /// overlapped I/O for pipes and files).
    Iocp,
}

pub use os::AsSourceHandle;
pub(crate) use os::{
    borrow, connect_in_progress, prepare_file_options, prepare_listener, raw, read_file_at,
    read_file_at_cached, set_nonblocking, thread_has_exited, write_file_at, RawSource,
};
/// A cheap monotonic clock for the stall detector (nanoseconds), and how
/// far it may lag real time.
pub(crate) use os::{coarse_clock, coarse_clock_resolution};
/// `Poller` and `Events` with `polling`'s API, and `REPORTS_READ_CLOSED`:
/// whether events say when a stream's read side is closed
/// (`Event::is_interrupt`, from `EPOLLRDHUP`), so a short stream read may
/// skip the next `recv` (`reactor::source` step 6).
pub(crate) use poller::{completions, new_poller, Events, Poller, REPORTS_READ_CLOSED};
#[cfg(unix)]
pub(crate) use process_exit::{grow_pipe, process_exit_fd};
/// `tcp_enable_queue_hint(&TcpStream)`: ask the OS to report, with each
/// read, how many bytes are still queued (a no-op where it cannot);
/// `tcp_recv(&TcpStream, buf, hint)`: one read, with that count when asked
/// for and known.
pub(crate) use tcp_read::{tcp_enable_queue_hint, tcp_recv};
#[cfg(unix)]
pub(crate) use unix::read_uninit;
#[cfg(unix)]
pub(crate) use unix_socket::abstract_unix_addr;
