//! The global runtime behind [`crate::spawn`] and [`crate::block_on`] when no
//! runtime is current: a lazily built multi-threaded [`Runtime`], a thin
//! layer over the core (which never refers to it).
//!
//! # At process exit
//!
//! 1. When the global runtime starts, an `atexit` hook is registered.
//! 2. The hook looks the runtime up *when it runs*, not when it was
//!    registered (libev's at-exit cleanup captured its loop at registration
//!    and later ran callbacks against a dead one).
//! 3. It runs the runtime's graceful shutdown: intake stops, tasks get a
//!    bounded drain (`EBBTIDE_EXIT_DRAIN_MS`, default 1000 ms), the rest are
//!    cancelled, workers are joined (stuck ones detached), the reactor is
//!    closed. No task, waker or I/O callback of the runtime runs after it
//!    returns. The process keeps the exit code `main` gave it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::{Runtime, Shared};

static GLOBAL: OnceLock<Runtime> = OnceLock::new();

/// Default drain at process exit, in milliseconds.
const EXIT_DRAIN_MS: u64 = 1000;

/// The global runtime, started on first use.
///
/// # Panics
///
/// If it cannot be started (no poller, no threads): there is no runtime to
/// report the error through.
pub(crate) fn global() -> &'static Arc<Shared> {
    let rt = GLOBAL.get_or_init(|| {
        let rt = Runtime::builder()
            .thread_name("ebbtide-global")
            .build()
            .unwrap_or_else(|e| panic!("ebbtide: cannot start the global runtime: {e}"));
        register_exit_hook();
        rt
    });
    &rt.handle().shared
}

/// The drain the exit hook allows: `EBBTIDE_EXIT_DRAIN_MS` or the default.
fn exit_drain() -> Duration {
    let ms = std::env::var("EBBTIDE_EXIT_DRAIN_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(EXIT_DRAIN_MS);
    Duration::from_millis(ms)
}

/// Step 2–3. Must not unwind into the C runtime.
extern "C" fn shut_down_global_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if let Some(rt) = GLOBAL.get() {
            rt.shutdown(exit_drain());
        }
    });
}

/// Step 1.
fn register_exit_hook() {
    extern "C" {
        // C89 `atexit`, in every C runtime Rust links against (glibc, musl,
        // the BSDs' and macOS's libc, msvcrt/ucrt).
        fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
    }
    // SAFETY: `atexit` only stores the pointer; `shut_down_global_at_exit`
    // is a plain `extern "C" fn()` that never unwinds (it catches panics).
    let rc = unsafe { atexit(shut_down_global_at_exit) };
    // A failure (too many handlers) leaves the old behaviour: the process
    // exits without draining. Nothing better is possible at this point.
    let _ = rc;
}
