//! # ebbtide
//!
//! A cross-platform async runtime: a work-stealing executor on a reactor
//! with io_uring / epoll / kqueue / IOCP backends (on Linux the crate's own
//! epoll poller, `src/sys/epoll.rs`, with an io_uring for files where the
//! kernel has one: [`runtime::IoBackend`], and for sockets' owned calls,
//! accepts and connects when asked:
//! [`Builder::io_uring_sockets`](runtime::Builder::io_uring_sockets);
//! kqueue and IOCP through [`polling`]).
//!
//! ```
//! use std::time::Duration;
//!
//! ebbtide::block_on(async {
//!     let worker = ebbtide::spawn(async {
//!         ebbtide::time::sleep(Duration::from_millis(1)).await;
//!         21 * 2
//!     });
//!     let blocking = ebbtide::spawn_blocking(|| std::fs::metadata(".").is_ok());
//!     assert_eq!(worker.await.unwrap(), 42);
//!     assert!(blocking.await.unwrap());
//! });
//! ```
//!
//! ## Where things live
//!
//! | module | what |
//! | --- | --- |
//! | [`runtime`] | [`Runtime`](runtime::Runtime), [`Builder`](runtime::Builder), [`Handle`](runtime::Handle), metrics, `block_on`, the global runtime, graceful shutdown ([`ShutdownReport`](runtime::ShutdownReport)) |
//! | `executor` (private) | queues, the worker loop, the wake/sleep protocol, `!Send` tasks, [`JoinHandle`] |
//! | `reactor` (private) | the poller, readiness of registered handles, the timer store, the clock (real or paused) |
//! | `op` (private) | the owned-buffer op table (a slot owns an operation's buffer and OS state until the backend acknowledges) and its completion backends |
//! | [`io`] | owned buffers ([`IoBuf`](io::IoBuf), [`BufResult`](io::BufResult)), [`Async`](io::Async), the readiness adapter; `futures-io` traits |
//! | [`net`] | TCP, UDP and (on Unix) Unix-domain sockets, readiness and owned-buffer APIs |
//! | [`fs`] | files and directories on the blocking pool, owned buffers |
//! | [`os`] | platform-only APIs (Windows named pipes) |
//! | [`process`] | child processes: [`Command`](process::Command), [`Child`](process::Child) and its pipes, on the runtime's reactor |
//! | [`time`] | [`sleep`](time::sleep), [`timeout`](time::timeout), [`interval`](time::interval), [`Instant`](time::Instant), the test clock ([`pause`](time::pause), [`advance`](time::advance)) |
//! | [`task`] | spawning, [`JoinHandle`], [`yield_now`], [`unconstrained`](task::unconstrained) |
//! | `coop` (private) | the cooperative budget: ready operations per task poll |
//! | [`signal`] | [`ctrl_c`](signal::ctrl_c), Unix `Signals` streams, shutdown on a signal |
//! | `hyper` (feature `hyper`) | hyper 1.x on ebbtide: `EbbtideIo`, `EbbtideExecutor`, `EbbtideTimer`, and `serve` (HTTP/1.1 and HTTP/2, graceful shutdown) |
//! | `blocking` (private) | the pool behind [`spawn_blocking`] |
//! | `main`, `test` (feature `macros`, on by default) | `#[ebbtide::main]` / `#[ebbtide::test]`: an `async fn` run on a fresh runtime |
//! | `wake` (private) | calling wakers the runtime does not own, panic-isolated |
//! | `sync` (private) | the locks and atomics of the protocols loom checks (std's, or loom's under `--cfg ebbtide_loom`) |
//! | `sys` (private) | the one platform switch: syscalls, pollers, signal handlers |
//!
//! ## Testing with the paused clock
//!
//! A test of a timeout, a retry back-off or an idle timer need not wait for
//! it. On a current-thread runtime built with
//! [`start_paused(true)`](runtime::Builder::start_paused) (or after
//! [`time::pause`]), the clock stands still: it moves only by
//! [`time::advance`], or, when no task can run and the next thing due is a
//! timer, it jumps straight to that timer's deadline. [`time::Instant`],
//! [`sleep`](time::sleep), [`timeout`](time::timeout) and
//! [`interval`](time::interval()) all follow it, so the test runs in
//! microseconds and every run sees the same times. Ready I/O is delivered
//! before the clock jumps, and a runtime with a read pending and no timer
//! waits for the read as usual. [`time::resume`] lets the clock run again.
//!
//! ```
//! use std::time::Duration;
//! use ebbtide::time::{self, Instant};
//!
//! let rt = ebbtide::runtime::Runtime::builder()
//!     .current_thread()
//!     .start_paused(true)
//!     .build()?;
//! rt.block_on(async {
//!     let start = Instant::now();
//!     // An hour-long timeout fires at once, exactly an hour later.
//!     let r = time::timeout(Duration::from_secs(3600), std::future::pending::<()>()).await;
//!     assert!(r.is_err());
//!     assert_eq!(start.elapsed(), Duration::from_secs(3600));
//!     // Or move the clock by hand.
//!     let mut every = time::interval(Duration::from_secs(60));
//!     every.tick().await;
//!     time::advance(Duration::from_secs(60)).await;
//!     assert_eq!(every.tick().await, start + Duration::from_secs(3660));
//! });
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Rules the code keeps
//!
//! - No lock is held while a future is polled or dropped, or a waker is
//!   called.
//! - A panic in a task (in `poll`, in its future's `Drop`, in its output's
//!   `Drop`) is caught; the worker survives; the [`JoinHandle`] reports it.
//! - A runtime is a value; nothing in the core is global. [`spawn`] and
//!   [`block_on`] outside any runtime use a lazily started global one.

mod blocking;
mod coop;
mod executor;
pub mod fs;
#[cfg(feature = "hyper")]
pub mod hyper;
pub mod io;
pub mod net;
mod op;
pub mod os;
pub mod process;
mod reactor;
pub mod runtime;
pub mod signal;
mod sync;
mod sys;
pub mod task;
pub mod time;
mod wake;

pub use executor::{yield_now, JoinError, JoinHandle, YieldNow};

#[cfg(feature = "macros")]
pub use ebbtide_macros::{main, test};

/// What the `macros` attributes expand to call; not a public API.
#[cfg(feature = "macros")]
#[doc(hidden)]
#[path = "macro_support.rs"]
pub mod __private;

use std::future::Future;

use runtime::context;

/// Spawns a task on the current runtime (the global one outside any).
///
/// The task starts at once and keeps running if the handle is dropped.
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let h = ebbtide::spawn(async { "hi" });
///     assert_eq!(h.await.unwrap(), "hi");
/// });
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let site = executor::Site::caller(); // the closure below has no caller
    context::with_current(|s| match s {
        Some(shared) => shared.spawn_at(future, site),
        None => runtime::global().spawn_at(future, site),
    })
}

/// Spawns a `!Send` task on the current thread.
///
/// It runs on this thread only: inside [`block_on`] (any runtime flavour),
/// or on the worker thread whose task called `spawn_local`. Tasks still
/// pending when their thread stops running the runtime (its `block_on`
/// returns, its worker exits) are cancelled there.
///
/// # Panics
///
/// On a thread that runs no runtime — there is nowhere to run the task.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
///
/// ebbtide::block_on(async {
///     let shared = Rc::new(5); // !Send
///     let h = ebbtide::spawn_local({
///         let shared = shared.clone();
///         async move { *shared + 1 }
///     });
///     assert_eq!(h.await.unwrap(), 6);
/// });
/// ```
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let site = executor::Site::caller();
    context::with_local(|local| match local {
        Some(local) => local.spawn(future, site),
        None => panic!(
            "ebbtide::spawn_local called on a thread that runs no runtime: call it inside \
             `block_on` or from a task, or use `ebbtide::spawn` for a Send future"
        ),
    })
}

/// Runs a blocking closure on the current runtime's blocking pool (the
/// global runtime's outside any).
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let n = ebbtide::spawn_blocking(|| (1..=10u32).product::<u32>()).await.unwrap();
///     assert_eq!(n, 3_628_800);
/// });
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let site = executor::Site::caller();
    context::with_current(|s| match s {
        Some(shared) => shared.spawn_blocking_at(f, site),
        None => runtime::global().spawn_blocking_at(f, site),
    })
}

/// Runs `future` to completion on this thread, on the current runtime (the
/// global one outside any; its workers run spawned tasks).
///
/// # Panics
///
/// If this thread already runs a runtime (a worker, or inside another
/// `block_on`): use `.await`, or [`spawn_blocking`] for blocking sections.
///
/// # Examples
///
/// ```
/// assert_eq!(ebbtide::block_on(async { 1 + 2 }), 3);
/// ```
#[track_caller]
pub fn block_on<F: Future>(future: F) -> F::Output {
    assert!(
        !context::in_runtime_thread(),
        "{}",
        context::NESTED_BLOCK_ON
    );
    match context::with_current(|s| s.cloned()) {
        Some(shared) => shared.block_on(future),
        None => runtime::global().block_on(future),
    }
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The user guide's examples (`docs/guide.md`), compiled and run as doctests
/// (with the `hyper` feature, which its HTTP section uses: `.ci/run` tests
/// with `--all-features`).
#[cfg(all(doctest, feature = "hyper"))]
#[doc = include_str!("../docs/guide.md")]
struct GuideDoctests;
