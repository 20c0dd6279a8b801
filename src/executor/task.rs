//! What every task carries: its metadata, the panic-catching wrapper around
//! the user's future, and the output cell whose drop cannot unwind.
//!
//! # Why a wrapper
//!
//! `async-task` drops the future and the output inside its own state
//! machine. A panic there (a future whose `Drop` panics) must never unwind
//! through it or through a worker. So every user future is wrapped in
//! [`Catching`], which:
//!
//! 1. polls the future inside `catch_unwind`; a panic becomes the task's
//!    output (`Err(payload)`), reported by the `JoinHandle` as `is_panic`;
//! 2. drops the future *itself*, inside `catch_unwind`, as soon as it
//!    completes or when an abort or shutdown's cancel step reaches its next
//!    poll (a panic there is reported the same way: the `JoinHandle` says
//!    `is_panic`); only a task whose runnable is dropped unpolled (at
//!    teardown) has no one to report to, and its `Drop` panic is counted in
//!    `Metrics::drop_panics`;
//! 3. keeps the runtime's books: the live-task count (one per future not
//!    yet dropped), completed and cancelled counts, and the task's entry in
//!    the registry, made when the future first returns `Pending` (a `Send`
//!    task) and removed when it is dropped;
//! 4. honours `JoinHandle::abort` and shutdown's cancel step: before each
//!    poll it reads the task's abort flag and the runtime's cancel flag and,
//!    if either is set, drops the future and completes as aborted;
//! 5. tells the task set where a cancelled task was spawned ([`Site`]), so
//!    that a shutdown report names the spawn sites it cancelled.
//!
//! # Where a task was spawned
//!
//! Every spawn function is `#[track_caller]`; the caller's
//! `std::panic::Location` (a `'static` reference: one word) and the task's
//! name, if it has one (a thin `Arc<String>`: one more word), are kept in
//! the task's header. Stall reports and shutdown reports read them; the
//! poll path never does.
//!
//! # Why the abort flag is read inside `poll`
//!
//! `abort` sets the flag, then wakes the task. The flag must be read *after*
//! async-task has moved the task from SCHEDULED to RUNNING: a wake that finds
//! the task RUNNING makes async-task run it again, and a wake that finds it
//! SCHEDULED does a publishing compare-exchange on the state that the
//! runner's SCHEDULED→RUNNING transition reads, so the flag is visible to the
//! check that follows. Reading the flag in the runner before `run()` would
//! lose the abort when it lands between the check and the transition: the
//! wake is a no-op, the task polls `Pending` and sleeps forever. A Miri test
//! runs that schedule (`executor::join::tests`).

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, RawWakerVTable, Waker};

use pin_project_lite::pin_project;

use crate::executor::registry::{self, Slot};
use crate::executor::TaskSet;

/// A panic payload, as `std::panic::catch_unwind` returns it.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// A task's name: a thin pointer (one word in the task's header, where an
/// `Arc<str>` would take two), shared by the tasks a `task::Builder`
/// spawns.
pub(crate) type TaskName = Arc<String>;

/// Where a task was spawned, and its name if it has one.
#[derive(Clone, Debug)]
pub(crate) struct Site {
    pub(crate) location: &'static Location<'static>,
    pub(crate) name: Option<TaskName>,
}

impl Site {
    /// The caller of the (`#[track_caller]`) spawn function, unnamed.
    #[track_caller]
    pub(crate) fn caller() -> Site {
        Site {
            location: Location::caller(),
            name: None,
        }
    }
}

/// Stored in every task's header (`async_task` metadata).
#[derive(Debug)]
pub(crate) struct TaskMeta {
    /// Set by `JoinHandle::abort`; the next poll drops the future instead.
    aborted: AtomicBool,
    /// The task's entry in the runtime's `Registry`: `registry::LAZY` for
    /// a `Send` task until it first parks, `registry::NONE` for tasks that
    /// are never registered (local and blocking ones).
    slot: AtomicUsize,
    /// Where it was spawned, for stall and shutdown reports.
    site: Site,
}

impl TaskMeta {
    /// For a local or blocking task: never registered.
    pub(crate) fn new(site: Site) -> TaskMeta {
        TaskMeta {
            aborted: AtomicBool::new(false),
            slot: AtomicUsize::new(registry::NONE),
            site,
        }
    }

    /// For a `Send` task: registered in the runtime's registry when it
    /// first parks.
    pub(crate) fn registered_lazily(site: Site) -> TaskMeta {
        TaskMeta {
            slot: AtomicUsize::new(registry::LAZY),
            ..TaskMeta::new(site)
        }
    }

    pub(crate) fn site(&self) -> &Site {
        &self.site
    }

    /// Set once, inside the poll in which the future first returns
    /// `Pending`; async-task's state transitions order that poll before
    /// every later poll and the drop, on whatever thread they run.
    pub(crate) fn set_slot(&self, slot: Slot) {
        self.slot.store(slot, Ordering::Relaxed);
    }

    pub(crate) fn slot(&self) -> Slot {
        self.slot.load(Ordering::Relaxed)
    }

    pub(crate) fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }
}

/// A task's runnable, as the queues hold it.
pub(crate) type Runnable = async_task::Runnable<TaskMeta>;

/// A pointer to the [`TaskMeta`] in a task's allocation.
///
/// # Invariant
///
/// A `MetaRef` is stored only beside something that keeps the task's
/// allocation alive, and dereferenced only while that is held:
///
/// - inside the task's own future (`Catching`): async-task drops the future
///   before it drops the metadata;
/// - in a `JoinHandle`, next to the task's `FallibleTask`, which holds a
///   reference on the allocation.
pub(crate) struct MetaRef(NonNull<TaskMeta>);

// SAFETY: `TaskMeta` is `Sync` (atomics, a `'static` location, an
// `Arc<String>` only read), and by the invariant the pointee outlives the
// future that holds this pointer, on any thread.
unsafe impl Send for MetaRef {}
// SAFETY: as above; only `&TaskMeta` is ever produced.
unsafe impl Sync for MetaRef {}

impl MetaRef {
    pub(crate) fn new(meta: &TaskMeta) -> MetaRef {
        MetaRef(NonNull::from(meta))
    }

    /// # Safety
    ///
    /// The holder of `self` must keep the task alive (see the invariant).
    pub(crate) unsafe fn get(&self) -> &TaskMeta {
        // SAFETY: the caller keeps the task allocation, and so the metadata,
        // alive.
        unsafe { self.0.as_ref() }
    }
}

thread_local! {
    /// The identity (data and vtable pointers) of the waker async-task
    /// passed to the `Catching::poll` running on this thread, `(0, 0)`
    /// outside one (see [`is_polling_task_waker`]).
    static POLLING: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// A waker's identity, as `Waker::will_wake` compares it.
#[inline]
fn identity(waker: &Waker) -> (usize, usize) {
    let vtable: *const RawWakerVTable = waker.vtable();
    (waker.data() as usize, vtable as usize)
}

/// Whether `waker` is the waker of the task whose future this thread is
/// polling: async-task's waker of a task of this crate, whose clone, wake
/// and drop run only async-task and the runtime's schedule function (which
/// only queues), never user code, and never unwind. A `JoinHandle` hands
/// such a waker to async-task unwrapped (`crate::wake`, step 3).
///
/// The identity cannot lie: the task is alive while its poll runs, so no
/// other waker's data can sit at its address, and a user waker that reuses
/// the data pointer has another vtable.
#[inline]
pub(crate) fn is_polling_task_waker(waker: &Waker) -> bool {
    POLLING
        .try_with(|p| p.get() == identity(waker))
        .unwrap_or(false)
}

/// Publishes, for the duration of one poll of a task's future, the waker
/// async-task polls it with; returns the outer value, which the caller
/// puts back with [`leave_poll`] once the poll returned (a task's poll may
/// run another task's, e.g. shutdown's cancel loop).
#[inline]
fn enter_poll(waker: &Waker) -> (usize, usize) {
    POLLING
        .try_with(|p| p.replace(identity(waker)))
        .unwrap_or((0, 0))
}

/// Ends what [`enter_poll`] began.
#[inline]
fn leave_poll(outer: (usize, usize)) {
    let _ = POLLING.try_with(|p| p.set(outer));
}

/// Runs `runnable`. Every runner (worker, `block_on` thread, blocking
/// thread) goes through here.
pub(crate) fn run(runnable: Runnable) {
    // `Catching` and `Output` stop every panic from user code; this is the
    // last line of defence so that a worker thread never dies.
    let _budget = crate::coop::Scope::task();
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runnable.run())) {
        std::mem::forget(payload); // its own Drop could panic again
    }
}

/// How a task's future ended.
pub(crate) enum Outcome<T> {
    /// It returned a value.
    Done(T),
    /// It panicked (in `poll`, or in its `Drop` right after completing).
    Panicked(Payload),
    /// `JoinHandle::abort` stopped it; its future has been dropped.
    Aborted,
}

/// A task's result; its `Drop` never unwinds, whatever `T`'s does.
pub(crate) struct QuietOutcome<T>(Option<Outcome<T>>);

impl<T> QuietOutcome<T> {
    pub(crate) fn take(mut self) -> Outcome<T> {
        self.0.take().expect("an outcome is taken once")
    }
}

impl<T> Drop for QuietOutcome<T> {
    fn drop(&mut self) {
        drop_quietly(self.0.take());
    }
}

/// Drops `value`, catching a panic from its `Drop`; returns the payload.
/// The payload of a *second* panic (its own drop) is leaked, never dropped.
fn drop_caught<V>(value: V) -> Result<(), Payload> {
    catch_unwind(AssertUnwindSafe(move || drop(value)))
}

/// Drops `value`; a panic in its `Drop` is swallowed (payload leaked).
/// Returns whether it panicked.
fn drop_quietly<V>(value: V) -> bool {
    match drop_caught(value) {
        Ok(()) => false,
        Err(payload) => {
            std::mem::forget(payload);
            true
        }
    }
}

pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        Running { #[pin] fut: F },
        Done,
    }
}

pin_project! {
    /// The wrapper around every task's future (see the module doc).
    pub(crate) struct Catching<F> {
        #[pin]
        stage: Stage<F>,
        tasks: Arc<TaskSet>,
        meta: MetaRef,
    }

    impl<F> PinnedDrop for Catching<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Stage::Running { .. } = *this.stage {
                // Dropped before completing: cancelled (abort, shutdown, or
                // its runnable dropped at teardown).
                // SAFETY: the task's own future, being dropped: async-task
                // drops the metadata after it.
                this.tasks.count_cancelled(unsafe { this.meta.get() }.site());
            }
            finish(this.stage, this.tasks, this.meta);
        }
    }
}

/// Drops the future in place (if still there), unregisters the task and
/// counts it dead. A panic in the future's `Drop` is counted, its payload
/// returned.
fn drop_stage<F>(
    mut stage: Pin<&mut Stage<F>>,
    tasks: &TaskSet,
    meta: &MetaRef,
) -> Result<(), Payload> {
    if let Stage::Done = *stage {
        return Ok(());
    }
    // `Pin::set` drops the old value in place; if that drop unwinds, the
    // assignment still completes, so `stage` is `Done` either way.
    let dropped = catch_unwind(AssertUnwindSafe(|| stage.set(Stage::Done)));
    // SAFETY: called from the task's own future (poll or drop), which keeps
    // the task allocation alive.
    tasks.task_dropped(unsafe { meta.get() }.slot());
    dropped
}

/// `drop_stage` for paths with no one to report a panic to.
fn finish<F>(stage: Pin<&mut Stage<F>>, tasks: &TaskSet, meta: &MetaRef) {
    if let Err(payload) = drop_stage(stage, tasks, meta) {
        tasks.drop_panics.fetch_add(1, Ordering::Relaxed);
        std::mem::forget(payload);
    }
}

impl<F> Catching<F> {
    pub(crate) fn new(fut: F, tasks: Arc<TaskSet>, meta: MetaRef) -> Catching<F> {
        tasks.alive.fetch_add(1, Ordering::Relaxed);
        Catching {
            stage: Stage::Running { fut },
            tasks,
            meta,
        }
    }
}

impl<F: Future> Future for Catching<F> {
    type Output = QuietOutcome<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // SAFETY: `self` is the task's future, alive while polled.
        if unsafe { this.meta.get() }.is_aborted() || this.tasks.is_cancelling() {
            // Steps 4 and 5 (and shutdown's cancel step).
            // SAFETY: as above.
            this.tasks
                .count_cancelled(unsafe { this.meta.get() }.site());
            let outcome = match drop_stage(this.stage, this.tasks, this.meta) {
                Ok(()) => Outcome::Aborted,
                Err(payload) => {
                    this.tasks.panics.fetch_add(1, Ordering::Relaxed);
                    Outcome::Panicked(payload)
                }
            };
            return Poll::Ready(QuietOutcome(Some(outcome)));
        }
        let StageProj::Running { fut } = this.stage.as_mut().project() else {
            unreachable!("async-task never polls a completed future");
        };
        // `catch_unwind` always returns, so the outer value is put back.
        let outer = enter_poll(cx.waker());
        let result = catch_unwind(AssertUnwindSafe(|| fut.poll(cx)));
        leave_poll(outer);
        let result = match result {
            Ok(Poll::Pending) => {
                // SAFETY: as above.
                let meta = unsafe { this.meta.get() };
                if meta.slot() == registry::LAZY {
                    meta.set_slot(this.tasks.register_parked(cx.waker()));
                }
                return Poll::Pending;
            }
            Ok(Poll::Ready(value)) => Ok(value),
            Err(payload) => Err(payload),
        };
        // Drop the future now, on this thread, where a panic can be caught.
        let dropped = drop_stage(this.stage, this.tasks, this.meta);
        let result = match (result, dropped) {
            (Ok(value), Err(payload)) => {
                drop_quietly(value);
                Err(payload)
            }
            (Err(payload), Err(second)) => {
                std::mem::forget(second);
                Err(payload)
            }
            (result, Ok(())) => result,
        };
        this.tasks.completed.fetch_add(1, Ordering::Relaxed);
        let outcome = match result {
            Ok(value) => Outcome::Done(value),
            Err(payload) => {
                this.tasks.panics.fetch_add(1, Ordering::Relaxed);
                Outcome::Panicked(payload)
            }
        };
        Poll::Ready(QuietOutcome(Some(outcome)))
    }
}

#[cfg(test)]
mod tests {
    use super::{Site, TaskMeta};
    use std::mem::size_of;

    /// The spawn site costs a task's header two words: the location and
    /// the (thin) name pointer.
    #[test]
    fn a_spawn_site_costs_a_task_header_two_words() {
        let word = size_of::<usize>();
        assert_eq!(size_of::<Site>(), 2 * word);
        assert_eq!(size_of::<TaskMeta>(), 2 * word + 2 * word);
    }
}
