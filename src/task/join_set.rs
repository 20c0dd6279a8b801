//! `JoinSet`: a group of tasks that are joined in the order they finish,
//! and cancelled together when the group is dropped.
//!
//! # Protocol
//!
//! A set is a slab of entries, each a [`JoinHandle`] with a waker of its own
//! (an [`EntryWaker`]: the entry's slab key and a `queued` flag), and a
//! shared ready list: a queue of entry wakers plus the waker of whoever
//! waits in `join_next`. One mutex guards the list, the `join_next` waker
//! and every entry's `queued` flag; no user code runs while it is held
//! (wakers are cloned before it is taken, woken and dropped after it is
//! released, through the panic-isolated calls of `crate::wake`).
//!
//! 1. **Insert.** `spawn` files the task's handle in the slab with a new
//!    entry waker that starts `queued` and is pushed on the ready list: the
//!    entry's first poll (step 3) registers its waker with the task.
//! 2. **Wake.** When the task finishes (or is cancelled), async-task wakes
//!    the handle's awaiter, which is the entry's waker (behind the
//!    `JoinHandle`'s [`Isolated`](crate::wake) wrapper). The wake takes the
//!    lock; if the set is closed (step 6), or the entry is `queued` or gone
//!    (step 5), it does nothing; else it sets `queued`, pushes the entry on
//!    the list and takes the `join_next` waker; it releases the lock, then
//!    wakes that waker.
//! 3. **Join.** `poll_join_next` pops one entry off the list and clears its
//!    `queued` flag, both under the lock, then (lock released) polls the
//!    entry's handle with the entry's own waker. `Ready`: the entry leaves
//!    the slab and its result is returned. `Pending`: the handle has just
//!    (re-)registered the entry's waker as the task's awaiter; go on with
//!    the next entry on the list.
//! 4. **Wait.** With the list empty, `poll_join_next` stores its caller's
//!    waker under the lock, after checking, under the same lock, that the
//!    list is still empty (the clone is made before the lock is taken, and
//!    only when the stored waker would not wake the same task). It returns
//!    `Pending`.
//! 5. **Leave.** An entry that leaves the set (joined, or detached by
//!    `detach_all`) is marked gone under the lock: a later wake of its waker
//!    (async-task may still hold it) pushes nothing, and a copy still on the
//!    list is skipped when popped.
//! 6. **Close.** Dropping the set marks the shared list closed under the
//!    lock and empties it, then aborts every task and drops its handle.
//!    The entry wakers that the executor still holds keep only the shared
//!    list alive (not the set) and push nothing once it is closed, so
//!    nothing is leaked or woken after the set is gone.
//!
//! # Why no wake is lost
//!
//! - An entry is polled `Pending` only by step 3, which registers its waker
//!   with the task in that same poll; async-task re-reads the task's state
//!   after registering, so a task that completes between the poll's check
//!   and the registration is either seen by that poll (`Ready`) or wakes the
//!   registered waker afterwards. Each `Pending` poll re-registers: the
//!   handle keeps the waker only until it fires.
//! - `queued` is cleared before the poll, under the lock that every wake
//!   takes. A wake that takes the lock after the pop finds it clear and
//!   pushes the entry again (at worst one extra poll); a wake that took the
//!   lock before the pop left `queued` set, but everything the task did
//!   before that wake happens-before the pop, so the poll that follows sees
//!   the task finished.
//! - The `join_next` waker is stored (step 4) and taken (step 2) under the
//!   same lock as the list is checked and pushed, so a push either precedes
//!   the check (the poll finds the entry) or follows the store (the push
//!   wakes the waiter).
//!
//! # Cost
//!
//! A wake pushes at most one copy of an entry (the `queued` flag), and each
//! copy popped is polled at most once, so joining a task costs O(1)
//! amortised: a task that finishes without waking its awaiter spuriously is
//! polled twice by the set (step 1, and after its completion), however many
//! other tasks the set holds. `join_next` never scans the slab.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use slab::Slab;

use crate::executor::{JoinError, JoinHandle};
use crate::runtime::Handle;

/// A group of tasks spawned together, joined one by one in the order they
/// finish, and cancelled together.
///
/// - [`join_next`](Self::join_next) waits for the next task to finish and
///   returns its result (`None` once the set is empty);
/// - [`abort_all`](Self::abort_all) requests the cancellation of every task
///   (each still comes out of `join_next`, as a cancelled [`JoinError`] or,
///   if it finished first, with its output);
/// - [`shutdown`](Self::shutdown) cancels every task and resolves once each
///   future has been **dropped** (acknowledged cancellation, like
///   [`JoinHandle::cancel`]);
/// - **dropping the set aborts every task in it** (unlike a dropped
///   [`JoinHandle`], which detaches); [`detach_all`](Self::detach_all) lets
///   them run on instead.
///
/// Joining costs O(1) per finished task, whatever the set's size (see the
/// module's protocol): `join_next` is woken by the task that finished, it
/// never polls every task.
///
/// # Examples
///
/// ```
/// use ebbtide::task::JoinSet;
///
/// ebbtide::block_on(async {
///     let mut set = JoinSet::new();
///     for i in 0..10u32 {
///         set.spawn(async move { i * i });
///     }
///     let mut sum = 0;
///     while let Some(result) = set.join_next().await {
///         sum += result.unwrap();
///     }
///     assert_eq!(sum, 285);
/// });
/// ```
pub struct JoinSet<T> {
    /// The tasks still in the set, keyed as their entry wakers say.
    entries: Slab<Entry<T>>,
    /// The ready list, shared with every entry waker.
    shared: Arc<Shared>,
    /// How many times an entry's handle was polled (for the tests of the
    /// O(1) claim).
    polls: u64,
}

/// One task of the set.
struct Entry<T> {
    handle: JoinHandle<T>,
    /// The entry's waker (step 2), and the same as a `Waker` to poll with.
    notify: Arc<EntryWaker>,
    waker: Waker,
}

/// The ready list and the `join_next` waker, shared by the set and its
/// entry wakers.
struct Shared {
    ready: Mutex<Ready>,
}

struct Ready {
    /// Entries woken since they were last polled, oldest first.
    queue: std::collections::VecDeque<Arc<EntryWaker>>,
    /// Who waits in `join_next` (step 4).
    waiter: Option<Waker>,
    /// The set was dropped (step 6): wakes push nothing.
    closed: bool,
}

/// `EntryWaker::state`: not on the list.
const IDLE: u8 = 0;
/// On the list, not yet popped.
const QUEUED: u8 = 1;
/// Left the set (step 5).
const GONE: u8 = 2;

/// The waker of one entry (step 2).
struct EntryWaker {
    shared: Arc<Shared>,
    /// The entry's key in the set's slab.
    key: usize,
    /// `IDLE`, `QUEUED` or `GONE`; read and written only under
    /// `shared.ready`'s lock (the lock orders it, the atomic only makes the
    /// type `Sync`).
    state: AtomicU8,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Ready> {
        // No user code runs under the lock, so a poisoned one only means a
        // panic in the allocator; the state is still consistent.
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Wake for EntryWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    /// Step 2.
    fn wake_by_ref(self: &Arc<Self>) {
        let waiter = {
            let mut ready = self.shared.lock();
            if ready.closed || self.state.load(Ordering::Relaxed) != IDLE {
                return;
            }
            self.state.store(QUEUED, Ordering::Relaxed);
            ready.queue.push_back(self.clone());
            ready.waiter.take()
        };
        if let Some(waiter) = waiter {
            crate::wake::wake(waiter);
        }
    }
}

impl<T> JoinSet<T> {
    /// An empty set.
    ///
    /// # Examples
    ///
    /// ```
    /// let set = ebbtide::task::JoinSet::<()>::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> JoinSet<T> {
        JoinSet {
            entries: Slab::new(),
            shared: Arc::new(Shared {
                ready: Mutex::new(Ready {
                    queue: std::collections::VecDeque::new(),
                    waiter: None,
                    closed: false,
                }),
            }),
            polls: 0,
        }
    }

    /// How many tasks are in the set: spawned and not yet joined (aborted
    /// tasks count until `join_next` returns them).
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let mut set = ebbtide::task::JoinSet::new();
    ///     set.spawn(async {});
    ///     assert_eq!(set.len(), 1);
    ///     set.join_next().await;
    ///     assert_eq!(set.len(), 0);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set holds no task.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ebbtide::task::JoinSet::<u8>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a spawned task's handle to the set (step 1).
    fn insert(&mut self, handle: JoinHandle<T>) {
        let slot = self.entries.vacant_entry();
        let notify = Arc::new(EntryWaker {
            shared: self.shared.clone(),
            key: slot.key(),
            state: AtomicU8::new(QUEUED),
        });
        let waker = Waker::from(notify.clone());
        self.shared.lock().queue.push_back(notify.clone());
        slot.insert(Entry {
            handle,
            notify,
            waker,
        });
    }

    /// Spawns `future` on the current runtime (the global one outside any),
    /// as [`ebbtide::spawn`](crate::spawn) does, and adds it to the set.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let mut set = ebbtide::task::JoinSet::new();
    ///     set.spawn(async { 7 });
    ///     assert_eq!(set.join_next().await.unwrap().unwrap(), 7);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.insert(super::spawn(future));
    }

    /// Spawns `future` on the runtime of `handle` and adds it to the set.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = ebbtide::runtime::Runtime::new()?;
    /// let mut set = ebbtide::task::JoinSet::new();
    /// set.spawn_on(async { 1 }, rt.handle());
    /// assert_eq!(rt.block_on(set.join_next()).unwrap().unwrap(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn_on<F>(&mut self, future: F, handle: &Handle)
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.insert(handle.spawn(future));
    }

    /// Spawns a `!Send` future on the current thread, as
    /// [`ebbtide::spawn_local`](crate::spawn_local) does, and adds it to the
    /// set.
    ///
    /// # Panics
    ///
    /// On a thread that runs no runtime (as `ebbtide::spawn_local`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    ///
    /// ebbtide::block_on(async {
    ///     let mut set = ebbtide::task::JoinSet::new();
    ///     let shared = Rc::new(5);
    ///     set.spawn_local(async move { *shared });
    ///     assert_eq!(set.join_next().await.unwrap().unwrap(), 5);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_local<F>(&mut self, future: F)
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        self.insert(super::spawn_local(future));
    }

    /// Runs `f` on the blocking pool, as
    /// [`ebbtide::spawn_blocking`](crate::spawn_blocking) does, and adds it
    /// to the set. A blocking job that has started cannot be interrupted:
    /// [`shutdown`](Self::shutdown) waits until it returns.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let mut set = ebbtide::task::JoinSet::new();
    ///     set.spawn_blocking(|| 2 + 2);
    ///     assert_eq!(set.join_next().await.unwrap().unwrap(), 4);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F>(&mut self, f: F)
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.insert(super::spawn_blocking(f));
    }

    /// Waits for the next task to finish and returns its result, or `None`
    /// if the set is empty. Tasks come out in the order they finish.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: if the future is dropped before it resolves, no task's
    /// result is lost (it stays in the set for the next call).
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let mut set = ebbtide::task::JoinSet::new();
    ///     set.spawn(async { panic!("boom") });
    ///     let err = set.join_next().await.unwrap().unwrap_err();
    ///     assert!(err.is_panic());
    ///     assert!(set.join_next().await.is_none());
    /// });
    /// ```
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        std::future::poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Polls for the next finished task (steps 3–4): `Ready(None)` if the
    /// set is empty, `Ready(Some(result))` for a finished task, `Pending`
    /// (with `cx`'s waker registered) if none has finished yet.
    ///
    /// Like every ready operation of the crate, a call takes one unit of
    /// the task's cooperative budget, so a loop over a set whose tasks have
    /// all finished still yields now and then.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let mut set = ebbtide::task::JoinSet::new();
    ///     set.spawn(async { 3 });
    ///     let out = std::future::poll_fn(|cx| set.poll_join_next(cx)).await;
    ///     assert_eq!(out.unwrap().unwrap(), 3);
    /// });
    /// ```
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        if self.entries.is_empty() {
            return Poll::Ready(None);
        }
        std::task::ready!(crate::coop::poll_proceed(cx));
        loop {
            if let Some(out) = self.join_ready() {
                return Poll::Ready(Some(out));
            }
            if !self.wait(cx.waker()) {
                return Poll::Pending;
            }
        }
    }

    /// Returns the result of a task that has finished, if any, without
    /// waiting: `None` if the set is empty or no task has finished yet.
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let mut set = ebbtide::task::JoinSet::new();
    ///     set.spawn(std::future::pending::<()>());
    ///     assert!(set.try_join_next().is_none());
    ///     set.abort_all();
    ///     while set.try_join_next().is_none() {
    ///         ebbtide::yield_now().await;
    ///     }
    ///     assert!(set.is_empty());
    /// });
    /// ```
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.join_ready()
    }

    /// Step 3: polls the woken entries until one is finished; `None` once
    /// the ready list is empty.
    fn join_ready(&mut self) -> Option<Result<T, JoinError>> {
        loop {
            let notify = {
                let mut ready = self.shared.lock();
                let notify = ready.queue.pop_front()?;
                if notify.state.load(Ordering::Relaxed) == GONE {
                    continue;
                }
                notify.state.store(IDLE, Ordering::Relaxed);
                notify
            };
            let entry = &mut self.entries[notify.key];
            debug_assert!(Arc::ptr_eq(&entry.notify, &notify));
            self.polls += 1;
            let mut cx = Context::from_waker(&entry.waker);
            if let Poll::Ready(out) = Pin::new(&mut entry.handle).poll(&mut cx) {
                let entry = self.entries.remove(notify.key);
                self.leave(&entry);
                return Some(out);
            }
        }
    }

    /// Step 4: stores `waker` as the waiter unless an entry was woken
    /// meanwhile; returns whether one was (then poll again).
    fn wait(&self, waker: &Waker) -> bool {
        {
            let ready = self.shared.lock();
            if !ready.queue.is_empty() {
                return true;
            }
            if ready.waiter.as_ref().is_some_and(|w| w.will_wake(waker)) {
                return false;
            }
        }
        // Cloning a waker is its owner's code: never under the lock.
        let waker = waker.clone();
        let (old, woken) = {
            let mut ready = self.shared.lock();
            (ready.waiter.replace(waker), !ready.queue.is_empty())
        };
        if let Some(old) = old {
            crate::wake::drop_waker(old);
        }
        woken
    }

    /// Step 5.
    fn leave(&self, entry: &Entry<T>) {
        let _ready = self.shared.lock();
        entry.notify.state.store(GONE, Ordering::Relaxed);
    }

    /// Requests the cancellation of every task in the set and returns at
    /// once. The tasks stay in the set: each still comes out of
    /// [`join_next`](Self::join_next), as a cancelled [`JoinError`] (or
    /// with its output, if it finished first).
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let mut set = ebbtide::task::JoinSet::new();
    ///     for _ in 0..3 {
    ///         set.spawn(std::future::pending::<()>());
    ///     }
    ///     set.abort_all();
    ///     assert_eq!(set.len(), 3);
    ///     while let Some(result) = set.join_next().await {
    ///         assert!(result.unwrap_err().is_cancelled());
    ///     }
    /// });
    /// ```
    pub fn abort_all(&mut self) {
        for (_, entry) in &self.entries {
            entry.handle.abort();
        }
    }

    /// Removes every task from the set and lets it run on to completion,
    /// unjoined (as dropping a [`JoinHandle`] does).
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let (tx, rx) = std::sync::mpsc::channel();
    ///     let mut set = ebbtide::task::JoinSet::new();
    ///     set.spawn(async move { tx.send(1).unwrap() });
    ///     set.detach_all();
    ///     assert!(set.is_empty());
    ///     drop(set);
    ///     while rx.try_recv().is_err() {
    ///         ebbtide::yield_now().await;
    ///     }
    /// });
    /// ```
    pub fn detach_all(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        let queue = {
            let mut ready = self.shared.lock();
            for (_, entry) in &entries {
                entry.notify.state.store(GONE, Ordering::Relaxed);
            }
            std::mem::take(&mut ready.queue)
        };
        drop(queue);
        for (_, entry) in entries {
            entry.handle.detach();
        }
    }

    /// Cancels every task and waits until each one's future has been
    /// **dropped** (or its blocking job has returned); the set is then
    /// empty. The results, outputs of tasks that finished first included,
    /// are discarded.
    ///
    /// When this resolves, every future's `Drop` has run: the acknowledged
    /// cancellation of [`JoinHandle::cancel`], for a whole group.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// struct SetOnDrop(Arc<AtomicBool>);
    /// impl Drop for SetOnDrop {
    ///     fn drop(&mut self) { self.0.store(true, Ordering::SeqCst); }
    /// }
    ///
    /// ebbtide::block_on(async {
    ///     let dropped = Arc::new(AtomicBool::new(false));
    ///     let guard = SetOnDrop(dropped.clone());
    ///     let mut set = ebbtide::task::JoinSet::new();
    ///     set.spawn(async move {
    ///         let _guard = guard;
    ///         std::future::pending::<()>().await
    ///     });
    ///     set.shutdown().await;
    ///     assert!(dropped.load(Ordering::SeqCst));
    ///     assert!(set.is_empty());
    /// });
    /// ```
    pub async fn shutdown(&mut self) {
        self.abort_all();
        // A handle resolves only once its task's future has been dropped
        // (`JoinHandle::cancel`'s guarantee), so this waits for each one.
        while self.join_next().await.is_some() {}
    }

    /// Waits for every task and returns their outputs, in the order the
    /// tasks finished.
    ///
    /// # Panics
    ///
    /// If a task panicked, its panic is resumed here; if one was cancelled,
    /// this panics with the [`JoinError`]. The tasks still in the set are
    /// then aborted (the set is dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// ebbtide::block_on(async {
    ///     let mut set = ebbtide::task::JoinSet::new();
    ///     for i in 0..4 {
    ///         set.spawn(async move { i });
    ///     }
    ///     let mut out = set.join_all().await;
    ///     out.sort();
    ///     assert_eq!(out, [0, 1, 2, 3]);
    /// });
    /// ```
    pub async fn join_all(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len());
        while let Some(result) = self.join_next().await {
            match result {
                Ok(value) => out.push(value),
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Err(err) => panic!("JoinSet::join_all: {err}"),
            }
        }
        out
    }
}

impl<T> Drop for JoinSet<T> {
    /// Step 6: aborts every task in the set.
    fn drop(&mut self) {
        let (queue, waiter) = {
            let mut ready = self.shared.lock();
            ready.closed = true;
            (std::mem::take(&mut ready.queue), ready.waiter.take())
        };
        drop(queue);
        if let Some(waiter) = waiter {
            crate::wake::drop_waker(waiter);
        }
        for (_, entry) in std::mem::take(&mut self.entries) {
            entry.handle.abort();
        }
    }
}

impl<T> Default for JoinSet<T> {
    fn default() -> JoinSet<T> {
        JoinSet::new()
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet")
            .field("len", &self.len())
            .field("woken", &self.shared.lock().queue.len())
            .finish()
    }
}

/// Spawns every future of the iterator (with [`JoinSet::spawn`]).
///
/// # Examples
///
/// ```
/// use ebbtide::task::JoinSet;
///
/// ebbtide::block_on(async {
///     let set: JoinSet<u32> = (1..=3).map(|i| async move { i * 10 }).collect();
///     let mut out = set.join_all().await;
///     out.sort();
///     assert_eq!(out, [10, 20, 30]);
/// });
/// ```
impl<T, F> FromIterator<F> for JoinSet<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> JoinSet<T> {
        let mut set = JoinSet::new();
        set.extend(iter);
        set
    }
}

/// Spawns every future of the iterator into the set (with
/// [`JoinSet::spawn`]).
///
/// # Examples
///
/// ```
/// ebbtide::block_on(async {
///     let mut set = ebbtide::task::JoinSet::new();
///     set.extend((0..5).map(|i| async move { i }));
///     assert_eq!(set.len(), 5);
/// });
/// ```
impl<T, F> Extend<F> for JoinSet<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    #[track_caller]
    fn extend<I: IntoIterator<Item = F>>(&mut self, iter: I) {
        for future in iter {
            self.spawn(future);
        }
    }
}

/// The protocol's counts and its cleanup, checked from inside (small enough
/// for Miri: `cargo +nightly miri test --lib join_set`).
#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::JoinSet;
    use crate::runtime::Runtime;

    fn current_thread() -> Runtime {
        Runtime::builder().current_thread().build().unwrap()
    }

    /// Runs `body` on its own thread; panics if it hangs (a lost wake, or a
    /// join that scans the whole set), re-raises its panic.
    fn watchdog(body: impl FnOnce() + Send + 'static) {
        let limit = std::time::Duration::from_secs(if cfg!(miri) { 3_600 } else { 30 });
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            body();
            let _ = tx.send(());
        });
        match rx.recv_timeout(limit) {
            Ok(()) => thread.join().unwrap(),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                std::panic::resume_unwind(thread.join().unwrap_err())
            }
            Err(_) => panic!("watchdog: the test did not finish within {limit:?}"),
        }
    }

    /// Tasks to spawn: many natively, few under Miri.
    fn n(native: usize) -> usize {
        if cfg!(miri) {
            40
        } else {
            native
        }
    }

    #[test]
    fn a_set_of_send_outputs_is_send_and_sync() {
        fn assert_send_sync<S: Send + Sync>() {}
        assert_send_sync::<JoinSet<u32>>();
    }

    #[test]
    fn joining_polls_each_entry_twice_however_large_the_set() {
        watchdog(|| {
            let n = n(100_000);
            let rt = current_thread();
            let polls = rt.block_on(async {
                let (tx, rx) = async_channel::unbounded::<()>();
                let mut set = JoinSet::new();
                for i in 0..n {
                    let rx = rx.clone();
                    set.spawn(async move {
                        rx.recv().await.unwrap();
                        i
                    });
                }
                // One task at a time finishes; each join must not poll the
                // others (that would be n * n / 2 polls).
                let mut seen = vec![false; n];
                for _ in 0..n {
                    tx.send(()).await.unwrap();
                    let i = set.join_next().await.unwrap().unwrap();
                    assert!(
                        !std::mem::replace(&mut seen[i], true),
                        "task {i} joined twice"
                    );
                }
                assert!(set.join_next().await.is_none());
                set.polls
            });
            // Once to register its waker (step 1), once after it finished.
            assert!(polls <= 2 * n as u64, "{polls} polls for {n} tasks");
            assert!(polls >= n as u64, "{polls} polls for {n} tasks");
        });
    }

    #[test]
    fn a_dropped_set_is_freed_once_its_tasks_let_go_of_their_wakers() {
        watchdog(|| {
            let rt = Runtime::builder().worker_threads(2).build().unwrap();
            let dropped = Arc::new(AtomicUsize::new(0));
            let shared = rt.block_on(async {
                let mut set = JoinSet::new();
                for _ in 0..n(1_000) {
                    struct Count(Arc<AtomicUsize>);
                    impl Drop for Count {
                        fn drop(&mut self) {
                            self.0.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    let count = Count(dropped.clone());
                    set.spawn(async move {
                        let _count = count;
                        std::future::pending::<()>().await
                    });
                }
                // Register every entry's waker with its task, then drop the set
                // while the executor holds those wakers.
                assert!(set.try_join_next().is_none());
                let shared = Arc::downgrade(&set.shared);
                drop(set);
                shared
            });
            let n = n(1_000);
            rt.block_on(async {
                while dropped.load(Ordering::SeqCst) < n {
                    crate::yield_now().await;
                }
            });
            drop(rt);
            assert!(
                shared.upgrade().is_none(),
                "the ready list outlived the set and its tasks (a reference cycle)"
            );
        });
    }

    #[test]
    fn a_detached_entry_pushes_nothing_when_its_task_finishes() {
        watchdog(|| {
            let rt = current_thread();
            rt.block_on(async {
                let (tx, rx) = async_channel::unbounded::<()>();
                let mut set = JoinSet::new();
                for _ in 0..n(100) {
                    let rx = rx.clone();
                    set.spawn(async move {
                        let _ = rx.recv().await;
                    });
                }
                assert!(set.try_join_next().is_none()); // wakers registered
                set.detach_all();
                assert!(set.is_empty());
                tx.close();
                while rx.receiver_count() > 1 {
                    crate::yield_now().await;
                }
                assert_eq!(
                    set.shared.lock().queue.len(),
                    0,
                    "a detached task was queued"
                );
                assert_eq!(set.polls, n(100) as u64);
            });
        });
    }
}
