//! Readiness state of one registered I/O handle.
//!
//! # Protocol (edge-triggered backends: epoll, kqueue)
//!
//! 1. The handle is registered once for both directions in edge mode; no
//!    `epoll_ctl`/`kevent` call is made again until it is removed.
//! 2. Each direction keeps `ready`: "no call has proved it not ready since
//!    the last event". An event sets it; only evidence clears it: a call
//!    that returned `WouldBlock` with no event since (step 4), or a stream
//!    read that drained the receive queue (step 6). A successful call leaves
//!    it set. So `readable()` / `writable()` (`poll_ready`) resolve at once
//!    while the handle may be ready now (an idle connected stream is
//!    writable although `connect` consumed its edge long ago), and only
//!    otherwise wait.
//! 3. An event sets `ready` for its directions, bumps their `tick`, and takes
//!    *every* waiter of those directions: any number of tasks may wait on
//!    one direction (two `accept`s on one listener, two readers through
//!    `&TcpStream`, a `readable()` beside a read), and each is woken by the
//!    event that concerns it. The driver calls the wakers after releasing
//!    every lock.
//! 4. An I/O call is tried first. The caller reads the direction's `tick`
//!    before the call; on `WouldBlock` it calls `poll_wait(dir, tick)`: if an
//!    event arrived since the tick was read, the call is retried at once (the
//!    event may have raced with the `WouldBlock`); otherwise `ready` is
//!    cleared and the waker joins the direction's waiters. Edge events fire
//!    for every new arrival after the `WouldBlock`, so no wakeup is lost,
//!    and a stale `ready` never costs a second failing call. A `try_*`
//!    call (never waits) that returns `WouldBlock` clears `ready` the same
//!    way but joins no waiters (`clear_ready`), so a later `readable()`
//!    waits for the next event instead of resolving on stale readiness.
//! 5. A waiter set is a short list, deduplicated with `Waker::will_wake`
//!    (a task that polls again is one entry). A waker stays until the next
//!    event of its direction, even if its future was dropped meanwhile (a
//!    spurious wake later is harmless). So that tasks that stopped waiting
//!    cannot pile up, a set that reaches its limit is woken whole and
//!    emptied first: every waiter polls again and re-registers if it still
//!    waits. The limit starts at `MIN_WAITER_LIMIT` and doubles at each
//!    such flush, so many tasks that really wait (a thousand acceptors on
//!    one listener) cost one flush per doubling, not a wake storm; an event
//!    that empties the set resets it. Spurious wakes are allowed; lost ones
//!    are not.
//! 6. Stream reads only, and only where the poller reports a closed read
//!    side (`sys::REPORTS_READ_CLOSED`: Linux, `EPOLLRDHUP`): a read that
//!    returns fewer bytes than asked (`0 < n < len`), or a TCP read after
//!    which the kernel reports nothing queued (`sys::tcp_inq`), drained the
//!    socket's receive queue, so `on_success(Read, tick, drained = true)`
//!    clears `ready` and sets `skip_read` if no event arrived since the tick
//!    was read and the read side is not closed. While it is set,
//!    `skip_read_try` says to wait for the next event instead of trying a
//!    `recv` that would fail with `WouldBlock` (tokio's trick: one `recv`
//!    fewer per message; counted in `docs/benchmarks.md`, "System calls
//!    per echo message, per side"). Every read event clears it. An event whose
//!    `is_interrupt()` is set (the peer's FIN or a hang-up) sets the sticky
//!    `read_closed`: data and FIN often arrive in one edge, and without it
//!    the reader would wait forever for an edge that already came.
//!    `read_closed` only keeps the skip off; it never makes a wait return
//!    early, so no caller can spin on it. Datagram reads and the generic
//!    `Async<T>` never skip: a short datagram says nothing about the next
//!    one.
//! 7. Which call a stream read makes: a short read proves the queue empty
//!    by itself, but a read that filled its whole buffer may have left
//!    bytes queued, and only the OS's hint can say (`sys::tcp_inq`, asked
//!    for with `recvmsg`, dearer than `recv`). So a stream read asks for
//!    the hint only when the handle's previous read filled its buffer
//!    (`full_read`): requests smaller than the buffer (HTTP) are read with
//!    plain `recv`, a reader of exact-size messages (`read_exact`) asks
//!    every time after its first. Relaxed: a stale value picks the other
//!    of two correct calls, nothing more.
//!
//! On backends without edge mode (IOCP/AFD) the handle is registered in
//! oneshot mode with both directions armed, so that its first event reports
//! its initial readiness as an edge registration does (step 2: a fresh
//! connected stream is writable at once); every event disarms both,
//! re-arming those that still have waiters, and a direction is re-armed
//! when a waiter joins it. A direction that is not armed gets no event, so
//! there a successful call (other than a draining read) sets `ready`.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use polling::{Event, PollMode};

use crate::sys::{self, Poller, RawSource};

/// Which half of a handle's readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read = 0,
    Write = 1,
}

/// A registered handle.
///
/// # Invariant
///
/// `raw` is open from `Reactor::insert_source` until `Reactor::remove_source`
/// returns; the owner (`io::Async`) guarantees it by removing before closing.
pub(crate) struct Source {
    /// Slab key, also the `Event::key` the poller reports.
    pub(crate) key: usize,
    /// The OS handle, used for `modify`/`delete` only (the invariant keeps
    /// it open while the source is registered).
    raw: RawSource,
    /// Edge-triggered registration (no re-arming needed).
    edge: bool,
    /// Per-direction readiness; locked briefly, never while a waker runs.
    state: Mutex<State>,
    /// Step 5: per-direction event counters.
    ticks: [AtomicU32; 2],
    /// Step 6: the last stream read was short, no read event came since and
    /// the read side is not closed. Written under `state`'s lock, read
    /// without it: a stale value costs one `recv` or one lock, never a
    /// wake-up, because the wait it selects consults `ready` under the lock.
    skip_read: AtomicBool,
    /// Step 7: the last stream read filled its buffer.
    full_read: AtomicBool,
}

#[derive(Default)]
struct State {
    dirs: [Half; 2],
    /// Step 6: an event said the read side is closed (sticky).
    read_closed: bool,
    /// Oneshot mode only: the interest currently armed in the poller.
    armed: [bool; 2],
}

/// Step 5: the first limit of one direction's waiter set.
const MIN_WAITER_LIMIT: usize = 64;

struct Half {
    /// Step 2: the direction may be ready (no `WouldBlock` since the last
    /// event).
    ready: bool,
    /// Steps 3 and 5: every task waiting for this direction.
    waiters: Vec<Waker>,
    /// Step 5: the size at which `waiters` is flushed.
    limit: usize,
}

impl Default for Half {
    fn default() -> Half {
        Half {
            ready: false,
            waiters: Vec::new(),
            limit: MIN_WAITER_LIMIT,
        }
    }
}

impl Half {
    /// Step 5: adds `waker` unless it is there already (then returns it,
    /// for the caller to drop once unlocked). A full set is moved into
    /// `overflow` first, for the caller to wake once unlocked.
    fn add_waiter(&mut self, waker: Waker, overflow: &mut Vec<Waker>) -> Option<Waker> {
        if self.waiters.iter().any(|w| w.will_wake(&waker)) {
            return Some(waker);
        }
        if self.waiters.len() >= self.limit {
            overflow.append(&mut self.waiters);
            self.limit = self.limit.saturating_mul(2);
        }
        self.waiters.push(waker);
        None
    }
}

impl Source {
    pub(crate) fn new(key: usize, raw: RawSource, edge: bool) -> Source {
        Source {
            key,
            raw,
            edge,
            state: Mutex::new(State {
                // Oneshot mode: registered with both directions armed.
                armed: [!edge, !edge],
                ..State::default()
            }),
            ticks: [AtomicU32::new(0), AtomicU32::new(0)],
            skip_read: AtomicBool::new(false),
            full_read: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under this lock, so poisoning means nothing.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-arms the handle in oneshot mode with `interest`.
    pub(crate) fn modify(&self, poller: &Poller, interest: Event) -> io::Result<()> {
        // SAFETY: the invariant keeps `raw` open while registered, and every
        // caller holds the registered source.
        let handle = unsafe { sys::borrow(self.raw) };
        poller.modify_with_mode(handle, interest, PollMode::Oneshot)
    }

    /// Removes the handle from the poller (`Reactor::remove_source`, before
    /// the owner closes it).
    pub(crate) fn delete(&self, poller: &Poller) -> io::Result<()> {
        // SAFETY: the invariant: the handle is open until `remove_source`,
        // which calls this, returns.
        let handle = unsafe { sys::borrow(self.raw) };
        poller.delete(handle)
    }

    /// Step 2: `Ready` if `dir` may be ready now, or an event arrived since
    /// `since` (the tick this waiter saw when it last registered: another
    /// task may have cleared `ready` again since the event); otherwise joins
    /// the waiters and records the tick in `since`.
    pub(crate) fn poll_ready(
        &self,
        poller: &Poller,
        dir: Direction,
        since: &mut Option<u32>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let waker = cx.waker().clone(); // user code: not under the lock
        let st = self.lock();
        let tick = self.tick(dir);
        if st.dirs[dir as usize].ready || since.is_some_and(|t| t != tick) {
            return Poll::Ready(Ok(()));
        }
        *since = Some(tick);
        self.wait_locked(st, poller, dir, waker)
    }

    /// Step 4: a call in `dir` returned `WouldBlock`; `tick` is what
    /// `tick(dir)` read before it. `None` (the tick is unknown: the public
    /// `poll_readable`) consumes a set `ready` instead, so the caller
    /// retries at most once. `Ready`: retry the call.
    pub(crate) fn poll_wait(
        &self,
        poller: &Poller,
        dir: Direction,
        tick: Option<u32>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let waker = cx.waker().clone(); // user code: not under the lock
        let mut st = self.lock();
        let half = &mut st.dirs[dir as usize];
        match tick {
            // An event since the call: it may have raced with `WouldBlock`.
            Some(t) if self.tick(dir) != t => return Poll::Ready(Ok(())),
            // No event since: the `WouldBlock` proved the direction idle.
            Some(_) => half.ready = false,
            None if half.ready => {
                half.ready = false;
                return Poll::Ready(Ok(()));
            }
            None => {}
        }
        self.wait_locked(st, poller, dir, waker)
    }

    /// Joins `dir`'s waiters and arms it in oneshot mode; wakes an
    /// overflowing set (step 5) and drops a duplicate waker after unlocking.
    fn wait_locked(
        &self,
        mut st: MutexGuard<'_, State>,
        poller: &Poller,
        dir: Direction,
        waker: Waker,
    ) -> Poll<io::Result<()>> {
        let mut overflow = Vec::new();
        let duplicate = st.dirs[dir as usize].add_waiter(waker, &mut overflow);
        let mut result = Poll::Pending;
        if !self.edge && !st.armed[dir as usize] {
            st.armed[dir as usize] = true;
            let interest = self.interest(st.armed);
            if let Err(e) = self.modify(poller, interest) {
                result = Poll::Ready(Err(e));
            }
        }
        drop(st);
        drop(duplicate);
        for w in overflow {
            crate::wake::wake(w);
        }
        result
    }

    /// Step 5: the event count of `dir`, read before trying a call.
    #[inline]
    pub(crate) fn tick(&self, dir: Direction) -> u32 {
        self.ticks[dir as usize].load(Ordering::Acquire)
    }

    /// Step 6: a call in `dir` succeeded; `tick` is what `tick(dir)` read
    /// before it; `drained`: it was a stream read that proved the receive
    /// queue empty. Anything else leaves `ready` set (step 2); in oneshot
    /// mode, where a direction nobody waited on is not armed and so gets no
    /// event, the success itself is the news that `dir` is ready.
    pub(crate) fn on_success(&self, dir: Direction, tick: u32, drained: bool) {
        if !drained {
            if !self.edge {
                self.lock().dirs[dir as usize].ready = true;
            }
            return;
        }
        let mut st = self.lock();
        if self.ticks[dir as usize].load(Ordering::Acquire) != tick {
            return; // an event came meanwhile: it is not used up
        }
        st.dirs[dir as usize].ready = false;
        if dir == Direction::Read && sys::REPORTS_READ_CLOSED && !st.read_closed {
            self.skip_read.store(true, Ordering::Release);
        }
    }

    /// Step 4 without waiting (the `try_*` socket methods): a call in `dir`
    /// returned `WouldBlock`; `tick` is what `tick(dir)` read before it. If
    /// no event arrived since, the `WouldBlock` proved the direction idle:
    /// clear `ready` so a later `readable()`/`writable()` waits for the next
    /// event. No waker joins and nothing is armed.
    pub(crate) fn clear_ready(&self, dir: Direction, tick: u32) {
        let mut st = self.lock();
        if self.tick(dir) == tick {
            st.dirs[dir as usize].ready = false;
        }
    }

    /// Step 6: a stream read in progress should wait for the next event
    /// rather than try the call. One atomic load, no lock.
    #[inline]
    pub(crate) fn skip_read_try(&self) -> bool {
        self.skip_read.load(Ordering::Acquire)
    }

    /// Step 7: whether the next stream read should ask for the OS's
    /// queue hint.
    #[inline]
    pub(crate) fn last_read_was_full(&self) -> bool {
        self.full_read.load(Ordering::Relaxed)
    }

    /// Step 7: records whether a stream read filled its buffer (written
    /// only when it changes, so a steady stream of reads writes nothing).
    #[inline]
    pub(crate) fn note_read(&self, full: bool) {
        if self.full_read.load(Ordering::Relaxed) != full {
            self.full_read.store(full, Ordering::Relaxed);
        }
    }

    /// Step 3: records an event and moves every waker it releases into `out`.
    /// Returns the interest to re-arm in oneshot mode (`None`: nothing).
    pub(crate) fn on_event(&self, ev: &Event, out: &mut Vec<Waker>) -> Option<Event> {
        let mut st = self.lock();
        for (dir, hit) in [
            (Direction::Read, ev.readable),
            (Direction::Write, ev.writable),
        ] {
            if hit {
                if dir == Direction::Read {
                    st.read_closed |= ev.is_interrupt();
                    self.skip_read.store(false, Ordering::Release);
                }
                self.ticks[dir as usize].fetch_add(1, Ordering::Release);
                let half = &mut st.dirs[dir as usize];
                half.ready = true;
                out.append(&mut half.waiters);
                half.limit = MIN_WAITER_LIMIT;
            }
        }
        if self.edge {
            return None;
        }
        // Oneshot: the event disarmed everything; keep waiting directions armed.
        st.armed = [
            !st.dirs[0].waiters.is_empty(),
            !st.dirs[1].waiters.is_empty(),
        ];
        (st.armed != [false, false]).then(|| self.interest(st.armed))
    }

    fn interest(&self, armed: [bool; 2]) -> Event {
        let mut ev = Event::none(self.key);
        ev.readable = armed[0];
        ev.writable = armed[1];
        ev
    }

    /// Takes every waker (teardown), so they are dropped or woken outside.
    pub(crate) fn take_wakers(&self, out: &mut Vec<Waker>) {
        let mut st = self.lock();
        for half in &mut st.dirs {
            out.append(&mut half.waiters);
        }
    }
}
