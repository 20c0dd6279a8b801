//! `JoinHandle`: abort (before, during, after the task runs), `cancel`
//! (resolves only once the future is dropped), `detach`, `is_finished`, and
//! what `JoinError` says.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::time::Duration;

use common::{current_thread, drop_flag, quiet_expected_panics, watchdog, workers, SetOnDrop};
use ebbtide::runtime::{Handle, Runtime};
use ebbtide::{JoinError, JoinHandle};

/// A future that records that it was polled.
async fn mark_polled(polled: Arc<AtomicBool>, guard: SetOnDrop) -> u32 {
    let _guard = guard;
    polled.store(true, Ordering::SeqCst);
    1
}

#[test]
fn abort_before_the_first_poll_means_the_task_is_never_polled() {
    watchdog(|| {
        // A current-thread runtime runs nothing outside `block_on`: the task
        // cannot be polled between spawn and abort.
        let rt = current_thread();
        let polled = Arc::new(AtomicBool::new(false));
        let (dropped, guard) = drop_flag();
        let h = rt.spawn(mark_polled(polled.clone(), guard));
        h.abort();
        let err = rt.block_on(h).unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
        assert!(!polled.load(Ordering::SeqCst), "an aborted task was polled");
        assert!(dropped.load(Ordering::SeqCst), "its future was dropped");
    });
}

#[test]
fn abort_right_after_spawn_on_a_worker_means_the_task_is_never_polled() {
    watchdog(|| {
        for f in common::flavours() {
            let name = f.name;
            let polled = Arc::new(AtomicBool::new(false));
            let (dropped, guard) = drop_flag();
            let p = polled.clone();
            // Spawned from a task on a runner thread: the new task sits in
            // that thread's LIFO slot, which only that thread runs, and the
            // spawning task does not yield between spawn and abort.
            let err = f
                .join(f.rt.spawn(async move {
                    let h = ebbtide::spawn(mark_polled(p, guard));
                    h.abort();
                    h.await
                }))
                .unwrap()
                .unwrap_err();
            assert!(err.is_cancelled(), "{name}: {err:?}");
            assert!(
                !polled.load(Ordering::SeqCst),
                "{name}: an aborted task was polled"
            );
            assert!(dropped.load(Ordering::SeqCst), "{name}");
        }
    });
}

/// Spawns a task that reports its first poll, then stays pending holding
/// a drop guard. Returns the handle and the drop flag, once it is pending.
async fn spawn_pending() -> (JoinHandle<()>, Arc<AtomicBool>) {
    let (dropped, guard) = drop_flag();
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let h = ebbtide::spawn(async move {
        let _guard = guard;
        s.store(true, Ordering::SeqCst);
        std::future::pending::<()>().await
    });
    while !started.load(Ordering::SeqCst) {
        ebbtide::yield_now().await;
    }
    (h, dropped)
}

#[test]
fn abort_of_a_pending_task_cancels_it_and_drops_its_future() {
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            rt.block_on(async {
                let (h, dropped) = spawn_pending().await;
                assert!(!h.is_finished(), "{name}: pending");
                h.abort();
                h.abort(); // twice is harmless
                let err = h.await.unwrap_err();
                assert!(err.is_cancelled() && !err.is_panic(), "{name}: {err:?}");
                assert!(dropped.load(Ordering::SeqCst), "{name}");
            });
            assert_eq!(rt.metrics().alive_tasks, 0, "{name}");
        }
    });
}

#[test]
fn abort_after_completion_keeps_the_output() {
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            let out = rt.block_on(async {
                let h = ebbtide::spawn(async { 42 });
                while !h.is_finished() {
                    ebbtide::yield_now().await;
                }
                h.abort();
                h.await
            });
            assert_eq!(out.unwrap(), 42, "{name}");
        }
    });
}

#[test]
fn abort_from_another_thread_cancels_a_pending_task() {
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            rt.block_on(async {
                let (h, dropped) = spawn_pending().await;
                let h = std::thread::spawn(move || {
                    h.abort();
                    h
                })
                .join()
                .unwrap();
                assert!(h.await.unwrap_err().is_cancelled(), "{name}");
                assert!(dropped.load(Ordering::SeqCst), "{name}");
            });
        }
    });
}

/// Sets its flag only after a pause, so that a `cancel` that returned before
/// the drop finished would see it unset.
struct SlowDrop(Arc<AtomicBool>);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_millis(20));
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn cancel_resolves_only_after_the_futures_drop_has_run() {
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            rt.block_on(async {
                let dropped = Arc::new(AtomicBool::new(false));
                let started = Arc::new(AtomicBool::new(false));
                let (d, s) = (dropped.clone(), started.clone());
                let h = ebbtide::spawn(async move {
                    let _slow = SlowDrop(d);
                    s.store(true, Ordering::SeqCst);
                    std::future::pending::<u32>().await
                });
                while !started.load(Ordering::SeqCst) {
                    ebbtide::yield_now().await;
                }
                assert_eq!(h.cancel().await, None, "{name}: cancelled, no output");
                assert!(
                    dropped.load(Ordering::SeqCst),
                    "{name}: cancel resolved before the future's Drop finished"
                );
            });
        }
    });
}

#[test]
fn cancel_before_the_first_poll_drops_the_future_unpolled() {
    watchdog(|| {
        let rt = current_thread();
        let polled = Arc::new(AtomicBool::new(false));
        let (dropped, guard) = drop_flag();
        let h = rt.spawn(mark_polled(polled.clone(), guard));
        assert_eq!(rt.block_on(h.cancel()), None);
        assert!(dropped.load(Ordering::SeqCst));
        assert!(!polled.load(Ordering::SeqCst));
    });
}

#[test]
fn cancel_of_a_finished_task_returns_its_output() {
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            let out = rt.block_on(async {
                let h = ebbtide::spawn(async { String::from("done") });
                while !h.is_finished() {
                    ebbtide::yield_now().await;
                }
                h.cancel().await
            });
            assert_eq!(out.as_deref(), Some("done"), "{name}");
        }
    });
}

#[test]
fn cancel_of_a_panicked_task_returns_none() {
    quiet_expected_panics();
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            let out = rt.block_on(async {
                let h = ebbtide::spawn(async {
                    if true {
                        panic!("deliberate: before cancel");
                    }
                    1
                });
                while !h.is_finished() {
                    ebbtide::yield_now().await;
                }
                h.cancel().await
            });
            assert_eq!(out, None, "{name}");
        }
    });
}

#[test]
fn a_detached_task_keeps_running_to_completion() {
    watchdog(|| {
        for detach in [true, false] {
            let rt = workers(2);
            let (tx, rx) = mpsc::channel();
            let done = Arc::new(AtomicBool::new(false));
            let d = done.clone();
            let h = rt.spawn(async move {
                for _ in 0..10 {
                    ebbtide::yield_now().await;
                }
                ebbtide::time::sleep(Duration::from_millis(5)).await;
                d.store(true, Ordering::SeqCst);
                tx.send(()).unwrap();
            });
            if detach {
                h.detach();
            } else {
                drop(h);
            }
            rx.recv_timeout(common::WATCHDOG)
                .expect("a detached task stopped running");
            assert!(done.load(Ordering::SeqCst));
        }
    });
}

#[test]
fn a_detached_task_on_current_thread_runs_in_the_next_block_on() {
    watchdog(|| {
        let rt = current_thread();
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        rt.spawn(async move { d.store(true, Ordering::SeqCst) })
            .detach();
        rt.block_on(async {
            while !done.load(Ordering::SeqCst) {
                ebbtide::yield_now().await;
            }
        });
    });
}

#[test]
fn is_finished_tracks_completion_cancellation_and_panic() {
    quiet_expected_panics();
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            rt.block_on(async {
                let (pending, _) = spawn_pending().await;
                assert!(!pending.is_finished(), "{name}: a pending task");
                pending.abort();
                while !pending.is_finished() {
                    ebbtide::yield_now().await;
                }
                let done = ebbtide::spawn(async { 1 });
                while !done.is_finished() {
                    ebbtide::yield_now().await;
                }
                let panicked = ebbtide::spawn(async {
                    if true {
                        panic!("deliberate: is_finished");
                    }
                });
                while !panicked.is_finished() {
                    ebbtide::yield_now().await;
                }
                assert!(pending.await.unwrap_err().is_cancelled(), "{name}");
                assert_eq!(done.await.unwrap(), 1, "{name}");
                assert!(panicked.await.unwrap_err().is_panic(), "{name}");
            });
        }
    });
}

#[test]
fn many_handles_aborted_at_random_points_all_resolve() {
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            let ran = Arc::new(AtomicUsize::new(0));
            let (ok, cancelled) = rt.block_on(async {
                let mut rng = common::Rng::new(7);
                let hs: Vec<_> = (0..2_000)
                    .map(|_| {
                        let yields = rng.below(4);
                        let ran = ran.clone();
                        ebbtide::spawn(async move {
                            for _ in 0..yields {
                                ebbtide::yield_now().await;
                            }
                            ran.fetch_add(1, Ordering::SeqCst);
                        })
                    })
                    .collect();
                for (i, h) in hs.iter().enumerate() {
                    if i % 2 == 0 {
                        h.abort();
                    }
                    if i % 64 == 0 {
                        ebbtide::yield_now().await;
                    }
                }
                let (mut ok, mut cancelled) = (0, 0);
                for h in hs {
                    match h.await {
                        Ok(()) => ok += 1,
                        Err(e) if e.is_cancelled() => cancelled += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                (ok, cancelled)
            });
            assert_eq!(ok + cancelled, 2_000, "{name}");
            assert!(
                cancelled <= 1_000,
                "{name}: only every second one was aborted"
            );
            assert_eq!(
                ok,
                ran.load(Ordering::SeqCst),
                "{name}: Ok exactly for the tasks that ran"
            );
            assert_eq!(rt.metrics().alive_tasks, 0, "{name}");
        }
    });
}

#[test]
fn join_error_display_and_debug_say_what_happened() {
    quiet_expected_panics();
    watchdog(|| {
        let rt = workers(1);
        let (cancelled, str_panic, string_panic, opaque_panic) = rt.block_on(async {
            let c = ebbtide::spawn(std::future::pending::<()>());
            c.abort();
            let s = ebbtide::spawn(async {
                if true {
                    panic!("deliberate: boom");
                }
            });
            let n = 3;
            let t = ebbtide::spawn(async move {
                if n > 0 {
                    panic!("deliberate: boom {n}");
                }
            });
            let o = ebbtide::spawn(async {
                if true {
                    std::panic::panic_any(17u32);
                }
            });
            (
                c.await.unwrap_err(),
                s.await.unwrap_err(),
                t.await.unwrap_err(),
                o.await.unwrap_err(),
            )
        });
        assert_eq!(
            cancelled.to_string(),
            "task was cancelled before it finished"
        );
        assert_eq!(format!("{cancelled:?}"), "JoinError::Cancelled");
        assert_eq!(str_panic.to_string(), "task panicked: deliberate: boom");
        assert_eq!(
            format!("{str_panic:?}"),
            "JoinError::Panic(\"deliberate: boom\")"
        );
        assert_eq!(
            string_panic.to_string(),
            "task panicked: deliberate: boom 3"
        );
        assert_eq!(
            opaque_panic.to_string(),
            "task panicked (non-string payload)"
        );
        assert!(opaque_panic.is_panic());
        assert_eq!(opaque_panic.into_panic().downcast_ref::<u32>(), Some(&17));
        // Into io::Error, keeping the message.
        let io: std::io::Error = string_panic.into();
        assert_eq!(io.to_string(), "task panicked: deliberate: boom 3");
        // The cancelled error has no payload.
        let cancelled = cancelled.try_into_panic().unwrap_err();
        assert!(cancelled.is_cancelled());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cancelled.into_panic();
        }));
        assert!(caught.is_err(), "into_panic on a cancelled task panics");
        // It is a std error.
        let _: &dyn std::error::Error = &str_panic;
    });
}

#[test]
fn a_spawn_refused_during_shutdown_resolves_as_cancelled() {
    watchdog(|| {
        let rt = workers(1);
        rt.handle().begin_shutdown();
        let h = rt.spawn(async { 1 });
        let err = futures_lite::future::block_on(h).unwrap_err();
        assert!(err.is_cancelled());
        assert!(rt.handle().try_spawn(async { 1 }).is_err());
    });
}

#[test]
fn runtime_handle_and_join_handle_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<Runtime>();
    assert_send_sync::<Handle>();
    assert_send_sync::<JoinHandle<u32>>();
    assert_send_sync::<ebbtide::runtime::Metrics>();
    assert_send::<JoinError>();
    assert_send::<JoinHandle<std::cell::Cell<u32>>>();
}

/// A pending task that has started: it reports its first poll, then holds
/// `guard` while it waits on an hour-long timer (a registered waker that
/// never fires by itself).
async fn sleeping_task(started: mpsc::Sender<()>, guard: SetOnDrop) {
    let _guard = guard;
    started.send(()).unwrap();
    ebbtide::time::sleep(Duration::from_secs(3600)).await;
}

/// After tokio's `task_abort.rs::test_abort_wakes_task_3964`: `abort`
/// followed at once by dropping the handle still cancels the task; nobody
/// needs to await the handle for the future to be dropped.
#[test]
fn abort_then_dropping_the_handle_still_drops_the_future() {
    watchdog(|| {
        for f in common::flavours() {
            let (dropped, guard) = drop_flag();
            let (started_tx, started_rx) = mpsc::channel();
            let h = f.rt.spawn(sleeping_task(started_tx, guard));
            f.wait_until(|| started_rx.try_recv().is_ok());
            h.abort();
            drop(h);
            f.wait_until(|| dropped.load(Ordering::SeqCst));
            f.wait_until(|| f.rt.metrics().alive_tasks == 0);
            assert_eq!(f.rt.metrics().timers, 0, "{}: its timer is gone", f.name);
        }
    });
}

/// Panics when dropped.
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

/// After tokio's `task_abort.rs::test_abort_task_that_panics_on_drop_contained`:
/// aborting a task whose future panics when dropped, and dropping its handle
/// at once, keeps the panic inside the task: nothing escapes to the runtime
/// or to `block_on`, it is counted once, and the runtime keeps running tasks.
#[test]
fn a_panic_in_an_aborted_futures_drop_with_its_handle_dropped_stays_in_the_task() {
    quiet_expected_panics();
    watchdog(|| {
        for f in common::flavours() {
            let name = f.name;
            let (started_tx, started_rx) = mpsc::channel();
            let h = f.rt.spawn(async move {
                let _bomb = PanicOnDrop("deliberate: aborted, handle dropped");
                started_tx.send(()).unwrap();
                ebbtide::time::sleep(Duration::from_secs(3600)).await;
            });
            f.wait_until(|| started_rx.try_recv().is_ok());
            h.abort();
            drop(h);
            // The panic is counted just after the future's drop returns.
            let panics = || {
                let m = f.rt.metrics();
                m.panicked_tasks + m.drop_panics
            };
            f.wait_until(|| panics() > 0);
            assert_eq!(f.run(async { 7 }).0, 7, "{name}: still runs tasks");
            let m = f.rt.metrics();
            assert_eq!(m.panicked_tasks + m.drop_panics, 1, "{name}: {m}");
            assert_eq!(m.alive_tasks, 0, "{name}: {m}");
        }
    });
}

/// After tokio's `task_abort.rs::remote_abort_local_set_3929`: a local
/// (`!Send`) task aborted from another thread is dropped on the thread that
/// owns it, never on the aborting thread.
#[test]
fn a_local_task_aborted_from_another_thread_is_dropped_on_its_own_thread() {
    /// Records the thread it is dropped on; `!Send`, like the task.
    struct DropThread {
        dropped_on: Arc<std::sync::Mutex<Option<std::thread::ThreadId>>>,
        _not_send: std::marker::PhantomData<std::rc::Rc<()>>,
    }
    impl Drop for DropThread {
        fn drop(&mut self) {
            *self.dropped_on.lock().unwrap() = Some(std::thread::current().id());
        }
    }
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            let me = std::thread::current().id();
            let dropped_on = Arc::new(std::sync::Mutex::new(None));
            let d = dropped_on.clone();
            let err = rt.block_on(async move {
                let started = std::rc::Rc::new(std::cell::Cell::new(false));
                let s = started.clone();
                let h = ebbtide::spawn_local(async move {
                    let _check = DropThread {
                        dropped_on: d,
                        _not_send: std::marker::PhantomData,
                    };
                    s.set(true);
                    std::future::pending::<()>().await
                });
                while !started.get() {
                    ebbtide::yield_now().await;
                }
                let (tx, rx) = async_channel::bounded(1);
                std::thread::spawn(move || {
                    h.abort();
                    tx.send_blocking(h).unwrap();
                });
                rx.recv().await.unwrap().await.unwrap_err()
            });
            assert!(err.is_cancelled(), "{name}: {err:?}");
            assert_eq!(*dropped_on.lock().unwrap(), Some(me), "{name}");
        }
    });
}

/// After async-executor's `tests/drop.rs` (`await_task_after_dropping_executor`,
/// `drop_executor_and_then_drop_finished_task`): a finished task's output
/// belongs to its handle, not to the runtime. Dropping the runtime neither
/// drops nor loses it: the handle still yields it afterwards, and dropping
/// the handle instead drops it then.
#[test]
fn a_finished_tasks_output_outlives_the_runtime_and_drops_with_its_handle() {
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            let (kept_dropped, kept_guard) = drop_flag();
            let (left_dropped, left_guard) = drop_flag();
            let kept = rt.spawn(async move { (String::from("hello"), kept_guard) });
            let left = rt.spawn(async move { left_guard });
            rt.block_on(async {
                while !kept.is_finished() || !left.is_finished() {
                    ebbtide::yield_now().await;
                }
            });
            drop(rt);
            assert!(!kept_dropped.load(Ordering::SeqCst), "{name}");
            assert!(!left_dropped.load(Ordering::SeqCst), "{name}");
            let (text, guard) = futures_lite::future::block_on(kept).unwrap();
            assert_eq!(text, "hello", "{name}");
            assert!(!kept_dropped.load(Ordering::SeqCst), "{name}");
            drop(guard);
            assert!(kept_dropped.load(Ordering::SeqCst), "{name}");
            drop(left);
            assert!(left_dropped.load(Ordering::SeqCst), "{name}");
        }
    });
}

/// An abort that lands while the task is inside `poll` (which then returns
/// `Pending` with no waker registered anywhere) is not lost: the task is
/// cancelled and its future dropped right after that poll.
#[test]
fn abort_while_the_task_is_being_polled_is_acted_on_after_that_poll() {
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            for _round in 0..20 {
                let (dropped, guard) = drop_flag();
                let in_poll = Arc::new(AtomicBool::new(false));
                let aborted = Arc::new(AtomicBool::new(false));
                let (ip, ab) = (in_poll.clone(), aborted.clone());
                let h = rt.spawn(async move {
                    let _guard = guard;
                    std::future::poll_fn::<(), _>(|_cx| {
                        ip.store(true, Ordering::SeqCst);
                        while !ab.load(Ordering::SeqCst) {
                            std::hint::spin_loop();
                        }
                        Poll::Pending // and no waker kept
                    })
                    .await
                });
                let aborter = std::thread::spawn(move || {
                    while !in_poll.load(Ordering::SeqCst) {
                        std::thread::yield_now();
                    }
                    h.abort();
                    aborted.store(true, Ordering::SeqCst);
                    h
                });
                // A current-thread runtime polls the task only inside
                // `block_on`; the others on their workers.
                rt.block_on(async {
                    while !aborter.is_finished() {
                        ebbtide::yield_now().await;
                    }
                });
                let h = aborter.join().unwrap();
                let err = rt.block_on(h).unwrap_err();
                assert!(err.is_cancelled(), "{name}: {err:?}");
                assert!(dropped.load(Ordering::SeqCst), "{name}");
            }
        }
    });
}
