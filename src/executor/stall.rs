//! Stall reports: a task poll that keeps its thread longer than the
//! runtime's stall threshold is reported, once per spawn site.
//!
//! # The protocol
//!
//! 1. Every thread that runs tasks (a worker, a `block_on` caller) keeps a
//!    [`PollClock`]: the time its last poll ended. The clock is read once
//!    per poll, *after* it (the end of one poll is the start of the next);
//!    after the thread parks, or does work that is not a poll (the
//!    reactor's maintenance tick), it is read again, so that time is never
//!    charged to a task.
//! 2. The clock is `sys::coarse_clock`: on Linux the kernel's tick from the
//!    vDSO page, several times cheaper than `Instant::now`
//!    (`docs/benchmarks.md`, "Stall detector"). It lags real time by up to
//!    its resolution (a tick, 1–10 ms), so a reported duration adds that
//!    resolution: it is never less than the time the poll really took. No
//!    lock, no syscall and no atomic read-modify-write per poll; with the
//!    detector off (`None`), not even the clock read. (Besides, a worker
//!    stores what it polls, for shutdown: `NowPolling`, for an unnamed
//!    task two plain stores to a cache line only that worker writes.) The
//!    threshold is copied into each `PollClock`, and a stall is handled
//!    out of line: the per-poll cost is the clock read, a subtraction and
//!    a comparison (measured in `docs/benchmarks.md`).
//! 3. A poll of at least the threshold counts in `Metrics::stalled_polls`.
//!    The first one of each spawn site (location and name) is reported: a
//!    [`StallReport`] passed to the `on_stall` hook, or else one line on
//!    stderr. The set of sites already reported takes a lock, but only on
//!    this slow path, and is released before the hook runs.
//! 4. The hook is user code: it runs on the thread that polled, after the
//!    poll, with no lock held, inside `catch_unwind`; a panic in it is
//!    counted in `Metrics::stall_hook_panics` and the thread goes on.
//!
//! Why after the poll and not from a monitor thread: the task's name is at
//! hand there (a monitor could not read it safely once the poll may have
//! ended), it costs no thread and no periodic wake-up, and a current-thread
//! runtime is covered. A poll that never ends is not reported here; the
//! shutdown report names it among the leaked tasks.

use std::collections::HashSet;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::task::{self, Runnable, Site, TaskName};
use crate::sys;

/// A task poll that ran longer than the runtime's stall threshold, as
/// passed to the hook of
/// [`Builder::on_stall`](crate::runtime::Builder::on_stall).
///
/// A poll that runs that long keeps every other task of its worker thread
/// waiting: move blocking work into
/// [`spawn_blocking`](crate::spawn_blocking). Each spawn site (location and
/// name) is reported once; `Metrics::stalled_polls` counts every such poll.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let rt = ebbtide::runtime::Runtime::builder()
///     .current_thread()
///     .stall_threshold(Some(Duration::from_millis(20)))
///     .on_stall(move |report| log.lock().unwrap().push(report.clone()))
///     .build()?;
/// rt.block_on(async {
///     let line = line!() + 1;
///     ebbtide::spawn(async { std::thread::sleep(Duration::from_millis(50)) })
///         .await
///         .unwrap();
///     let seen = seen.lock().unwrap();
///     assert_eq!(seen[0].location.line(), line);
///     assert!(seen[0].duration >= Duration::from_millis(50));
///     println!("{}", seen[0]);
/// });
/// assert_eq!(rt.metrics().stalled_polls, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StallReport {
    /// Where the task was spawned (for a `block_on` future: where
    /// `block_on` was called).
    pub location: &'static Location<'static>,
    /// The task's name, if it was spawned by a named
    /// [`task::Builder`](crate::task::Builder).
    pub name: Option<Arc<str>>,
    /// Whether the poll was of a `block_on` future rather than a task.
    pub block_on: bool,
    /// How long the poll ran: never less than the real time, and at most
    /// the clock's resolution (a few milliseconds) more.
    pub duration: Duration,
    /// The runtime's stall threshold that the poll exceeded.
    pub threshold: Duration,
}

impl fmt::Display for StallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.block_on {
            "the block_on future at"
        } else {
            "a task spawned at"
        };
        write!(f, "ebbtide: {what} {}", self.location)?;
        if let Some(name) = &self.name {
            write!(f, " ({name})")?;
        }
        write!(
            f,
            " ran {:.1?} in one poll (stall threshold {:.1?}), blocking its thread; \
             move blocking work to spawn_blocking (reported once per spawn site)",
            self.duration, self.threshold
        )
    }
}

/// The `on_stall` hook, shared by the builder and the runtime.
#[derive(Clone)]
pub(crate) struct StallHook(pub(crate) Arc<dyn Fn(&StallReport) + Send + Sync>);

impl fmt::Debug for StallHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StallHook(..)")
    }
}

/// A runtime's stall detector (see the module doc).
pub(crate) struct StallDetector {
    /// `u64::MAX`: off.
    threshold_ns: u64,
    /// Added to every reported duration (step 2).
    resolution_ns: u64,
    hook: Option<StallHook>,
    /// Step 3: the sites reported so far (location address, name).
    reported: Mutex<HashSet<(usize, Option<String>)>>,
    /// Polls of at least the threshold.
    pub(crate) stalled_polls: AtomicU64,
    /// Panics caught from the hook.
    pub(crate) hook_panics: AtomicU64,
}

impl StallDetector {
    pub(crate) fn new(threshold: Option<Duration>, hook: Option<StallHook>) -> StallDetector {
        let threshold_ns = threshold.map_or(u64::MAX, |t| {
            u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)
        });
        StallDetector {
            threshold_ns,
            resolution_ns: if threshold_ns == u64::MAX {
                0
            } else {
                sys::coarse_clock_resolution()
            },
            hook,
            reported: Mutex::new(HashSet::new()),
            stalled_polls: AtomicU64::new(0),
            hook_panics: AtomicU64::new(0),
        }
    }

    /// No detection (tests of the layer below, and `stall_threshold(None)`).
    pub(crate) fn off() -> StallDetector {
        StallDetector::new(None, None)
    }

    /// Step 3 and 4: a poll of `elapsed_ns` at `location` took too long.
    fn stalled(
        &self,
        elapsed_ns: u64,
        location: &'static Location<'static>,
        name: Option<&TaskName>,
        block_on: bool,
    ) {
        self.stalled_polls.fetch_add(1, Ordering::Relaxed);
        let key = (
            location as *const Location<'static> as usize,
            name.map(|n| String::clone(n)),
        );
        let first = self
            .reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
        if !first {
            return;
        }
        let report = StallReport {
            location,
            name: name.map(|n| Arc::from(n.as_str())),
            block_on,
            duration: Duration::from_nanos(elapsed_ns.saturating_add(self.resolution_ns)),
            threshold: Duration::from_nanos(self.threshold_ns),
        };
        // Step 4: no lock held; a panic is counted, its payload leaked (its
        // own `Drop` could panic again).
        let called = catch_unwind(AssertUnwindSafe(|| match &self.hook {
            Some(hook) => (hook.0)(&report),
            None => eprintln!("{report}"),
        }));
        if let Err(payload) = called {
            self.hook_panics.fetch_add(1, Ordering::Relaxed);
            std::mem::forget(payload);
        }
    }
}

/// Step 1: one runner thread's clock.
pub(crate) struct PollClock {
    /// When the last poll (or park) ended, by `sys::coarse_clock`.
    mark: u64,
    /// The detector's threshold (`u64::MAX`: off), copied here so that the
    /// per-poll check reads the runner's own memory, not the scheduler's.
    threshold_ns: u64,
}

impl PollClock {
    pub(crate) fn start(detector: &StallDetector) -> PollClock {
        let mut clock = PollClock {
            mark: 0,
            threshold_ns: detector.threshold_ns,
        };
        clock.restart();
        clock
    }

    /// After a park or other work that is not a poll.
    #[inline]
    pub(crate) fn restart(&mut self) {
        if self.threshold_ns != u64::MAX {
            self.mark = sys::coarse_clock();
        }
    }

    /// Runs `runnable` (a thread that is not a worker: a multi-threaded
    /// `block_on` caller), then step 1. A named task's name is held
    /// across the poll (the task may be freed by the time it returns).
    pub(crate) fn run(&mut self, detector: &StallDetector, runnable: Runnable) {
        let site = runnable.metadata().site();
        let location = site.location;
        let name = if self.threshold_ns != u64::MAX {
            site.name.clone()
        } else {
            None
        };
        task::run(runnable);
        self.polled(detector, location, name.as_ref(), false);
    }

    /// After a poll of a task spawned at `location` (or, with `block_on`,
    /// of a `block_on` future called there): steps 1–3.
    #[inline]
    pub(crate) fn polled(
        &mut self,
        detector: &StallDetector,
        location: &'static Location<'static>,
        name: Option<&TaskName>,
        block_on: bool,
    ) {
        if let Some(elapsed) = self.lap() {
            self.stalled(detector, elapsed, location, name, block_on);
        }
    }

    /// Step 1 after a poll: `Some(elapsed)` if the poll took at least the
    /// threshold (then call [`stalled`](Self::stalled)). The hot path: a
    /// clock read, a subtraction, a comparison.
    #[inline]
    pub(crate) fn lap(&mut self) -> Option<u64> {
        if self.threshold_ns == u64::MAX {
            return None;
        }
        let now = sys::coarse_clock();
        // Wrapping: a monotonic clock does not go back; were it to, the
        // huge difference is caught in `stalled`, off the hot path.
        let elapsed = now.wrapping_sub(self.mark);
        self.mark = now;
        (elapsed >= self.threshold_ns).then_some(elapsed)
    }

    /// Steps 3 and 4 for a poll that `lap` found too long, then a restart:
    /// the hook's time is no task's.
    #[cold]
    #[inline(never)]
    pub(crate) fn stalled(
        &mut self,
        detector: &StallDetector,
        elapsed_ns: u64,
        location: &'static Location<'static>,
        name: Option<&TaskName>,
        block_on: bool,
    ) {
        // More than 292 years: the clock went back (see `lap`), no stall.
        if elapsed_ns <= u64::MAX / 2 {
            detector.stalled(elapsed_ns, location, name, block_on);
        }
        self.restart();
    }
}

/// What a worker is polling now, for shutdown's list of leaked tasks.
///
/// A worker stuck in a poll keeps its task alive, but no other thread may
/// read that task's header: the poll could end, and the task be freed,
/// while it reads. So the worker publishes copies around each poll: the
/// location (`'static`: always safe to read) and, for a named task only,
/// a reference of its own to the name, which exactly one of the worker
/// (when the poll ends) and a reader (`take`) gets back, by a swap. An
/// unnamed task costs two plain stores per poll (`enter`, `leave`).
pub(crate) struct NowPolling {
    location: AtomicPtr<Location<'static>>,
    name: AtomicPtr<String>,
}

impl NowPolling {
    pub(crate) fn new() -> NowPolling {
        NowPolling {
            location: AtomicPtr::new(std::ptr::null_mut()),
            name: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// Before a poll of an unnamed task spawned at `location`.
    #[inline]
    pub(crate) fn enter(&self, location: &'static Location<'static>) {
        let location = location as *const Location<'static> as *mut Location<'static>;
        self.location.store(location, Ordering::Relaxed);
    }

    /// After the poll `enter` announced.
    #[inline]
    pub(crate) fn leave(&self) {
        self.location.store(std::ptr::null_mut(), Ordering::Relaxed);
    }

    /// Before a poll of a task spawned at `location` and named `name`.
    pub(crate) fn enter_named(&self, location: &'static Location<'static>, name: &TaskName) {
        self.enter(location);
        let name = Arc::into_raw(name.clone()) as *mut String;
        self.name.store(name, Ordering::Release);
    }

    /// After the poll `enter_named` announced: its name, unless a reader
    /// took it.
    pub(crate) fn leave_named(&self) -> Option<TaskName> {
        self.leave();
        take_name(&self.name)
    }

    /// Shutdown, for a worker that did not exit: the site of the task it
    /// is stuck in, if it is in a poll.
    pub(crate) fn take(&self) -> Option<Site> {
        let location = self.location.load(Ordering::Acquire);
        // SAFETY: non-null, it came from a `&'static Location` (`enter`).
        let location: &'static Location<'static> = unsafe { location.as_ref() }?;
        Some(Site {
            location,
            name: take_name(&self.name),
        })
    }
}

impl Drop for NowPolling {
    fn drop(&mut self) {
        drop(take_name(&self.name));
    }
}

/// The name reference a `NowPolling` holds, taken out of it.
fn take_name(slot: &AtomicPtr<String>) -> Option<TaskName> {
    let name = slot.swap(std::ptr::null_mut(), Ordering::AcqRel);
    // SAFETY: a non-null pointer came from `Arc::into_raw` in
    // `enter_named`, and
    // the swap gives it to exactly one caller.
    (!name.is_null()).then(|| unsafe { Arc::from_raw(name) })
}
