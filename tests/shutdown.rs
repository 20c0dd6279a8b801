//! Graceful shutdown: drains before it joins, never hangs past its bound,
//! cancels what is left, and reports what happened.

mod common;
use common::watchdog_for as watchdog;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ebbtide::runtime::{Runtime, SpawnError};
use ebbtide::time::sleep;

fn runtimes() -> Vec<Runtime> {
    vec![
        Runtime::builder().worker_threads(2).build().unwrap(),
        Runtime::builder().worker_threads(4).build().unwrap(),
        Runtime::builder().current_thread().build().unwrap(),
    ]
}

#[test]
fn drains_ten_thousand_tasks_before_joining() {
    watchdog(Duration::from_secs(60), || {
        for rt in runtimes() {
            let polled_after = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicBool::new(false));
            for i in 0..10_000u64 {
                let (polled_after, done) = (polled_after.clone(), done.clone());
                rt.spawn(async move {
                    for _ in 0..1 + i % 3 {
                        if done.load(Ordering::SeqCst) {
                            polled_after.store(true, Ordering::SeqCst);
                        }
                        sleep(Duration::from_micros(100 * (i % 7))).await;
                    }
                });
            }
            let report = rt.shutdown(Duration::from_secs(5));
            done.store(true, Ordering::SeqCst);
            assert_eq!(report.completed, 10_000, "{report}");
            assert_eq!(report.cancelled, 0, "{report}");
            assert_eq!(report.tasks_leaked, 0, "{report}");
            assert_eq!(report.workers_leaked, 0, "{report}");
            let late = rt.handle().try_spawn(async {});
            assert_eq!(late.unwrap_err(), SpawnError::ShuttingDown);
            std::thread::sleep(Duration::from_millis(20));
            assert!(
                !polled_after.load(Ordering::SeqCst),
                "a task ran after shutdown returned"
            );
        }
    });
}

#[test]
fn spawn_after_shutdown_resolves_cancelled() {
    watchdog(Duration::from_secs(30), || {
        for rt in runtimes() {
            rt.shutdown(Duration::ZERO);
            let ran = Arc::new(AtomicBool::new(false));
            let r = ran.clone();
            let h = rt.spawn(async move { r.store(true, Ordering::SeqCst) });
            let err = futures_lite::future::block_on(h).unwrap_err();
            assert!(err.is_cancelled());
            assert!(!ran.load(Ordering::SeqCst));
        }
    });
}

#[test]
fn pending_tasks_are_cancelled_after_the_deadline_and_their_drop_runs() {
    struct Flag(Arc<AtomicUsize>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    watchdog(Duration::from_secs(30), || {
        for rt in runtimes() {
            let dropped = Arc::new(AtomicUsize::new(0));
            for _ in 0..100 {
                let f = Flag(dropped.clone());
                rt.spawn(async move {
                    let _f = f;
                    std::future::pending::<()>().await
                });
            }
            let report = rt.shutdown(Duration::from_millis(20));
            assert_eq!(report.cancelled, 100, "{report}");
            assert_eq!(dropped.load(Ordering::SeqCst), 100);
            assert_eq!(report.tasks_leaked, 0, "{report}");
        }
    });
}

/// Silences the default hook for this file's deliberate panics: with
/// `RUST_BACKTRACE` set, symbolizing a backtrace in a debug build can take
/// longer than the shutdown deadlines these tests use.
fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
            if !msg.starts_with("deliberate:") {
                default(info);
            }
        }));
    });
}

#[test]
fn a_panic_in_a_cancelled_futures_drop_is_caught_and_counted() {
    quiet_deliberate_panics();
    struct Boom;
    impl Drop for Boom {
        fn drop(&mut self) {
            panic!("deliberate: drop during shutdown");
        }
    }
    watchdog(Duration::from_secs(30), || {
        for rt in runtimes() {
            rt.spawn(async {
                let _b = Boom;
                std::future::pending::<()>().await
            });
            let report = rt.shutdown(Duration::from_millis(10));
            assert_eq!(report.cancelled, 1, "{report}");
            assert_eq!(report.workers_leaked, 0, "{report}");
            // Dropped by its next poll, so reported as the task's panic
            // (to a handle nobody holds), not as an unreported drop panic.
            let m = rt.metrics();
            assert_eq!((m.panicked_tasks, m.drop_panics), (1, 0), "{m}");
        }
    });
}

#[test]
fn shutdown_requested_resolves_and_in_flight_work_finishes() {
    watchdog(Duration::from_secs(30), || {
        for rt in runtimes() {
            let finished = Arc::new(AtomicBool::new(false));
            let f = finished.clone();
            rt.spawn(async move {
                ebbtide::runtime::shutdown_requested().await;
                assert!(ebbtide::runtime::Handle::current().is_shutting_down());
                // The "in-flight request": timers still work while draining.
                sleep(Duration::from_millis(5)).await;
                f.store(true, Ordering::SeqCst);
            });
            let report = rt.shutdown(Duration::from_secs(5));
            assert!(finished.load(Ordering::SeqCst), "{report}");
            assert_eq!(report.cancelled, 0, "{report}");
        }
    });
}

#[test]
fn shutdown_is_idempotent_and_callable_from_any_thread() {
    watchdog(Duration::from_secs(30), || {
        let rt = Arc::new(Runtime::builder().worker_threads(2).build().unwrap());
        rt.spawn(std::future::pending::<()>());
        let reports: Vec<_> = (0..4)
            .map(|_| {
                let rt = rt.clone();
                std::thread::spawn(move || rt.shutdown(Duration::from_millis(10)))
            })
            .collect();
        let reports: Vec<_> = reports.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(reports.iter().all(|r| r == &reports[0]));
        assert_eq!(reports[0].cancelled, 1);
    });
}

#[test]
fn shutdown_from_inside_a_task_does_not_deadlock() {
    watchdog(Duration::from_secs(30), || {
        let rt = Arc::new(Runtime::builder().worker_threads(2).build().unwrap());
        let rt2 = rt.clone();
        let report = rt.block_on(async move { rt2.shutdown(Duration::from_millis(10)) });
        assert_eq!(report.workers_leaked, 0, "{report}");
    });
}

#[test]
fn dropping_a_runtime_inside_another_runtimes_task_neither_panics_nor_blocks() {
    watchdog(Duration::from_secs(30), || {
        let outer = Runtime::builder().worker_threads(2).build().unwrap();
        let inner = Runtime::builder().worker_threads(2).build().unwrap();
        inner.spawn(std::future::pending::<()>());
        let h = outer.spawn(async move {
            drop(inner); // hands the shutdown steps to a background thread
            "dropped"
        });
        assert_eq!(outer.block_on(h).unwrap(), "dropped");
    });
}

/// Shutdown racing spawns from 4 threads, cross-thread wakes and handle
/// drops: every handle resolves Ok or Cancelled, nothing hangs.
#[test]
fn shutdown_racing_spawns_wakes_and_handle_drops_never_hangs() {
    let rounds = if cfg!(debug_assertions) { 200 } else { 1_000 };
    watchdog(Duration::from_secs(120), move || {
        for round in 0..rounds {
            let rt = Arc::new(Runtime::builder().worker_threads(2).build().unwrap());
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let handle = rt.handle().clone();
                    std::thread::spawn(move || {
                        let mut handles = Vec::new();
                        for i in 0..20 {
                            let (tx, rx) = smol::channel::bounded::<()>(1);
                            let h = handle.spawn(async move { rx.recv().await.is_ok() });
                            let _ = tx.try_send(()); // a cross-thread wake
                            if (i + t) % 3 == 0 {
                                drop(h);
                            } else {
                                handles.push(h);
                            }
                        }
                        handles
                    })
                })
                .collect();
            if round % 2 == 0 {
                std::thread::yield_now();
            }
            let report = rt.shutdown(Duration::from_millis(5));
            for t in threads {
                for h in t.join().unwrap() {
                    match futures_lite::future::block_on(h) {
                        Ok(_) => {}
                        Err(e) => assert!(e.is_cancelled(), "{e}"),
                    }
                }
            }
            assert_eq!(report.workers_leaked, 0, "{report}");
        }
    });
}

/// Tasks that share an async-channel (the program, eight times):
/// cancelling the sender's task drops the last `Sender`, which closes the
/// channel and wakes the receiver from inside `Event::notify`, under
/// event-listener's lock. Cancelling the receiver inside that wake would
/// drop its listener on the same event and deadlock on the lock; the
/// runtime must drop cancelled futures outside every wake.
fn tasks_sharing_a_channel(rt: &Runtime) {
    for _ in 0..8 {
        let (tx, rx) = async_channel::bounded::<()>(1);
        rt.spawn(async move {
            let _tx = tx;
            std::future::pending::<()>().await
        });
        rt.spawn(async move {
            let _ = rx.recv().await;
        });
    }
    rt.block_on(sleep(Duration::from_millis(10)));
}

#[test]
fn shutdown_with_tasks_sharing_an_async_channel_does_not_deadlock() {
    watchdog(Duration::from_secs(30), || {
        for rt in runtimes() {
            tasks_sharing_a_channel(&rt);
            let report = rt.shutdown(Duration::from_millis(100));
            assert_eq!(report.tasks_leaked, 0, "{report}");
            assert_eq!(report.workers_leaked, 0, "{report}");
            assert_eq!(rt.metrics().alive_tasks, 0);
        }
    });
}

#[test]
fn dropping_a_runtime_with_tasks_sharing_an_async_channel_does_not_deadlock() {
    watchdog(Duration::from_secs(30), || {
        for rt in runtimes() {
            tasks_sharing_a_channel(&rt);
            drop(rt);
        }
    });
}

/// The same rule with event-listener directly: a cancelled task's `Drop`
/// notifies an event (which wakes the listeners under the event's lock),
/// and the listeners' own `Drop` touches that event's list.
#[test]
fn a_task_woken_under_an_events_lock_while_cancelling_is_dropped_outside_it() {
    struct NotifyOnDrop(Arc<event_listener::Event>);
    impl Drop for NotifyOnDrop {
        fn drop(&mut self) {
            self.0.notify(usize::MAX);
        }
    }
    struct ListenOnDrop(Arc<event_listener::Event>, Arc<AtomicUsize>);
    impl Drop for ListenOnDrop {
        fn drop(&mut self) {
            drop(self.0.listen());
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    watchdog(Duration::from_secs(30), || {
        for rt in runtimes() {
            let event = Arc::new(event_listener::Event::new());
            let dropped = Arc::new(AtomicUsize::new(0));
            for i in 0..20 {
                let (event, dropped) = (event.clone(), dropped.clone());
                if i % 5 == 0 {
                    rt.spawn(async move {
                        let _guard = NotifyOnDrop(event);
                        std::future::pending::<()>().await
                    });
                } else {
                    rt.spawn(async move {
                        let _guard = ListenOnDrop(event.clone(), dropped);
                        loop {
                            event.listen().await;
                        }
                    });
                }
            }
            rt.block_on(sleep(Duration::from_millis(10)));
            let report = rt.shutdown(Duration::ZERO);
            assert_eq!(report.cancelled, 20, "{report}");
            assert_eq!(dropped.load(Ordering::SeqCst), 16);
        }
    });
}

/// `Duration::MAX` means "no deadline": it never overflows an `Instant`.
#[test]
fn shutdown_and_drain_timeout_accept_duration_max() {
    watchdog(Duration::from_secs(30), || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        rt.spawn(async { sleep(Duration::from_millis(5)).await });
        let report = rt.shutdown(Duration::MAX);
        assert_eq!(report.completed, 1, "{report}");
        let rt = Runtime::builder()
            .worker_threads(2)
            .drain_timeout(Duration::MAX)
            .build()
            .unwrap();
        rt.spawn(async { sleep(Duration::from_millis(5)).await });
        drop(rt);
        let rt = Runtime::builder()
            .current_thread()
            .drain_timeout(Duration::MAX)
            .build()
            .unwrap();
        rt.spawn(async { sleep(Duration::from_millis(5)).await });
        drop(rt);
    });
}

/// A timer needs the reactor; after shutdown it can never fire, so awaiting
/// one panics with a message that says why instead of hanging.
#[test]
fn block_on_a_timer_after_shutdown_panics_with_a_clear_message_instead_of_hanging() {
    watchdog(Duration::from_secs(30), || {
        for rt in runtimes() {
            rt.shutdown(Duration::from_millis(10));
            let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rt.block_on(sleep(Duration::from_millis(1)))
            }))
            .unwrap_err();
            let msg = common::panic_message(&*err);
            assert!(msg.contains("after its runtime shut down"), "{msg}");
            // Futures that need neither timers nor I/O still run.
            assert_eq!(rt.block_on(async { 5 }), 5);
        }
    });
}

/// A `block_on` already waiting on a timer when another thread shuts the
/// runtime down is woken and learns the runtime is gone.
#[test]
fn a_block_on_waiting_on_a_timer_is_woken_when_another_thread_shuts_down() {
    watchdog(Duration::from_secs(30), || {
        let rt = Arc::new(Runtime::builder().worker_threads(2).build().unwrap());
        let waiter = {
            let rt = rt.clone();
            std::thread::spawn(move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    rt.block_on(sleep(Duration::from_secs(3600)))
                }))
                .is_err()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        rt.shutdown(Duration::from_millis(10));
        assert!(waiter.join().unwrap(), "the block_on panicked, not hung");
    });
}

/// A forked child has none of the runtime's threads; dropping its copy of
/// the runtime must return at once, not wait the drain timeout (here an
/// hour) for workers that do not exist.
#[cfg(unix)]
#[test]
fn dropping_a_runtime_in_a_forked_child_does_not_wait_the_drain_timeout() {
    watchdog(Duration::from_secs(30), || {
        let rt = Runtime::builder()
            .worker_threads(2)
            .drain_timeout(Duration::from_secs(3600))
            .build()
            .unwrap();
        rt.spawn(std::future::pending::<()>());
        rt.block_on(sleep(Duration::from_millis(5)));
        // SAFETY: the child only drops the runtime (atomics, no lock another
        // thread could hold) and calls `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            drop(rt);
            // SAFETY: ends the child without running the parent's atexit
            // hooks or destructors.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        let start = std::time::Instant::now();
        loop {
            // SAFETY: polls the child forked above.
            let waited = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if waited == pid {
                break;
            }
            if start.elapsed() > Duration::from_secs(20) {
                // SAFETY: kills the child forked above, then reaps it.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                panic!("the forked child hung dropping its runtime");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status:#x}"
        );
        let report = rt.shutdown(Duration::ZERO);
        assert_eq!(
            report.cancelled, 1,
            "the parent's runtime is intact: {report}"
        );
    });
}

/// [`runtimes`] whose `Drop` drains for at most 10 ms, for tests that drop
/// runtimes with tasks that never finish.
fn runtimes_with_short_drain() -> Vec<Runtime> {
    let short = Duration::from_millis(10);
    vec![
        Runtime::builder()
            .worker_threads(2)
            .drain_timeout(short)
            .build()
            .unwrap(),
        Runtime::builder()
            .worker_threads(4)
            .drain_timeout(short)
            .build()
            .unwrap(),
        Runtime::builder()
            .current_thread()
            .drain_timeout(short)
            .build()
            .unwrap(),
    ]
}

/// One waker slot per task of a ring, behind one lock that every `Drop`
/// takes.
type Ring = Arc<std::sync::Mutex<Vec<Option<std::task::Waker>>>>;

/// Task `me` of a ring: parks its waker in its slot; when dropped, wakes
/// the next task's waker while holding the ring's lock (as tokio#3869's
/// future does). Were that wake to drop the next task's future, whose own
/// `Drop` takes the same lock, the thread would deadlock.
struct RingMember {
    ring: Ring,
    me: usize,
    dropped: Arc<AtomicUsize>,
}

impl std::future::Future for RingMember {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        self.ring.lock().unwrap()[self.me] = Some(cx.waker().clone());
        std::task::Poll::Pending
    }
}

impl Drop for RingMember {
    fn drop(&mut self) {
        let mut slots = self.ring.lock().unwrap();
        let next = (self.me + 1) % slots.len();
        if let Some(w) = slots[next].take() {
            w.wake();
        }
        drop(slots);
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// After tokio's `rt_common.rs::wake_while_rt_is_dropping` and
/// `rt_threaded.rs::wake_during_shutdown` (tokio#3869): while shutdown (or
/// the runtime's drop) cancels a ring of pending tasks, each cancelled
/// future's `Drop` wakes the next one under a shared lock. Nothing
/// deadlocks, and every future is dropped exactly once.
#[test]
fn cancelled_tasks_whose_drop_wakes_the_next_under_a_lock_are_each_dropped_once() {
    const MEMBERS: usize = 8;
    watchdog(Duration::from_secs(30), || {
        for round in 0..10 {
            for by_drop in [false, true] {
                for rt in runtimes_with_short_drain() {
                    let ring: Ring = Arc::new(std::sync::Mutex::new(vec![None; MEMBERS]));
                    let dropped = Arc::new(AtomicUsize::new(0));
                    for me in 0..MEMBERS {
                        rt.spawn(RingMember {
                            ring: ring.clone(),
                            me,
                            dropped: dropped.clone(),
                        });
                    }
                    rt.block_on(async {
                        while ring.lock().unwrap().iter().any(Option::is_none) {
                            ebbtide::yield_now().await;
                        }
                    });
                    if by_drop {
                        drop(rt);
                    } else {
                        let report = rt.shutdown(Duration::ZERO);
                        assert_eq!(report.cancelled, MEMBERS as u64, "round {round}: {report}");
                        assert_eq!(report.workers_leaked, 0, "round {round}: {report}");
                    }
                    assert_eq!(dropped.load(Ordering::SeqCst), MEMBERS, "round {round}");
                }
            }
        }
    });
}

/// After tokio's `rt_common.rs::shutdown_concurrent_spawn`: ten thousand
/// pending tasks are woken from another thread while the runtime is being
/// dropped. Each future is dropped exactly once, whether it finished or was
/// cancelled, and the drop returns.
#[test]
fn ten_thousand_cross_thread_wakes_racing_the_runtimes_drop_drop_each_future_once() {
    const TASKS: usize = 10_000;
    struct Count(Arc<AtomicUsize>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    watchdog(Duration::from_secs(60), || {
        for _round in 0..common::scaled(5, 2) {
            for rt in runtimes() {
                let dropped = Arc::new(AtomicUsize::new(0));
                let parked = Arc::new(AtomicUsize::new(0));
                let mut senders = Vec::with_capacity(TASKS);
                for _ in 0..TASKS {
                    let (tx, rx) = async_channel::bounded::<()>(1);
                    senders.push(tx);
                    let (count, parked) = (Count(dropped.clone()), parked.clone());
                    rt.spawn(async move {
                        let _count = count;
                        parked.fetch_add(1, Ordering::SeqCst);
                        let _ = rx.recv().await; // nothing sent yet: parks
                    });
                }
                rt.block_on(async {
                    while parked.load(Ordering::SeqCst) < TASKS {
                        ebbtide::yield_now().await;
                    }
                });
                let (go_tx, go_rx) = std::sync::mpsc::channel();
                let waker = std::thread::spawn(move || {
                    go_tx.send(()).unwrap();
                    for tx in senders {
                        let _ = tx.try_send(());
                    }
                });
                go_rx.recv().unwrap();
                drop(rt);
                waker.join().unwrap();
                assert_eq!(dropped.load(Ordering::SeqCst), TASKS);
            }
        }
    });
}

/// After tokio's `rt_common.rs::shutdown_wakeup_time`: a timer an hour away
/// is still registered (its `Sleep` was polled and is alive, but no task
/// waits on it). Shutdown with no deadline must not wait for that timer: no
/// task is alive, so it returns, waking any thread parked until the timer.
#[test]
fn shutdown_without_deadline_does_not_wait_for_a_registered_far_timer() {
    watchdog(Duration::from_secs(30), || {
        for rt in runtimes() {
            let mut far = Box::pin(sleep(Duration::from_secs(3600)));
            rt.block_on(async {
                assert!(futures_lite::future::poll_once(far.as_mut())
                    .await
                    .is_none());
                // Let the workers park in the poller until that timer.
                sleep(Duration::from_millis(10)).await;
            });
            assert_eq!(rt.metrics().timers, 1);
            let report = rt.shutdown(Duration::MAX);
            assert_eq!(report.cancelled, 0, "{report}");
            assert_eq!(report.workers_leaked, 0, "{report}");
            drop(far); // removing a timer after shutdown is fine
        }
    });
}
