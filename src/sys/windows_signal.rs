//! Windows console control events (Ctrl-C, Ctrl-Break).
//!
//! `SetConsoleCtrlHandler` runs the handler on a thread the system creates
//! for the event, not in a signal context, so it may lock and wake:
//! 1. The handler is installed once per process, on first use.
//! 2. On `CTRL_C_EVENT` / `CTRL_BREAK_EVENT` it bumps a generation counter
//!    and wakes every waiting `ctrl_c()` future, then returns `TRUE`
//!    (handled: the process is not terminated).
//! 3. A `ctrl_c()` future resolves once the counter passes the value it saw
//!    when first polled.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use windows_sys::core::BOOL;
use windows_sys::Win32::System::Console::{SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_C_EVENT};

static GENERATION: AtomicU64 = AtomicU64::new(0);
static WAITERS: Mutex<Vec<Waker>> = Mutex::new(Vec::new());
static INSTALLED: OnceLock<io::Result<()>> = OnceLock::new();

unsafe extern "system" fn handler(kind: u32) -> BOOL {
    if kind != CTRL_C_EVENT && kind != CTRL_BREAK_EVENT {
        return 0; // not ours: let the next handler (or the default) act
    }
    GENERATION.fetch_add(1, Ordering::SeqCst);
    let waiters = std::mem::take(&mut *WAITERS.lock().unwrap_or_else(|e| e.into_inner()));
    for w in waiters {
        crate::wake::wake(w);
    }
    1
}

fn install() -> io::Result<()> {
    let r = INSTALLED.get_or_init(|| {
        // SAFETY: `handler` has the `PHANDLER_ROUTINE` signature and lives
        // for the whole process.
        if unsafe { SetConsoleCtrlHandler(Some(handler), 1) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    });
    match r {
        Ok(()) => Ok(()),
        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
    }
}

/// Waits for the next Ctrl-C / Ctrl-Break after the first poll.
pub(crate) struct CtrlC {
    seen: Option<u64>,
}

impl CtrlC {
    pub(crate) fn new() -> io::Result<CtrlC> {
        install()?;
        Ok(CtrlC { seen: None })
    }

    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let seen = *self
            .seen
            .get_or_insert_with(|| GENERATION.load(Ordering::SeqCst));
        if GENERATION.load(Ordering::SeqCst) != seen {
            return Poll::Ready(Ok(()));
        }
        WAITERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cx.waker().clone());
        if GENERATION.load(Ordering::SeqCst) != seen {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }
}

/// The OS side is not reachable here: under Wine 8, `GenerateConsoleCtrlEvent`
/// fails with `ERROR_INVALID_ACCESS` (12) for a test process, even after
/// `AllocConsole`. These tests call the installed handler the way the
/// system's control thread would, from another thread, and check what the
/// futures see.
#[cfg(test)]
mod tests {
    use super::*;
    use windows_sys::Win32::System::Console::CTRL_CLOSE_EVENT;

    #[test]
    fn a_ctrl_c_event_wakes_a_waiting_ctrl_c_future_and_is_handled() {
        let rt = crate::runtime::Runtime::builder()
            .worker_threads(1)
            .build()
            .unwrap();
        rt.block_on(async {
            let mut fut = CtrlC::new().unwrap();
            let mut first = true;
            let woken = std::future::poll_fn(|cx| {
                let p = fut.poll(cx);
                if first {
                    first = false;
                    assert!(p.is_pending(), "no event yet");
                    // Not ours: passed on to the next handler.
                    // SAFETY: the handler takes any event code.
                    assert_eq!(unsafe { handler(CTRL_CLOSE_EVENT) }, 0);
                    std::thread::spawn(|| {
                        // SAFETY: as the system's control thread calls it.
                        assert_eq!(unsafe { handler(CTRL_C_EVENT) }, 1);
                    });
                }
                p
            });
            // A lost wake would hang: bounded, so it fails instead.
            crate::time::timeout(std::time::Duration::from_secs(30), woken)
                .await
                .expect("the Ctrl-C event woke the future")
                .unwrap();
        });
    }
}
