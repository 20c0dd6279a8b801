//! Linux poller: `epoll` plus one edge-triggered `eventfd`, one system call
//! per wait.
//!
//! `polling::Poller` (used on every other platform) costs five system calls
//! per `wait` on Linux: `timerfd_settime` and an `epoll_ctl` to arm its
//! timer, `epoll_wait`, a `read` of its notification `eventfd` and an
//! `epoll_ctl` to re-arm it (both registered oneshot). A worker that drives
//! the reactor between short bursts of work pays them every time, and they
//! were most of ebbtide's system calls per echo round trip (see
//! `docs/benchmarks.md`). This poller keeps `polling`'s API (the items the
//! reactor uses, with `polling::Event` and `PollMode`) and its semantics.
//!
//! # Protocol
//!
//! 1. `new`: `epoll_create1(EPOLL_CLOEXEC)`, a non-blocking `eventfd`, and
//!    that eventfd registered once with `EPOLLIN | EPOLLET` under the reserved
//!    key [`NOTIFY_KEY`]. It is never re-armed.
//! 2. `notify` (async-signal-safe: an atomic swap and at most one `write`):
//!    if the `notified` flag was clear, set it and write 1 to the eventfd.
//!    Every write is a new edge, so an edge-triggered registration reports it
//!    whether or not the counter was read since. The counter is never read
//!    in normal operation; a write that fails with `EAGAIN` (the counter at
//!    its maximum, after 2^64 - 2 writes) drains it and writes again.
//! 3. `wait(timeout)`: one `epoll_wait`, or `epoll_pwait2` where the kernel
//!    has it (Linux 5.11+) for a nanosecond timeout; otherwise the timeout
//!    is rounded *up* to whole milliseconds, so a wait never ends before the
//!    deadline it was given. Then the flag is cleared and the notification
//!    event is removed from the list. A `notify` between the wait's return
//!    and the clear is coalesced into this wake-up; that is safe because
//!    every caller re-checks its state after `wait` returns (as with
//!    `polling`, which coalesces the same way).
//! 4. Interests are `polling`'s plus `EPOLLRDHUP`: readable = `EPOLLIN |
//!    EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR`, writable = `EPOLLOUT |
//!    EPOLLHUP | EPOLLERR`, and `PollMode` maps to `EPOLLONESHOT` /
//!    `EPOLLET` / both / neither. Reported events are turned back into
//!    `polling::Event`s with the same tests, and `is_interrupt()` set when
//!    the read side is closed (`EPOLLRDHUP` or `EPOLLHUP`). That flag, which
//!    `polling` does not report, is what lets a stream read skip its next
//!    `recv` after a short one ([`crate::reactor`]'s `source` step 6).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polling::{Event, PollMode};

use super::uring::{Ring, RING_KEY};
use super::{Completion, IoBackend};

/// Whether events say a stream's read side is closed: yes, `EPOLLRDHUP`
/// arrives as `Event::is_interrupt`.
pub(crate) const REPORTS_READ_CLOSED: bool = true;

/// The key of the notification eventfd; never a source key (the reactor's
/// keys are slab indices, far below this).
const NOTIFY_KEY: u64 = u64::MAX;

/// Events returned by one `wait` at most (as `polling::Events::new()`).
const EVENTS_CAPACITY: usize = 1024;

/// `epoll_pwait2`: unknown until the first timed wait, then kept.
static PWAIT2: AtomicBool = AtomicBool::new(true);

/// Step 4: the epoll flags that make an event readable.
const READ_FLAGS: u32 =
    (libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
/// Step 4: the flags that say the read side is closed (peer FIN or hang-up).
const CLOSED_FLAGS: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP) as u32;
/// Step 4: the epoll flags that make an event writable.
const WRITE_FLAGS: u32 = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;

/// One epoll instance and its notification eventfd; on the io_uring
/// backend, its ring (`uring.rs`), whose eventfd is registered here.
#[derive(Debug)]
pub(crate) struct Poller {
    /// Declared first, so dropped first (its eventfd is in `epoll`).
    ring: Option<Arc<Ring>>,
    epoll: OwnedFd,
    notify_fd: OwnedFd,
    /// Step 2: a notification was written and not yet consumed by a wait.
    notified: AtomicBool,
}

/// The events of one `wait`: readiness, and on the io_uring backend the
/// ring's completions.
pub(crate) struct Events {
    list: Vec<libc::epoll_event>,
    completions: Vec<Completion>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("len", &self.list.len())
            .finish()
    }
}

impl Events {
    pub(crate) fn new() -> Events {
        Events {
            list: Vec::with_capacity(EVENTS_CAPACITY),
            completions: Vec::new(),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.list.clear();
        self.completions.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty() && self.completions.is_empty()
    }

    /// The ring's completions (io_uring backend; none on epoll).
    pub(crate) fn completions(&self) -> &[Completion] {
        &self.completions
    }

    /// Step 4: the reported events as `polling` reports them.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.list.iter().map(|ev| {
            let flags = ev.events;
            let key = ev.u64 as usize;
            let mut event = Event::new(key, flags & READ_FLAGS != 0, flags & WRITE_FLAGS != 0);
            event.set_interrupt(flags & CLOSED_FLAGS != 0);
            event
        })
    }
}

/// Turns a `-1` return into the thread's `errno`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Step 4: the `epoll_event` for `interest` registered in `mode`.
fn epoll_event(interest: Event, mode: PollMode) -> libc::epoll_event {
    let mut flags = match mode {
        PollMode::Oneshot => libc::EPOLLONESHOT as u32,
        PollMode::Level => 0,
        PollMode::Edge => libc::EPOLLET as u32,
        PollMode::EdgeOneshot => (libc::EPOLLET | libc::EPOLLONESHOT) as u32,
        // `PollMode` is non-exhaustive; a mode added later is not supported.
        _ => libc::EPOLLONESHOT as u32,
    };
    if interest.readable {
        flags |= READ_FLAGS;
    }
    if interest.writable {
        flags |= WRITE_FLAGS;
    }
    libc::epoll_event {
        events: flags,
        u64: interest.key as u64,
    }
}

/// The poller for `requested`: `Epoll` plain; `IoUring` with a ring, or
/// the ring's setup error; `Auto` with a ring if one can be set up, else
/// plain (the fallback is silent: ENOSYS, EPERM under seccomp or
/// `kernel.io_uring_disabled`, a kernel without what `uring.rs` needs).
pub(crate) fn new_poller(requested: IoBackend) -> io::Result<(Poller, IoBackend)> {
    let mut poller = Poller::new()?;
    match requested {
        IoBackend::Epoll => Ok((poller, IoBackend::Epoll)),
        IoBackend::Auto | IoBackend::IoUring => match Ring::new(poller.epoll.as_raw_fd()) {
            Ok(ring) => {
                poller.ring = Some(Arc::new(ring));
                Ok((poller, IoBackend::IoUring))
            }
            Err(_) if requested == IoBackend::Auto => Ok((poller, IoBackend::Epoll)),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("ebbtide: the io_uring I/O backend cannot run here: {e}"),
            )),
        },
        other => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("ebbtide: the {other:?} I/O backend is not available on Linux"),
        )),
    }
}

impl Poller {
    /// Step 1.
    pub(crate) fn new() -> io::Result<Poller> {
        // SAFETY: plain system calls; each descriptor is owned at once.
        let epoll = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
        // SAFETY: as above.
        let notify_fd = unsafe {
            OwnedFd::from_raw_fd(cvt(libc::eventfd(
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
            ))?)
        };
        let poller = Poller {
            ring: None,
            epoll,
            notify_fd,
            notified: AtomicBool::new(false),
        };
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: NOTIFY_KEY,
        };
        poller.ctl(libc::EPOLL_CTL_ADD, poller.notify_fd.as_raw_fd(), &mut ev)?;
        Ok(poller)
    }

    pub(crate) fn supports_edge(&self) -> bool {
        true
    }

    /// The io_uring whose queue this poller submits and reaps around its
    /// waits, on that backend.
    pub(crate) fn ring(&self) -> Option<&Arc<Ring>> {
        self.ring.as_ref()
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, ev: &mut libc::epoll_event) -> io::Result<()> {
        // SAFETY: `ev` is a valid event for the call's duration; the kernel
        // checks `fd` (a closed descriptor is `EBADF`, not UB).
        cvt(unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, ev) })?;
        Ok(())
    }

    /// Step 2. Async-signal-safe: no allocation, no lock.
    pub(crate) fn notify(&self) -> io::Result<()> {
        if self.notified.swap(true, Ordering::AcqRel) {
            return Ok(()); // a notification is already pending
        }
        let one: u64 = 1;
        loop {
            // SAFETY: writes 8 bytes from a live `u64` to our eventfd.
            let n = unsafe {
                libc::write(
                    self.notify_fd.as_raw_fd(),
                    (&one as *const u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => {
                    // The counter is full: drain it, then write again.
                    let mut buf = 0u64;
                    // SAFETY: reads 8 bytes into a live `u64`.
                    unsafe {
                        libc::read(
                            self.notify_fd.as_raw_fd(),
                            (&mut buf as *mut u64).cast(),
                            std::mem::size_of::<u64>(),
                        )
                    };
                }
                _ => {
                    self.notified.store(false, Ordering::Release);
                    return Err(err);
                }
            }
        }
    }

    /// Step 3. Returns the number of I/O events (the notification excluded).
    pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        events.clear();
        let mut timeout = timeout;
        // `uring.rs` step 3: submit what is queued; completions already
        // waiting make this wait a poll.
        if let Some(ring) = &self.ring {
            if ring.before_wait(timeout != Some(Duration::ZERO)) {
                timeout = Some(Duration::ZERO);
            }
        }
        let spare = events.list.spare_capacity_mut();
        let n = self.epoll_wait(spare, timeout);
        // Clear the flag even on error: a pending notification is still
        // reported by the next wait, as the eventfd edge is not consumed.
        self.notified.store(false, Ordering::Release);
        if let Some(ring) = &self.ring {
            // `uring.rs` step 5, whatever the wait returned: the reaped
            // completions are the only report of their ops, and a wait
            // interrupted for the ring's task work (`EINTR`) is how some
            // of them arrive.
            ring.after_wait(&mut events.completions);
            if !events.completions.is_empty() {
                return Ok(self.keep_events(events, n.unwrap_or(0)));
            }
        }
        let n = n?;
        Ok(self.keep_events(events, n))
    }

    /// The first `n` events of the wait, less the internal ones (the
    /// notification and the ring's eventfd); the count of what is left.
    fn keep_events(&self, events: &mut Events, n: usize) -> usize {
        // SAFETY: the kernel initialised the first `n` entries.
        unsafe { events.list.set_len(n) };
        events
            .list
            .retain(|ev| ev.u64 != NOTIFY_KEY && ev.u64 != RING_KEY);
        events.list.len() + events.completions.len()
    }

    fn epoll_wait(
        &self,
        spare: &mut [MaybeUninit<libc::epoll_event>],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let max = spare.len().min(libc::c_int::MAX as usize) as libc::c_int;
        let buf = spare.as_mut_ptr().cast::<libc::epoll_event>();
        let epfd = self.epoll.as_raw_fd();
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        if let Some(t) = timeout.filter(|t| !t.is_zero()) {
            if PWAIT2.load(Ordering::Relaxed) {
                let ts = libc::timespec {
                    tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                    tv_nsec: t.subsec_nanos() as _,
                };
                // SAFETY: `buf` has room for `max` events; `ts` lives for
                // the call; a null sigmask means "unchanged".
                let ret = unsafe {
                    libc::syscall(
                        libc::SYS_epoll_pwait2,
                        epfd,
                        buf,
                        max,
                        &ts as *const libc::timespec,
                        std::ptr::null::<libc::sigset_t>(),
                        0usize,
                    )
                };
                if ret >= 0 {
                    return Ok(ret as usize);
                }
                let err = io::Error::last_os_error();
                if err.raw_os_error() != Some(libc::ENOSYS) {
                    return Err(err);
                }
                PWAIT2.store(false, Ordering::Relaxed);
            }
        }
        let ms = match timeout {
            None => -1,
            // Step 3: round up, so the wait never ends before the deadline.
            Some(t) => t
                .as_nanos()
                .div_ceil(1_000_000)
                .min(libc::c_int::MAX as u128) as libc::c_int,
        };
        // SAFETY: `buf` has room for `max` events.
        let n = cvt(unsafe { libc::epoll_wait(epfd, buf, max, ms) })?;
        Ok(n as usize)
    }

    /// Registers `raw` with `interest` in `mode`.
    ///
    /// # Safety
    ///
    /// `raw` must stay open until it is deleted from this poller (as
    /// `polling::Poller::add_with_mode` requires).
    pub(crate) unsafe fn add_with_mode(
        &self,
        raw: RawFd,
        interest: Event,
        mode: PollMode,
    ) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, raw, &mut epoll_event(interest, mode))
    }

    pub(crate) fn modify_with_mode(
        &self,
        source: impl AsFd,
        interest: Event,
        mode: PollMode,
    ) -> io::Result<()> {
        let fd = source.as_fd().as_raw_fd();
        self.ctl(libc::EPOLL_CTL_MOD, fd, &mut epoll_event(interest, mode))
    }

    pub(crate) fn delete(&self, source: impl AsFd) -> io::Result<()> {
        let fd = source.as_fd().as_raw_fd();
        // A non-null event pointer, for kernels before 2.6.9.
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        self.ctl(libc::EPOLL_CTL_DEL, fd, &mut ev)
    }
}

/// The ring's completions among `events`.
pub(crate) fn completions(events: &Events) -> &[Completion] {
    events.completions()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;
    use std::time::Instant;

    fn keys(events: &Events) -> Vec<(usize, bool, bool)> {
        events
            .iter()
            .map(|e| (e.key, e.readable, e.writable))
            .collect()
    }

    #[test]
    fn a_timed_wait_never_ends_before_its_timeout() {
        let poller = Poller::new().unwrap();
        let mut events = Events::new();
        for t in [Duration::from_micros(300), Duration::from_millis(3)] {
            let start = Instant::now();
            assert_eq!(poller.wait(&mut events, Some(t)).unwrap(), 0);
            assert!(
                start.elapsed() >= t,
                "woke after {:?} < {t:?}",
                start.elapsed()
            );
        }
        assert_eq!(poller.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
    }

    #[test]
    fn notify_wakes_a_blocked_wait_and_is_consumed_by_it() {
        let poller = Arc::new(Poller::new().unwrap());
        let p2 = poller.clone();
        let t = std::thread::spawn(move || {
            let mut events = Events::new();
            // Blocks until notified (no timeout); the notification is not
            // reported as an event.
            assert_eq!(p2.wait(&mut events, None).unwrap(), 0);
            assert!(events.is_empty());
        });
        std::thread::sleep(Duration::from_millis(20));
        poller.notify().unwrap();
        t.join().unwrap();
        // A second notify is a new edge, though the counter was never read.
        poller.notify().unwrap();
        let mut events = Events::new();
        assert_eq!(
            poller
                .wait(&mut events, Some(Duration::from_secs(30)))
                .unwrap(),
            0
        );
        assert!(!poller.notified.load(Ordering::Acquire));
    }

    #[test]
    fn edge_registration_reports_each_new_arrival_once() {
        let poller = Poller::new().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        // SAFETY: `a` outlives its registration (deleted below).
        unsafe {
            poller
                .add_with_mode(a.as_raw_fd(), Event::all(7), PollMode::Edge)
                .unwrap();
        }
        let mut events = Events::new();
        let zero = Some(Duration::ZERO);
        // Writable at once; then nothing new.
        poller.wait(&mut events, zero).unwrap();
        assert_eq!(keys(&events), [(7, false, true)]);
        poller.wait(&mut events, zero).unwrap();
        assert_eq!(keys(&events), []);
        b.write_all(b"x").unwrap();
        poller
            .wait(&mut events, Some(Duration::from_secs(30)))
            .unwrap();
        assert_eq!(keys(&events), [(7, true, true)]);
        assert!(
            !events.iter().any(|e| e.is_interrupt()),
            "data is not a close"
        );
        poller.wait(&mut events, zero).unwrap();
        assert_eq!(keys(&events), [], "an edge is reported once");
        // Data and the peer's FIN together: one edge, readable and closed.
        b.write_all(b"z").unwrap();
        b.shutdown(std::net::Shutdown::Write).unwrap();
        poller
            .wait(&mut events, Some(Duration::from_secs(30)))
            .unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.key == 7 && e.readable && e.is_interrupt()),
            "{:?}",
            keys(&events)
        );
        poller.delete(&a).unwrap();
        drop(b);
        poller.wait(&mut events, zero).unwrap();
        assert_eq!(keys(&events), [], "deleted");
    }

    #[test]
    fn oneshot_registration_is_disarmed_by_its_event_until_modified() {
        let poller = Poller::new().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        // SAFETY: `a` outlives its registration.
        unsafe {
            poller
                .add_with_mode(a.as_raw_fd(), Event::readable(3), PollMode::Oneshot)
                .unwrap();
        }
        b.write_all(b"x").unwrap();
        let mut events = Events::new();
        poller
            .wait(&mut events, Some(Duration::from_secs(30)))
            .unwrap();
        assert_eq!(keys(&events), [(3, true, false)]);
        poller.wait(&mut events, Some(Duration::ZERO)).unwrap();
        assert_eq!(keys(&events), [], "disarmed");
        poller
            .modify_with_mode(&a, Event::readable(4), PollMode::Oneshot)
            .unwrap();
        poller.wait(&mut events, Some(Duration::ZERO)).unwrap();
        assert_eq!(keys(&events), [(4, true, false)], "re-armed, level data");
        drop(b);
        poller
            .modify_with_mode(&a, Event::readable(5), PollMode::Oneshot)
            .unwrap();
        poller.wait(&mut events, Some(Duration::ZERO)).unwrap();
        // EPOLLHUP is reported unasked and counts for both directions (as
        // in `polling`), so a waiter on either side sees the hang-up.
        assert_eq!(keys(&events), [(5, true, true)], "hang-up");
        assert!(events.iter().all(|e| e.is_interrupt()), "read side closed");
        poller.delete(&a).unwrap();
    }

    #[test]
    fn errors_name_the_bad_descriptor() {
        let poller = Poller::new().unwrap();
        let (a, _b) = UnixStream::pair().unwrap();
        let err = poller
            .modify_with_mode(&a, Event::readable(1), PollMode::Oneshot)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    }
}
