//! Windows console control events (Ctrl-C, Ctrl-Break), raw: a self-pipe,
//! and a console control handler that writes to it.
//!
//! This file provides the primitives `unix_signal.rs` provides, with the
//! same names, so the protocol in `src/signal/mod.rs` is one for both; a
//! "signal" here is a console control event code (`CTRL_C_EVENT`,
//! `CTRL_BREAK_EVENT`).
//!
//! - `self_pipe()`: two non-blocking loopback UDP sockets connected to each
//!   other (Windows has no socket pair, and a poller here registers only
//!   sockets). The `PipeReader` end is the socket to register with a poller
//!   (`AsSocket`) and `drain`; the `PipeWriter` end goes to the handler.
//! - `Handlers::install(events, writer)`: adds a listener to the process's
//!   list. For an event a listener wants, the console control handler sets
//!   the listener's pending flag and sends one datagram to its pipe.
//!   `take_pending` swaps a flag back. Dropping `Handlers` removes the
//!   listener: nothing is sent to its pipe after that.
//! - `CTRL_C`: the events that mean Ctrl-C here (Ctrl-C and Ctrl-Break).
//!
//! # The console control handler
//!
//! 1. `SetConsoleCtrlHandler` installs it once per process, at the first
//!    `Handlers::install`; it stays installed.
//! 2. The system runs it on a thread it creates for each event, not in a
//!    signal context, so it may take the listeners' lock. It only sets
//!    flags and sends datagrams; it calls no waker (the task waiting on the
//!    pipe is woken by whoever polls the read end).
//! 3. It returns `TRUE` for an event some listener wants (handled: the
//!    process is not terminated), and `FALSE` for any other: an event no
//!    listener wants any more (the last `ctrl_c` future is gone) or that
//!    none can want goes on to the next handler or the default one, which
//!    ends the process, as on Unix, where a signal gets back its earlier
//!    disposition when no `Signals` wants it.

use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::windows::io::{AsSocket, BorrowedSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use windows_sys::core::BOOL;
use windows_sys::Win32::System::Console::{SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_C_EVENT};

/// The events that mean Ctrl-C.
pub(crate) const CTRL_C: &[i32] = &[CTRL_C_EVENT as i32, CTRL_BREAK_EVENT as i32];

/// A self-pipe: the read end for a poller, the write end for the handler.
pub(crate) fn self_pipe() -> io::Result<(PipeReader, PipeWriter)> {
    let read = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let write = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    // Each takes datagrams only from the other.
    read.connect(write.local_addr()?)?;
    write.connect(read.local_addr()?)?;
    read.set_nonblocking(true)?;
    write.set_nonblocking(true)?;
    Ok((PipeReader(read), PipeWriter(write)))
}

/// Read end of the self-pipe: readable once the handler has sent to it.
pub(crate) struct PipeReader(UdpSocket);

impl PipeReader {
    /// Reads every datagram sent so far, without blocking.
    ///
    /// # Errors
    ///
    /// The OS error of `recv`, other than "nothing to read".
    pub(crate) fn drain(&self) -> io::Result<()> {
        let mut buf = [0u8; 16];
        loop {
            match self.0.recv(&mut buf) {
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A UDP socket reports an earlier send of its own that was
                // refused; this end never sends, so there is nothing to lose.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsSocket for PipeReader {
    fn as_socket(&self) -> BorrowedSocket<'_> {
        self.0.as_socket()
    }
}

/// Write end of the self-pipe, owned by a listener.
pub(crate) struct PipeWriter(UdpSocket);

impl PipeWriter {
    /// One datagram; a full buffer is ignored (a queued datagram already
    /// reads as "something arrived").
    fn send_byte(&self) {
        let _ = self.0.send(&[1]);
    }
}

/// One listener in the handler's list; removed on drop.
pub(crate) struct Handlers {
    listener: Arc<Listener>,
}

impl Handlers {
    /// Installs the console control handler if this process has not yet
    /// (step 1) and adds a listener for `events` that writes to `writer`.
    ///
    /// # Errors
    ///
    /// If an event is neither `CTRL_C_EVENT` nor `CTRL_BREAK_EVENT`, or
    /// `SetConsoleCtrlHandler` fails.
    pub(crate) fn install(events: &[i32], writer: PipeWriter) -> io::Result<Handlers> {
        if let Some(&event) = events.iter().find(|e| !CTRL_C.contains(e)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "ebbtide: console control event {event} cannot be handled: only Ctrl-C \
                     and Ctrl-Break can"
                ),
            ));
        }
        install_handler()?;
        let listener = Arc::new(Listener::new(events, writer));
        listeners().push(listener.clone());
        Ok(Handlers { listener })
    }

    /// An event delivered since it was last taken, clearing its flag.
    pub(crate) fn take_pending(&self) -> Option<i32> {
        self.listener
            .pending
            .iter()
            .find(|(_, p)| p.swap(false, Ordering::SeqCst))
            .map(|(event, _)| *event)
    }
}

impl Drop for Handlers {
    fn drop(&mut self) {
        listeners().retain(|l| !Arc::ptr_eq(l, &self.listener));
    }
}

/// What the handler touches for one `Handlers`.
struct Listener {
    /// `(event, pending)`: the events this listener wants.
    pending: Box<[(i32, AtomicBool)]>,
    writer: PipeWriter,
}

impl Listener {
    fn new(events: &[i32], writer: PipeWriter) -> Listener {
        Listener {
            pending: events
                .iter()
                .map(|&e| (e, AtomicBool::new(false)))
                .collect(),
            writer,
        }
    }

    /// Sets `event`'s flag and writes to the pipe, if this listener wants
    /// `event`.
    /// Delivers `event` if this listener wants it; returns whether it did.
    fn deliver(&self, event: i32) -> bool {
        let Some((_, pending)) = self.pending.iter().find(|(e, _)| *e == event) else {
            return false;
        };
        pending.store(true, Ordering::SeqCst);
        self.writer.send_byte();
        true
    }
}

/// The live listeners. Taken by `install`, `drop` and the handler (a
/// thread of the console's, step 2); nothing panics while holding it.
static LISTENERS: Mutex<Vec<Arc<Listener>>> = Mutex::new(Vec::new());

fn listeners() -> MutexGuard<'static, Vec<Arc<Listener>>> {
    LISTENERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What `SetConsoleCtrlHandler` reported at step 1, once per process.
static INSTALLED: OnceLock<io::Result<()>> = OnceLock::new();

fn install_handler() -> io::Result<()> {
    let installed = INSTALLED.get_or_init(|| {
        // SAFETY: `handler` has the `PHANDLER_ROUTINE` signature and lives
        // for the whole process.
        if unsafe { SetConsoleCtrlHandler(Some(handler), 1) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    });
    match installed {
        Ok(()) => Ok(()),
        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
    }
}

/// The console control handler (steps 2 and 3): any thread may call it
/// with any event code (the system calls it on a thread of its own).
extern "system" fn handler(kind: u32) -> BOOL {
    handle(kind, &listeners())
}

/// Steps 2 and 3 for `listeners`.
fn handle(kind: u32, listeners: &[Arc<Listener>]) -> BOOL {
    if kind != CTRL_C_EVENT && kind != CTRL_BREAK_EVENT {
        return 0; // not ours: let the next handler (or the default) act
    }
    let mut wanted = false;
    for listener in listeners {
        wanted |= listener.deliver(kind as i32);
    }
    BOOL::from(wanted)
}

/// Delivers Ctrl-C to this process as the system does: calls the installed
/// handler (the system calls it on a thread of its own; so may the caller).
/// For tests: under Wine 8, `GenerateConsoleCtrlEvent` fails with
/// `ERROR_INVALID_ACCESS` (12) for a test process, even after
/// `AllocConsole`.
#[cfg(all(test, not(miri)))]
pub(crate) fn simulate_ctrl_c() {
    assert_eq!(handler(CTRL_C_EVENT), 1, "Ctrl-C not handled");
}

/// The handler's dispatch, on listeners of the tests' own (the process's
/// list is shared with the signal module's tests, which deliver Ctrl-C
/// while they run).
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use windows_sys::Win32::System::Console::CTRL_CLOSE_EVENT;

    /// Whether `reader` receives a datagram within `wait`.
    fn receives(reader: &PipeReader, wait: Duration) -> bool {
        reader.0.set_nonblocking(false).unwrap();
        reader.0.set_read_timeout(Some(wait)).unwrap();
        let got = reader.0.recv(&mut [0u8; 16]).is_ok();
        reader.0.set_nonblocking(true).unwrap();
        got
    }

    #[test]
    fn only_events_a_listener_wants_are_handled_the_rest_passed_on() {
        let (_reader, writer) = self_pipe().unwrap();
        let wants_c = Arc::new(Listener::new(&[CTRL_C_EVENT as i32], writer));
        let list = [wants_c];
        assert_eq!(handle(CTRL_C_EVENT, &list), 1);
        assert_eq!(
            handle(CTRL_BREAK_EVENT, &list),
            0,
            "nobody wants Ctrl-Break"
        );
        assert_eq!(handle(CTRL_CLOSE_EVENT, &list), 0);
        // No listener left: Ctrl-C ends the process again.
        assert_eq!(handle(CTRL_C_EVENT, &[]), 0);
    }

    #[test]
    fn an_event_from_another_thread_reaches_only_the_listeners_that_want_it() {
        let (break_reader, break_writer) = self_pipe().unwrap();
        let (both_reader, both_writer) = self_pipe().unwrap();
        let wants_break = Arc::new(Listener::new(&[CTRL_BREAK_EVENT as i32], break_writer));
        let wants_both = Arc::new(Listener::new(CTRL_C, both_writer));
        let list = vec![wants_break.clone(), wants_both.clone()];
        let handled = std::thread::spawn(move || handle(CTRL_C_EVENT, &list));
        assert_eq!(handled.join().unwrap(), 1);

        assert!(receives(&both_reader, Duration::from_secs(10)));
        let both = Handlers {
            listener: wants_both,
        };
        assert_eq!(both.take_pending(), Some(CTRL_C_EVENT as i32));
        assert_eq!(both.take_pending(), None);
        both_reader.drain().unwrap();

        assert!(!receives(&break_reader, Duration::from_millis(50)));
        let only_break = Handlers {
            listener: wants_break,
        };
        assert_eq!(only_break.take_pending(), None);
    }

    #[test]
    fn dropped_handlers_leave_the_list() {
        let (_reader, writer) = self_pipe().unwrap();
        let handlers = Handlers::install(CTRL_C, writer).unwrap();
        let listener = handlers.listener.clone();
        let listed = || listeners().iter().any(|l| Arc::ptr_eq(l, &listener));
        assert!(listed());
        drop(handlers);
        assert!(!listed());
    }

    #[test]
    fn only_ctrl_c_and_ctrl_break_can_be_handled() {
        let (_reader, writer) = self_pipe().unwrap();
        let err = Handlers::install(&[CTRL_CLOSE_EVENT as i32], writer)
            .err()
            .expect("CTRL_CLOSE_EVENT refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
