//! Unix signals through the self-pipe trick, and handing each signal back
//! when ebbtide no longer wants it.
//!
//! 1. `Signals::new` makes a non-blocking socket pair and registers the read
//!    end with the current runtime's reactor. Then, for each signal, under
//!    the process-wide [`CLAIMS`] lock: if no live `Signals` wants the signal
//!    yet, it records the signal's disposition (`SIG_DFL`, `SIG_IGN` or a
//!    foreign handler); it registers a handler through `signal-hook-registry`
//!    (which chains to earlier handlers and saves/restores `errno`); if
//!    step 4 had put the recorded disposition back, it reinstalls the
//!    registry's process handler (the registry installs it only at its first
//!    registration for a signal, and never removes it); and it counts one
//!    more interest in the signal.
//! 2. The handler does two async-signal-safe things and nothing else: it
//!    sets the signal's pending flag (an atomic store) and `write`s one byte
//!    to the pipe (ignoring `EAGAIN`: a full pipe already means "wake up").
//!    No allocation, no lock.
//! 3. The stream drains the pipe, *then* reads the flags: a signal whose
//!    byte arrives after the drain leaves the pipe readable, so it is never
//!    lost; many deliveries of one signal coalesce into one item, with at
//!    least one item after the last delivery.
//! 4. Dropping `Signals`, under the same lock, counts one interest less in
//!    each of its signals. When a signal's count reaches zero and the
//!    registry's handler is still the one installed, it puts back the
//!    disposition recorded at step 1: a `SIG_DFL` signal does its default
//!    action again (`SIGTERM` terminates), a `SIG_IGN` one stays ignored
//!    (across `exec` too), a foreign handler is called directly. Then it
//!    unregisters its handlers, before closing the pipe.
//!
//! Unregistering alone would not do: the registry keeps its process handler
//! installed with no action left to run, so the signal would be ignored.
//! The registry cannot say whether another library registered with it for
//! the same signal *after* ebbtide did; if so, step 4 ends that library's
//! deliveries too.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use signal_hook_registry::SigId;

use crate::io::Async;

/// Signals `signal-hook-registry` refuses (it panics on them).
const FORBIDDEN: [i32; 5] = [
    libc::SIGKILL,
    libc::SIGSTOP,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGSEGV,
];

/// A stream of the Unix signals it was created for; see the module doc.
pub(crate) struct Signals {
    /// Read end of the self-pipe.
    pipe: Async<UnixStream>,
    /// `(signal, pending)`, shared with the handlers.
    pending: Arc<[(i32, AtomicBool)]>,
    /// One claimed signal and its registered handler per entry, released on
    /// drop (step 4).
    claims: Vec<(i32, SigId)>,
}

impl Signals {
    pub(crate) fn new(signals: &[i32]) -> io::Result<Signals> {
        if let Some(&sig) = signals.iter().find(|s| FORBIDDEN.contains(s)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "ebbtide: signal {sig} cannot be handled: SIGKILL and SIGSTOP cannot be \
                     caught, and SIGILL, SIGFPE and SIGSEGV are not safe to handle asynchronously"
                ),
            ));
        }
        let (read, write) = UnixStream::pair()?;
        write.set_nonblocking(true)?;
        let pipe = Async::new(read)?;
        let pending: Arc<[(i32, AtomicBool)]> = signals
            .iter()
            .map(|&s| (s, AtomicBool::new(false)))
            .collect();
        let write = Arc::new(write);
        let mut me = Signals {
            pipe,
            pending,
            claims: Vec::new(),
        };
        for (index, &sig) in signals.iter().enumerate() {
            let delivery = Delivery {
                pending: me.pending.clone(),
                index,
                write: write.clone(),
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

    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<i32>> {
        loop {
            // Step 3: drain, then look at the flags.
            let mut buf = [0u8; 128];
            loop {
                match self.pipe.get_ref().read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            if let Some((sig, _)) = self
                .pending
                .iter()
                .find(|(_, p)| p.swap(false, Ordering::SeqCst))
            {
                return Poll::Ready(Ok(*sig));
            }
            std::task::ready!(self.pipe.poll_readable(cx))?;
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // Step 4: no handler writes to the pipe after this.
        for (sig, id) in self.claims.drain(..) {
            release(sig, id);
        }
    }
}

/// What the handler of one signal of one `Signals` touches (step 2).
struct Delivery {
    /// The `Signals`' flags; this handler sets `pending[index]`.
    pending: Arc<[(i32, AtomicBool)]>,
    index: usize,
    /// Write end of the self-pipe, kept open while the handler exists.
    write: Arc<UnixStream>,
}

impl Delivery {
    /// Step 2: async-signal-safe only (an atomic store and a `write(2)`;
    /// no allocation, no lock, no panic: `index` is in bounds by
    /// construction, and `get` keeps even that from panicking).
    fn deliver(&self) {
        if let Some((_, pending)) = self.pending.get(self.index) {
            pending.store(true, Ordering::SeqCst);
        }
        let byte = 1u8;
        // SAFETY: `self.write` keeps the descriptor open; the buffer is one
        // valid byte.
        unsafe { libc::write(self.write.as_raw_fd(), (&raw const byte).cast(), 1) };
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

/// One signal that `Signals` have handled in this process (steps 1 and 4).
struct Claim {
    signal: i32,
    /// Live `Signals` registrations for `signal`.
    interests: usize,
    /// The disposition when the current run of interest began (step 1),
    /// put back when it ends (step 4).
    before: Disposition,
    /// `signal-hook-registry`'s process handler for `signal`, as installed
    /// at ebbtide's first registration, reinstalled when interest resumes
    /// after step 4 put `before` back.
    registry: Disposition,
}

/// Every signal ever claimed, a few entries. Taken by `Signals::new` and
/// `drop`, never by a signal handler.
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

/// Step 4 for one signal: uncounts the interest, puts the recorded
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
