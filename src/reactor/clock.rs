//! The runtime's clock, and [`Instant`], the instant type of `ebbtide::time`.
//!
//! Every runtime's reactor owns a [`Clock`]. It reads real time until a test
//! pauses it (`time::pause`, or `Builder::start_paused`); from then on it
//! is *virtual*: it stands still while paused, moves only by
//! `time::advance` or by auto-advance (below), and after `time::resume` runs
//! at real speed again from where it stood (an instant never goes back, so
//! the time skipped while paused stays skipped).
//!
//! # Reading the clock
//!
//! 1. A clock that never left real time answers
//!    `std::time::Instant::now()` after one relaxed load of its `is_virtual`
//!    flag; the crate-wide [`now`] (what [`Instant::now`] and a `Sleep`
//!    not yet bound to a reactor read) first loads the count of virtual
//!    clocks in the process, and looks the current runtime up only when it
//!    is not zero. Why: `Instant::now` and `Sleep::poll` are on the timer hot
//!    path, which must not pay for a test feature.
//! 2. A virtual clock reads its `Reading` under a mutex: the instant it
//!    stands at, and, while running, the real instant it started running
//!    from. The mutex is held for a few instructions and no user code.
//!
//! # Auto-advance (the driver's side; `Reactor::drive`)
//!
//! 1. A paused clock's driver about to block first asks the executor whether
//!    work is queued (the usual `before_block` check): if so it polls with a
//!    zero timeout and never advances. Why: a runnable task may still
//!    register an earlier timer or finish the test.
//! 2. Otherwise, if a timer is pending, it polls the poller with a *zero*
//!    timeout instead of sleeping until that timer. Why: an I/O event or a
//!    completion that is already there must be delivered before time jumps
//!    (a reply that arrived is never beaten by a timeout that has not).
//! 3. If that poll returned no event and no `Reactor::notify` arrived since
//!    step 1 (a wake from another thread), it sets the clock to the timer's
//!    deadline and fires the timers due then, exactly as if it had slept
//!    until then. Why: nothing else can happen before that deadline, so
//!    waiting for it in real time would only make the test slow.
//! 4. With no timer pending it blocks as usual (no timeout): I/O readiness,
//!    completions and cross-thread wakes still wake a paused runtime.
//! 5. While the runtime's blocking pool has a job queued or running (a
//!    `spawn_blocking` closure, a file operation), the clock does not
//!    advance: the driver waits for events up to `HELD_POLL` (1 ms) of real
//!    time at a stretch and checks again. Why: the job's result would wake
//!    a task before the timer, had the time really passed; and polling (not
//!    blocking until the job's wake) cannot miss a job that finished just
//!    as the driver looked.
//!
//! Only a current-thread runtime may be paused (the time layer checks):
//! there the driver is the only thread that runs tasks, so "no task is
//! runnable" in step 1 means the whole runtime is idle.

use std::fmt;
use std::hash::Hash;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{deadline_after, CURRENT};

/// How long a paused clock's driver waits for events at a stretch while
/// auto-advance is held back (step 5).
pub(crate) const HELD_POLL: Duration = Duration::from_millis(1);

/// Whether work the reactor cannot see is in flight (step 5).
pub(crate) type Busy = Box<dyn Fn() -> bool + Send + Sync>;

/// Clocks in this process that left real time (step 1 of "Reading the
/// clock"): while zero, [`now`] never looks for the current runtime.
static VIRTUAL_CLOCKS: AtomicUsize = AtomicUsize::new(0);

/// The current time as the current runtime's clock reads it: real time
/// outside a runtime, or when the runtime's clock was never paused.
#[inline]
pub(crate) fn now() -> std::time::Instant {
    if all_real() {
        return std::time::Instant::now();
    }
    current_clock_now()
}

/// Whether every clock in the process reads real time, so any clock's
/// `now` is `std::time::Instant::now()` (step 1).
#[inline]
pub(crate) fn all_real() -> bool {
    VIRTUAL_CLOCKS.load(Ordering::Relaxed) == 0
}

/// [`now`] once some clock in the process is virtual.
#[cold]
#[inline(never)]
fn current_clock_now() -> std::time::Instant {
    CURRENT
        .try_with(|c| c.borrow().as_ref().map(|r| r.clock.now()))
        .ok()
        .flatten()
        .unwrap_or_else(std::time::Instant::now)
}

/// One runtime's clock: real time, or a virtual time a test controls.
pub(crate) struct Clock {
    /// False while the clock has always read real time (the fast path);
    /// set for good by the first `pause`.
    is_virtual: AtomicBool,
    /// Whether the clock stands still (the driver auto-advances it).
    paused: AtomicBool,
    /// Where a virtual clock stands.
    reading: Mutex<Reading>,
    /// Set once by the runtime: whether its blocking pool is busy, which
    /// holds auto-advance back (step 5).
    busy: std::sync::OnceLock<Busy>,
}

/// A virtual clock's position.
struct Reading {
    /// The clock's time at `running_since`, or for as long as it is paused.
    at: std::time::Instant,
    /// The real instant the clock resumed at; `None` while paused.
    running_since: Option<std::time::Instant>,
}

impl Reading {
    fn now(&self) -> std::time::Instant {
        match self.running_since {
            None => self.at,
            Some(since) => deadline_after(self.at, since.elapsed()),
        }
    }
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            is_virtual: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            reading: Mutex::new(Reading {
                at: std::time::Instant::now(),
                running_since: None,
            }),
            busy: std::sync::OnceLock::new(),
        }
    }

    /// Step 5: auto-advance waits while `busy` returns `true`. Set once.
    pub(crate) fn hold_auto_advance_while(&self, busy: Busy) {
        let _ = self.busy.set(busy);
    }

    /// Whether auto-advance is held back now (step 5).
    pub(crate) fn is_held(&self) -> bool {
        self.busy.get().is_some_and(|busy| busy())
    }

    fn lock(&self) -> MutexGuard<'_, Reading> {
        // No code that can panic runs under the lock.
        self.reading.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The clock's current time.
    #[inline]
    pub(crate) fn now(&self) -> std::time::Instant {
        if !self.is_virtual.load(Ordering::Relaxed) {
            return std::time::Instant::now();
        }
        self.virtual_now()
    }

    #[cold]
    #[inline(never)]
    fn virtual_now(&self) -> std::time::Instant {
        self.lock().now()
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Stops the clock where it stands; `false` if it was paused already.
    pub(crate) fn pause(&self) -> bool {
        let mut r = self.lock();
        if self.is_paused() {
            return false;
        }
        r.at = if self.is_virtual.load(Ordering::Relaxed) {
            r.now()
        } else {
            std::time::Instant::now()
        };
        r.running_since = None;
        if !self.is_virtual.swap(true, Ordering::Relaxed) {
            VIRTUAL_CLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        self.paused.store(true, Ordering::Release);
        true
    }

    /// Lets a paused clock run at real speed from where it stands; `false`
    /// if it was not paused.
    pub(crate) fn resume(&self) -> bool {
        let mut r = self.lock();
        if !self.is_paused() {
            return false;
        }
        r.running_since = Some(std::time::Instant::now());
        self.paused.store(false, Ordering::Release);
        true
    }

    /// Moves a paused clock forward by `by` (saturating: about 30 years at
    /// most, see `deadline_after`); `false` if it is not paused.
    pub(crate) fn advance(&self, by: Duration) -> bool {
        let mut r = self.lock();
        if !self.is_paused() {
            return false;
        }
        r.at = deadline_after(r.at, by);
        true
    }

    /// Auto-advance (step 3): moves a paused clock forward to `to`, never
    /// back.
    pub(crate) fn advance_to(&self, to: std::time::Instant) {
        let mut r = self.lock();
        if self.is_paused() && to > r.at {
            r.at = to;
        }
    }

    /// The instant of this clock that lies as far ahead of its `now` as
    /// `real` lies ahead of real time: a deadline the runtime computed from
    /// `std::time::Instant::now()` (its shutdown's), carried over to a clock
    /// that may stand elsewhere.
    pub(crate) fn carry_over(&self, real: std::time::Instant) -> std::time::Instant {
        if !self.is_virtual.load(Ordering::Relaxed) {
            return real;
        }
        let ahead = real.saturating_duration_since(std::time::Instant::now());
        deadline_after(self.now(), ahead)
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        if *self.is_virtual.get_mut() {
            VIRTUAL_CLOCKS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A measurement of the runtime's clock, as [`std::time::Instant`] is of
/// real time: opaque, monotonic, and useful only compared with other
/// instants or durations.
///
/// [`Instant::now`] reads the clock of the current runtime, so it follows a
/// paused clock ([`time::pause`](crate::time::pause)); outside a runtime,
/// or while the runtime's clock was never paused, it is real time and costs
/// what `std::time::Instant::now()` costs. The timers of
/// [`crate::time`] take and return this type.
///
/// Converting from a `std::time::Instant` keeps its value: on a runtime
/// whose clock was paused and advanced, a std instant taken from real time
/// is in the clock's past, so take deadlines from [`Instant::now`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ebbtide::time::Instant;
///
/// let start = Instant::now();
/// let later = start + Duration::from_millis(5);
/// assert!(later > start);
/// assert_eq!(later - start, Duration::from_millis(5));
/// assert_eq!(later.duration_since(start), Duration::from_millis(5));
/// let std: std::time::Instant = later.into_std();
/// assert_eq!(Instant::from(std), later);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    std: std::time::Instant,
}

impl Instant {
    /// The current time of the current runtime's clock (real time outside
    /// a runtime).
    ///
    /// # Examples
    ///
    /// ```
    /// use ebbtide::time::Instant;
    ///
    /// let a = Instant::now();
    /// let b = Instant::now();
    /// assert!(b >= a);
    /// ```
    #[inline]
    pub fn now() -> Instant {
        Instant { std: now() }
    }

    /// The `std::time::Instant` with the same value.
    ///
    /// # Examples
    ///
    /// ```
    /// let now = ebbtide::time::Instant::now();
    /// let std: std::time::Instant = now.into_std();
    /// assert_eq!(ebbtide::time::Instant::from(std), now);
    /// ```
    pub fn into_std(self) -> std::time::Instant {
        self.std
    }

    /// The time from `earlier` to `self`; zero if `earlier` is later.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::Instant;
    ///
    /// let a = Instant::now();
    /// let b = a + Duration::from_secs(2);
    /// assert_eq!(b.duration_since(a), Duration::from_secs(2));
    /// assert_eq!(a.duration_since(b), Duration::ZERO);
    /// ```
    pub fn duration_since(&self, earlier: Instant) -> Duration {
        self.std.saturating_duration_since(earlier.std)
    }

    /// The time from `earlier` to `self`, or `None` if `earlier` is later.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::Instant;
    ///
    /// let a = Instant::now();
    /// let b = a + Duration::from_secs(2);
    /// assert_eq!(b.checked_duration_since(a), Some(Duration::from_secs(2)));
    /// assert_eq!(a.checked_duration_since(b), None);
    /// ```
    pub fn checked_duration_since(&self, earlier: Instant) -> Option<Duration> {
        self.std.checked_duration_since(earlier.std)
    }

    /// The time from `earlier` to `self`; zero if `earlier` is later.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::Instant;
    ///
    /// let a = Instant::now();
    /// assert_eq!(a.saturating_duration_since(a + Duration::from_secs(1)), Duration::ZERO);
    /// ```
    pub fn saturating_duration_since(&self, earlier: Instant) -> Duration {
        self.std.saturating_duration_since(earlier.std)
    }

    /// The time since this instant, by the current runtime's clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::Instant;
    ///
    /// let start = Instant::now();
    /// std::thread::sleep(Duration::from_millis(1));
    /// assert!(start.elapsed() >= Duration::from_millis(1));
    /// ```
    pub fn elapsed(&self) -> Duration {
        Instant::now().duration_since(*self)
    }

    /// `self + duration`, or `None` if that is not representable.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::Instant;
    ///
    /// let now = Instant::now();
    /// assert!(now.checked_add(Duration::from_secs(1)).is_some());
    /// assert!(now.checked_add(Duration::MAX).is_none());
    /// ```
    pub fn checked_add(&self, duration: Duration) -> Option<Instant> {
        self.std.checked_add(duration).map(|std| Instant { std })
    }

    /// `self - duration`, or `None` if that is not representable.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::Instant;
    ///
    /// let now = Instant::now();
    /// assert_eq!(now.checked_sub(Duration::ZERO), Some(now));
    /// assert!(now.checked_sub(Duration::MAX).is_none());
    /// ```
    pub fn checked_sub(&self, duration: Duration) -> Option<Instant> {
        self.std.checked_sub(duration).map(|std| Instant { std })
    }

    /// `self + duration`, saturating: a sum past what an instant holds (say
    /// `Duration::MAX`) is an instant about 30 years after `self`, which the
    /// timers treat as "never". The `+` operator does the same, so a
    /// deadline computed with it never overflows.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ebbtide::time::Instant;
    ///
    /// let now = Instant::now();
    /// let never = now.saturating_add(Duration::MAX);
    /// assert!(never > now + Duration::from_secs(86_400 * 365 * 29));
    /// assert_eq!(never, now + Duration::MAX);
    /// ```
    #[inline]
    pub fn saturating_add(&self, duration: Duration) -> Instant {
        let std =
            (self.std.checked_add(duration)).unwrap_or_else(|| deadline_after(self.std, duration));
        Instant { std }
    }
}

impl From<std::time::Instant> for Instant {
    fn from(std: std::time::Instant) -> Instant {
        Instant { std }
    }
}

impl From<Instant> for std::time::Instant {
    fn from(i: Instant) -> std::time::Instant {
        i.std
    }
}

/// Saturating, as [`Instant::saturating_add`]: deadlines never overflow.
impl Add<Duration> for Instant {
    type Output = Instant;

    #[inline]
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

/// # Panics
///
/// If the result is not representable, as for `std::time::Instant`
/// (see [`Instant::checked_sub`]).
impl Sub<Duration> for Instant {
    type Output = Instant;

    fn sub(self, rhs: Duration) -> Instant {
        Instant {
            std: self.std - rhs,
        }
    }
}

impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, rhs: Duration) {
        *self = *self - rhs;
    }
}

/// The time between two instants, zero if `rhs` is later (as
/// [`Instant::duration_since`]).
impl Sub<Instant> for Instant {
    type Output = Duration;

    fn sub(self, rhs: Instant) -> Duration {
        self.duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.std.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paused_clock_stands_still_and_moves_only_forward() {
        let clock = Clock::new();
        assert!(clock.pause());
        assert!(!clock.pause(), "paused already");
        let t0 = clock.now();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(clock.now(), t0);
        assert!(clock.advance(Duration::from_secs(5)));
        assert_eq!(clock.now(), t0 + Duration::from_secs(5));
        clock.advance_to(t0);
        assert_eq!(clock.now(), t0 + Duration::from_secs(5), "never back");
        assert!(clock.resume());
        assert!(!clock.resume());
        assert!(!clock.advance(Duration::from_secs(1)), "running");
        assert!(clock.now() >= t0 + Duration::from_secs(5));
    }

    #[test]
    fn advance_by_duration_max_saturates() {
        let clock = Clock::new();
        clock.pause();
        let t0 = clock.now();
        assert!(clock.advance(Duration::MAX));
        assert!(clock.advance(Duration::MAX));
        assert!(clock.now() > t0 + Duration::from_secs(86_400 * 365 * 29));
    }
}
