//! `!Send` tasks pinned to the thread that spawned them.
//!
//! Every runtime thread (each worker, and each `block_on` caller) owns one
//! [`LocalTasks`]. Its tasks run only there:
//!
//! 1. `spawn_local` records the task's waker in `active` (owner thread only)
//!    and queues its runnable in `queue`, which any thread may push to (a
//!    waker may fire anywhere) — followed by an unpark of the owner. The
//!    first `spawn_local` makes `queue`: most threads never spawn one, and
//!    it is an allocation aligned to 128 bytes (`posix_memalign`, ~1,000
//!    instructions with its free) that every `block_on` call would pay.
//! 2. The owner pops and runs them between its other work.
//! 3. When the owner stops (its `block_on` returns, its worker exits),
//!    `shutdown` wakes every active task and drops the resulting runnables
//!    *on the owner thread*, so every `!Send` future is dropped where it
//!    lives; their `JoinHandle`s resolve as cancelled.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Waker;

use concurrent_queue::ConcurrentQueue;
use slab::Slab;

use super::park::WakeTarget;
use super::task::{Catching, MetaRef, Runnable, Site, TaskMeta};
use super::Scheduler;
use super::{JoinHandle, Waiter};

/// The `spawn_local` tasks of one thread.
pub(crate) struct LocalTasks {
    /// The queue, or what it will be made with (step 1).
    queue: RefCell<Queue>,
    sched: Arc<Scheduler>,
    /// Wakers of live tasks, keyed by slab index (owner thread only).
    active: Rc<RefCell<Slab<Waker>>>,
}

/// Step 1: the queue is made by the first `spawn_local`; until then the
/// owner's waiter and whether `shutdown` ran are kept here, once.
enum Queue {
    NotMade { waiter: Arc<Waiter>, closed: bool },
    Made(Arc<LocalQueue>),
}

/// The part schedulers on other threads can reach.
struct LocalQueue {
    runnables: ConcurrentQueue<Runnable>,
    /// Wakes the owner thread.
    waiter: WakeTarget,
    sched: Arc<Scheduler>,
    /// Set by `shutdown`; see `schedule`.
    closed: AtomicBool,
}

impl LocalQueue {
    fn schedule(&self, runnable: Runnable) {
        if self.closed.load(Ordering::Acquire) {
            // The owner is gone: dropping a `!Send` future here would run its
            // Drop on the wrong thread. `shutdown` closed every live task
            // first, so this cannot happen; if it ever did, leaking is the
            // only sound choice.
            std::mem::forget(runnable);
            return;
        }
        if let Err(e) = self.runnables.push(runnable) {
            std::mem::forget(e.into_inner());
            return;
        }
        self.waiter.unpark(&self.sched.reactor);
    }
}

/// Removes a task's entry from `active` when its future is dropped.
struct ActiveGuard {
    active: Rc<RefCell<Slab<Waker>>>,
    key: usize,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let waker = self.active.borrow_mut().try_remove(self.key);
        drop(waker);
    }
}

impl LocalTasks {
    pub(crate) fn new(sched: Arc<Scheduler>, waiter: Arc<Waiter>) -> LocalTasks {
        LocalTasks {
            queue: RefCell::new(Queue::NotMade {
                waiter,
                closed: false,
            }),
            sched,
            active: Rc::new(RefCell::new(Slab::new())),
        }
    }

    /// The queue, made on first use (step 1).
    fn queue(&self) -> Arc<LocalQueue> {
        let mut queue = self.queue.borrow_mut();
        let made = match &*queue {
            Queue::Made(made) => return made.clone(),
            Queue::NotMade { waiter, closed } => Arc::new(LocalQueue {
                runnables: ConcurrentQueue::unbounded(),
                waiter: WakeTarget::new(waiter.clone()),
                sched: self.sched.clone(),
                closed: AtomicBool::new(*closed),
            }),
        };
        *queue = Queue::Made(made.clone());
        made
    }

    /// Step 1, for a task spawned at `site`.
    pub(crate) fn spawn<F>(&self, future: F, site: Site) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let tasks = &self.sched.tasks;
        tasks.spawned.fetch_add(1, Ordering::Relaxed);
        let tasks = tasks.clone();
        let key = self.active.borrow().vacant_key();
        let guard = ActiveGuard {
            active: self.active.clone(),
            key,
        };
        let future = async move {
            let _guard = guard;
            future.await
        };
        let queue = self.queue();
        let (runnable, task) = async_task::Builder::new()
            .metadata(TaskMeta::new(site))
            .spawn_local(
                move |meta: &TaskMeta| Catching::new(future, tasks, MetaRef::new(meta)),
                move |r| queue.schedule(r),
            );
        self.active.borrow_mut().insert(runnable.waker());
        let handle = JoinHandle::new(&runnable, task);
        runnable.schedule();
        handle
    }

    /// The owner thread now sleeps on `waiter` (it took over a worker slot).
    pub(crate) fn retarget(&self, waiter: Arc<Waiter>) {
        match &mut *self.queue.borrow_mut() {
            Queue::Made(queue) => queue.waiter.set(waiter),
            Queue::NotMade { waiter: w, .. } => *w = waiter,
        }
    }

    pub(crate) fn pop(&self) -> Option<Runnable> {
        match &*self.queue.borrow() {
            Queue::Made(queue) => queue.runnables.pop().ok(),
            Queue::NotMade { .. } => None,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match &*self.queue.borrow() {
            Queue::Made(queue) => queue.runnables.is_empty(),
            Queue::NotMade { .. } => true,
        }
    }

    /// Step 3.
    pub(crate) fn shutdown(&self) {
        let wakers: Vec<Waker> = self
            .active
            .borrow()
            .iter()
            .map(|(_, w)| w.clone())
            .collect();
        for w in wakers {
            crate::wake::wake(w);
        }
        while let Some(r) = self.pop() {
            drop(r);
        }
        match &mut *self.queue.borrow_mut() {
            Queue::Made(queue) => queue.closed.store(true, Ordering::Release),
            Queue::NotMade { closed, .. } => *closed = true,
        }
        // Anything scheduled between the drain and the close (a Drop that
        // woke a sibling) is still ours to drop here.
        while let Some(r) = self.pop() {
            drop(r);
        }
    }
}
