//! Unix signal handlers, raw: a self-pipe, and handlers that write to it.
//!
//! This file provides the primitives the signal protocol is built on; the
//! protocol itself (who drains the pipe, when flags are read, how a task
//! waits) is written down in `src/signal/mod.rs`.
//!
//! - `self_pipe()`: a connected pair of non-blocking Unix sockets. The
//!   `PipeReader` end is a file descriptor to register with a poller
//!   (`AsFd`) and `drain`; the `PipeWriter` end goes to the handlers.
//! - `Handlers::install(signals, writer)`: one handler per signal, whose
//!   only work is async-signal-safe: an atomic store to the signal's
//!   pending flag and one `write(2)` of one byte to the pipe (`EAGAIN`
//!   ignored: a full pipe already reads as "something arrived"). No
//!   allocation, no lock. `take_pending` swaps a flag back.
//! - `CTRL_C`: the signals that mean Ctrl-C here (`SIGINT`).
//!
//! # Claiming a signal and handing it back
//!
//! 1. `Handlers::install`, for each signal, under the process-wide
//!    [`CLAIMS`] lock: if no live `Handlers` wants the signal yet, it
//!    records the signal's disposition (`SIG_DFL`, `SIG_IGN` or a foreign
//!    handler); it registers a handler through `signal-hook-registry`
//!    (which chains to earlier handlers and saves/restores `errno`); if
//!    step 2 had put the recorded disposition back, it reinstalls the
//!    registry's process handler (the registry installs it only at its
//!    first registration for a signal, and never removes it); and it counts
//!    one more interest in the signal.
//! 2. Dropping `Handlers`, under the same lock, counts one interest less in
//!    each of its signals. When a signal's count reaches zero and the
//!    registry's handler is still the one installed, it puts back the
//!    disposition recorded at step 1: a `SIG_DFL` signal does its default
//!    action again (`SIGTERM` terminates), a `SIG_IGN` one stays ignored
//!    (across `exec` too), a foreign handler is called directly. Then it
//!    unregisters its handlers; no handler writes to the pipe after that.
//!
//! Unregistering alone would not do: the registry keeps its process handler
//! installed with no action left to run, so the signal would be ignored.
//! The registry cannot say whether another library registered with it for
//! the same signal *after* ebbtide did; if so, step 2 ends that library's
//! deliveries too.

use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use signal_hook_registry::SigId;

/// The signals that mean Ctrl-C.
pub(crate) const CTRL_C: &[i32] = &[libc::SIGINT];

/// Signals `signal-hook-registry` refuses (it panics on them).
const FORBIDDEN: [i32; 5] = [
    libc::SIGKILL,
    libc::SIGSTOP,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGSEGV,
];

/// A self-pipe: the read end for a poller, the write end for handlers.
pub(crate) fn self_pipe() -> io::Result<(PipeReader, PipeWriter)> {
    let (read, write) = UnixStream::pair()?;
    read.set_nonblocking(true)?;
    write.set_nonblocking(true)?;
    Ok((PipeReader(read), PipeWriter(write)))
}

/// Read end of the self-pipe: readable once a handler has written to it.
pub(crate) struct PipeReader(UnixStream);

impl PipeReader {
    /// Reads everything written so far, without blocking.
    ///
    /// # Errors
    ///
    /// The OS error of `read`, other than "nothing to read".
    pub(crate) fn drain(&self) -> io::Result<()> {
        let mut buf = [0u8; 128];
        loop {
            match (&self.0).read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for PipeReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Write end of the self-pipe, owned by the handlers (shared among a
/// `Handlers`' signals).
pub(crate) struct PipeWriter(UnixStream);

impl PipeWriter {
    /// One byte, async-signal-safe (a `write(2)`; a full pipe is ignored).
    fn write_byte(&self) {
        let byte = 1u8;
        // SAFETY: `self.0` keeps the descriptor open; the buffer is one
        // valid byte.
        unsafe { libc::write(self.0.as_raw_fd(), (&raw const byte).cast(), 1) };
    }
}

/// Handlers for a set of signals, each setting its pending flag and writing
/// to one self-pipe; released on drop (step 2).
pub(crate) struct Handlers {
    /// `(signal, pending)`, shared with the handlers.
    pending: Arc<[(i32, AtomicBool)]>,
    /// One claimed signal and its registered handler per entry.
    claims: Vec<(i32, SigId)>,
}

impl Handlers {
    /// Claims each of `signals` (step 1) with a handler that sets its flag
    /// and writes to `writer`.
    ///
    /// # Errors
    ///
    /// If a signal cannot be handled (`SIGKILL`, `SIGSTOP`, `SIGILL`,
    /// `SIGFPE`, `SIGSEGV`, or a number out of range) or `sigaction` fails;
    /// the signals claimed before it are released.
    pub(crate) fn install(signals: &[i32], writer: PipeWriter) -> io::Result<Handlers> {
        if let Some(&sig) = signals.iter().find(|s| FORBIDDEN.contains(s)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "ebbtide: signal {sig} cannot be handled: SIGKILL and SIGSTOP cannot be \
                     caught, and SIGILL, SIGFPE and SIGSEGV are not safe to handle asynchronously"
                ),
            ));
        }
        let pending: Arc<[(i32, AtomicBool)]> = signals
            .iter()
            .map(|&s| (s, AtomicBool::new(false)))
            .collect();
        let writer = Arc::new(writer);
        let mut me = Handlers {
            pending,
            claims: Vec::new(),
        };
        for (index, &sig) in signals.iter().enumerate() {
            let delivery = Delivery {
                pending: me.pending.clone(),
                index,
                writer: writer.clone(),
            };
            // On error, dropping `me` releases the signals claimed so far.
            let id = claim(sig, delivery).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("ebbtide: cannot handle signal {sig}: {e}"),
                )
            })?;
            me.claims.push((sig, id));
        }
        Ok(me)
    }

    /// A signal delivered since it was last taken, clearing its flag.
    pub(crate) fn take_pending(&self) -> Option<i32> {
        self.pending
            .iter()
            .find(|(_, p)| p.swap(false, Ordering::SeqCst))
            .map(|(sig, _)| *sig)
    }
}

impl Drop for Handlers {
    fn drop(&mut self) {
        // Step 2: no handler writes to the pipe after this.
        for (sig, id) in self.claims.drain(..) {
            release(sig, id);
        }
    }
}

/// What the handler of one signal of one `Handlers` touches.
struct Delivery {
    /// The `Handlers`' flags; this handler sets `pending[index]`.
    pending: Arc<[(i32, AtomicBool)]>,
    index: usize,
    /// Kept open while the handler exists.
    writer: Arc<PipeWriter>,
}

impl Delivery {
    /// Async-signal-safe only (an atomic store and a `write(2)`; no
    /// allocation, no lock, no panic: `index` is in bounds by construction,
    /// and `get` keeps even that from panicking).
    fn deliver(&self) {
        if let Some((_, pending)) = self.pending.get(self.index) {
            pending.store(true, Ordering::SeqCst);
        }
        self.writer.write_byte();
    }
}

/// A signal's disposition as `sigaction(2)` reported it.
///
/// # Invariant
///
/// Only [`Disposition::of`] makes one, from what the OS had installed: its
/// handler, if it has one, is one that was installed for the signal, so
/// installing it again is as sound as it was then.
#[derive(Clone, Copy)]
struct Disposition(libc::sigaction);

impl Disposition {
    /// The disposition of `sig` now.
    fn of(sig: i32) -> io::Result<Disposition> {
        // SAFETY: `sigaction` is a plain C struct; all-zero is a valid value.
        let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the disposition; `now` is
        // valid to write.
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut now) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Disposition(now))
    }

    /// Makes this the disposition of `sig`.
    fn install(&self, sig: i32) -> io::Result<()> {
        // SAFETY: by the type's invariant the handler (if any) is valid for
        // `sig`; `SIG_DFL`/`SIG_IGN` always are. The old action is not read.
        if unsafe { libc::sigaction(sig, &self.0, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Whether both run the same handler (or are both `SIG_DFL`, or both
    /// `SIG_IGN`).
    fn same_handler(&self, other: &Disposition) -> bool {
        self.0.sa_sigaction == other.0.sa_sigaction
    }
}

/// One signal that `Handlers` have claimed in this process (steps 1 and 2).
struct Claim {
    signal: i32,
    /// Live `Handlers` registrations for `signal`.
    interests: usize,
    /// The disposition when the current run of interest began (step 1),
    /// put back when it ends (step 2).
    before: Disposition,
    /// `signal-hook-registry`'s process handler for `signal`, as installed
    /// at ebbtide's first registration, reinstalled when interest resumes
    /// after step 2 put `before` back.
    registry: Disposition,
}

/// Every signal ever claimed, a few entries. Taken by `Handlers::install`
/// and `drop`, never by a signal handler.
static CLAIMS: Mutex<Vec<Claim>> = Mutex::new(Vec::new());

fn claims() -> MutexGuard<'static, Vec<Claim>> {
    // Nothing panics while holding it; a poisoned list is still consistent.
    CLAIMS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Step 1 for one signal: registers `delivery`'s handler and counts the
/// interest. On error nothing is registered or counted.
fn claim(sig: i32, delivery: Delivery) -> io::Result<SigId> {
    let mut claims = claims();
    let index = claims.iter().position(|c| c.signal == sig);
    let first = index.is_none_or(|i| claims[i].interests == 0);
    let before = Disposition::of(sig)?;
    // SAFETY: the action only calls `Delivery::deliver`, which is
    // async-signal-safe (an atomic store and a `write(2)`; no allocation,
    // no lock, no panic).
    let id = unsafe { signal_hook_registry::register(sig, move || delivery.deliver()) }?;
    let counted = (|| -> io::Result<()> {
        match index {
            None => claims.push(Claim {
                signal: sig,
                interests: 1,
                before,
                registry: Disposition::of(sig)?,
            }),
            Some(i) => {
                let claim = &mut claims[i];
                if first {
                    claim.before = before;
                    if !Disposition::of(sig)?.same_handler(&claim.registry) {
                        claim.registry.install(sig)?;
                    }
                }
                claim.interests += 1;
            }
        }
        Ok(())
    })();
    match counted {
        Ok(()) => Ok(id),
        Err(e) => {
            signal_hook_registry::unregister(id);
            Err(e)
        }
    }
}

/// Step 2 for one signal: uncounts the interest, puts the recorded
/// disposition back if it was the last, and unregisters the handler.
fn release(sig: i32, id: SigId) {
    let mut claims = claims();
    if let Some(claim) = claims.iter_mut().find(|c| c.signal == sig) {
        claim.interests -= 1;
        let ours_installed =
            Disposition::of(sig).is_ok_and(|now| now.same_handler(&claim.registry));
        if claim.interests == 0 && ours_installed && !claim.before.same_handler(&claim.registry) {
            // A failure leaves the registry's handler in place: the signal
            // is then ignored, which is all `drop` can offer.
            let _ = claim.before.install(sig);
        }
    }
    signal_hook_registry::unregister(id);
}

/// Delivers Ctrl-C to this process as the OS does (`raise(SIGINT)`), for
/// tests. Only while a `Handlers` for `CTRL_C` lives: otherwise `SIGINT`
/// does what it did before, which may end the test process.
#[cfg(all(test, not(miri)))]
pub(crate) fn simulate_ctrl_c() {
    // SAFETY: `raise` takes no pointer; the signal runs the installed
    // handlers (the caller keeps one installed).
    assert_eq!(unsafe { libc::raise(libc::SIGINT) }, 0);
}
