//! The `polling` crate's poller (kqueue on macOS and the BSDs, IOCP with
//! AFD polling on Windows), as the reactor's `Poller`: `polling::Poller`
//! with the calls the crate makes, and, on Windows, a wake-up after each
//! registration.
//!
//! # Registrations while another thread waits (Windows)
//!
//! `polling`'s IOCP poller does not start a registration (`add`, `modify`,
//! `add_waitable`, `modify_waitable`: an AFD poll, or a thread-pool wait on
//! a handle) in the caller unless a thread is in `wait` at that moment; it
//! queues it, and the next `wait` starts everything queued before it
//! blocks. Its check is not atomic with the queueing: it reads "nobody
//! waits", then pushes. A thread entering `wait` between the two — it marks
//! itself waiting, finds the queue empty, blocks — leaves the registration
//! queued while it sleeps, with no timeout if no timer is pending: the
//! event it was for (a socket's readiness, an overlapped op's completion)
//! is never reported, and its task waits forever. So:
//!
//! 1. Each registering call goes to `polling` first; the registration is
//!    then started, or queued.
//! 2. Then `notify`. A thread blocked in `wait` wakes and returns; the
//!    next `wait`, by any thread, starts what is queued before it blocks.
//!    A thread not yet blocked returns from its next `wait` at once (a
//!    spurious wake-up, allowed). `polling` coalesces notifications: one
//!    still pending when this one comes wakes a `wait` that has not
//!    returned yet, which is as good, because every `wait` starts the
//!    queue before it blocks.
//!
//! Removals (`delete`, `remove_waitable`) are never queued. kqueue applies
//! each change in the caller: nothing to do there.

pub(crate) use polling::Events;

use polling::{AsRawSource, AsSource, Event, PollMode};
use std::io;
use std::time::Duration;

use super::IoBackend;

/// `polling`'s backends do not report a closed read side with the event
/// (no `EPOLLRDHUP`): see `REPORTS_READ_CLOSED` in `sys/mod.rs`.
pub(crate) const REPORTS_READ_CLOSED: bool = false;

/// `polling::Poller`, with step 2 of the module doc after registrations.
pub(crate) struct Poller {
    inner: polling::Poller,
}

impl Poller {
    fn new() -> io::Result<Poller> {
        Ok(Poller {
            inner: polling::Poller::new()?,
        })
    }

    /// Whether the backend supports edge-triggered mode.
    pub(crate) fn supports_edge(&self) -> bool {
        self.inner.supports_edge()
    }

    /// Wakes the thread blocked in [`wait`](Self::wait), or the next one.
    pub(crate) fn notify(&self) -> io::Result<()> {
        self.inner.notify()
    }

    /// Waits for events, a notification, or the timeout.
    pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        self.inner.wait(events, timeout)
    }

    /// Registers `source` (steps 1–2).
    ///
    /// # Safety
    ///
    /// As `polling::Poller::add_with_mode`: `source` must be deleted from
    /// this poller before it is closed.
    pub(crate) unsafe fn add_with_mode(
        &self,
        source: impl AsRawSource,
        interest: Event,
        mode: PollMode,
    ) -> io::Result<()> {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.inner.add_with_mode(source, interest, mode)? };
        self.registered();
        Ok(())
    }

    /// Re-arms `source` (steps 1–2).
    pub(crate) fn modify_with_mode(
        &self,
        source: impl AsSource,
        interest: Event,
        mode: PollMode,
    ) -> io::Result<()> {
        self.inner.modify_with_mode(source, interest, mode)?;
        self.registered();
        Ok(())
    }

    /// Removes `source`.
    pub(crate) fn delete(&self, source: impl AsSource) -> io::Result<()> {
        self.inner.delete(source)
    }

    /// Step 2 after a registration that may have been queued.
    fn registered(&self) {
        if cfg!(windows) {
            // An error means the port is gone (teardown): nobody waits.
            let _ = self.inner.notify();
        }
    }
}

#[cfg(windows)]
impl Poller {
    /// Registers a waitable handle (steps 1–2): an event is reported under
    /// `interest`'s key once it is signalled.
    ///
    /// # Safety
    ///
    /// As `PollerIocpExt::add_waitable`: `handle` must stay open until
    /// [`remove_waitable`](Self::remove_waitable) returned for it.
    pub(crate) unsafe fn add_waitable(
        &self,
        handle: std::os::windows::io::RawHandle,
        interest: Event,
        mode: PollMode,
    ) -> io::Result<()> {
        use polling::os::iocp::PollerIocpExt;
        // SAFETY: the caller's contract, passed on.
        unsafe { self.inner.add_waitable(handle, interest, mode)? };
        self.registered();
        Ok(())
    }

    /// Re-arms a waitable handle (steps 1–2).
    pub(crate) fn modify_waitable(
        &self,
        handle: std::os::windows::io::BorrowedHandle<'_>,
        interest: Event,
        mode: PollMode,
    ) -> io::Result<()> {
        use polling::os::iocp::PollerIocpExt;
        self.inner.modify_waitable(handle, interest, mode)?;
        self.registered();
        Ok(())
    }

    /// Removes a waitable handle. An event already on its way (queued on
    /// the port, or being posted by its wait's callback) may still come.
    pub(crate) fn remove_waitable(
        &self,
        handle: std::os::windows::io::BorrowedHandle<'_>,
    ) -> io::Result<()> {
        use polling::os::iocp::PollerIocpExt;
        self.inner.remove_waitable(handle)
    }
}

/// The platform's one backend (`Auto` resolves to it); Linux's cannot be
/// asked for here.
pub(crate) fn new_poller(requested: IoBackend) -> io::Result<(Poller, IoBackend)> {
    let native = if cfg!(windows) {
        IoBackend::Iocp
    } else {
        IoBackend::Kqueue
    };
    if requested != IoBackend::Auto && requested != native {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("ebbtide: the {requested:?} I/O backend is not available on this platform (it has {native:?})"),
        ));
    }
    Ok((Poller::new()?, native))
}

/// No poller here reports completions with its events (IOCP's are
/// readiness-shaped events under keys the op layer claims).
pub(crate) fn completions(_events: &Events) -> &[super::Completion] {
    &[]
}

/// Steps 1–2 against the race they close: a thread registers a signalled
/// event just as another enters `wait` with no timeout, at many alignments
/// of the two. Each round, the waiter announces that it is about to wait,
/// then spins a round-dependent while before it does (so the rounds sweep
/// the window in which `polling` checks "nobody waits" and queues); the
/// registering thread registers as soon as it sees the announcement. The
/// waiter must report the event without any other wake-up; a round in
/// which it does not is rescued by a watchdog's `notify` and counted.
/// Without step 2, about one round in several thousand is lost (Wine).
#[cfg(all(test, windows))]
mod tests {
    use super::*;
    use std::os::windows::io::AsRawHandle;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    const KEY: usize = 7;
    const ROUNDS: usize = 20_000;
    /// The waiter's spins between announcing and waiting range over
    /// `0..SWEEP`, so its wait begins at each offset from the
    /// registration's check many times.
    const SWEEP: usize = 50;
    /// Far longer than a round ever takes unless its registration was
    /// lost: the waiter sleeps with no timeout.
    const STUCK: Duration = Duration::from_secs(10);

    #[test]
    fn a_waitable_registered_as_another_thread_enters_wait_is_reported_without_another_wake_up() {
        let poller = Arc::new(Poller::new().unwrap());
        let event = super::super::windows_io::create_event().unwrap();
        // SAFETY: the event is open (owned above). A manual-reset event
        // stays signalled, so every registration fires at once.
        let set = unsafe { windows_sys::Win32::System::Threading::SetEvent(event.as_raw_handle()) };
        assert_ne!(set, 0);
        let entering = Arc::new(AtomicUsize::new(0));
        let reported = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (poller, entering, reported, stop) = (
                poller.clone(),
                entering.clone(),
                reported.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let mut events = Events::new();
                for round in 1..=ROUNDS {
                    entering.store(round, Ordering::SeqCst);
                    for _ in 0..round % SWEEP {
                        std::hint::spin_loop();
                    }
                    loop {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        events.clear();
                        poller.wait(&mut events, None).unwrap();
                        if events.iter().any(|e| e.key == KEY) {
                            break;
                        }
                    }
                    reported.store(round, Ordering::SeqCst);
                }
            })
        };
        let mut rescued = 0;
        for round in 1..=ROUNDS {
            while entering.load(Ordering::SeqCst) != round {
                std::hint::spin_loop();
            }
            // SAFETY: the event stays open until after `remove_waitable`.
            unsafe {
                poller
                    .add_waitable(
                        event.as_raw_handle(),
                        Event::readable(KEY),
                        PollMode::Oneshot,
                    )
                    .unwrap()
            };
            let start = Instant::now();
            while reported.load(Ordering::SeqCst) != round {
                if start.elapsed() > STUCK {
                    // The registration sat queued while the waiter slept.
                    rescued += 1;
                    stop.store(true, Ordering::SeqCst);
                    poller.notify().unwrap();
                    break;
                }
                std::thread::yield_now();
            }
            poller
                .remove_waitable(std::os::windows::io::AsHandle::as_handle(&event))
                .unwrap();
            if rescued > 0 {
                break;
            }
        }
        waiter.join().unwrap();
        assert_eq!(
            rescued, 0,
            "a registration was reported only after a rescue"
        );
        assert_eq!(reported.load(Ordering::SeqCst), ROUNDS);
    }
}
