//! `block_on`: a nested call panics with the documented message instead of
//! hanging; the top-level one works outside any runtime (on the global
//! runtime) and inside blocking jobs; several threads may block on one
//! runtime at once; a runtime dropped on another runtime's thread neither
//! panics nor deadlocks.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{panic_message, quiet_expected_panics, spin_forever, watchdog, workers, Flavour};
use ebbtide::runtime::{Handle, Runtime};
use ebbtide::time::sleep;

const NESTED: &str = "`block_on` called on a thread that is already running an ebbtide runtime";

fn assert_nested_message(payload: &(dyn std::any::Any + Send), context: &str) {
    let msg = panic_message(payload);
    assert!(
        msg.contains(NESTED),
        "{context}: unexpected panic message: {msg:?}"
    );
}

/// A label and a nested `block_on` call to try.
type NestedCall<'a> = (&'static str, Box<dyn Fn() + 'a>);

#[test]
fn nested_block_on_inside_rt_block_on_panics_with_the_documented_message() {
    quiet_expected_panics();
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            let other = workers(1);
            let nested: [NestedCall<'_>; 3] = [
                (
                    "ebbtide::block_on",
                    Box::new(|| ebbtide::block_on(async {})),
                ),
                ("the same runtime", Box::new(|| rt.block_on(async {}))),
                ("another runtime", Box::new(|| other.block_on(async {}))),
            ];
            for (what, call) in &nested {
                let caught = catch_unwind(AssertUnwindSafe(|| {
                    rt.block_on(async { call() });
                }));
                let payload = caught.expect_err("a nested block_on panics");
                assert_nested_message(&*payload, &format!("{name}, nested {what}"));
            }
        }
    });
}

#[test]
fn a_runtime_keeps_working_after_a_panic_escaped_its_block_on() {
    quiet_expected_panics();
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            let caught = catch_unwind(AssertUnwindSafe(|| {
                rt.block_on(async {
                    ebbtide::yield_now().await;
                    panic!("deliberate: escapes block_on");
                })
            }));
            assert!(caught.is_err(), "{name}");
            // The thread is no longer "in a runtime", and the runtime runs
            // tasks and timers for the next `block_on`.
            assert!(Handle::try_current().is_err(), "{name}: context restored");
            let v = rt.block_on(async {
                sleep(Duration::from_millis(1)).await;
                ebbtide::spawn(async { 5 }).await.unwrap()
            });
            assert_eq!(v, 5, "{name}");
        }
    });
}

#[test]
fn nested_block_on_inside_a_spawned_task_is_reported_through_its_join_handle() {
    quiet_expected_panics();
    watchdog(|| {
        for f in common::flavours() {
            let name = f.name;
            let (tx, rx) = mpsc::channel();
            let h = f.rt.spawn(async move {
                let inner = ebbtide::block_on(async { 1 });
                tx.send(inner).unwrap(); // never reached
            });
            let err = f.join(h).expect_err("nested block_on in a task panics");
            assert!(err.is_panic(), "{name}: {err:?}");
            assert_nested_message(&*err.into_panic(), name);
            assert!(rx.try_recv().is_err(), "{name}: the nested call returned");
            // The thread that ran it still runs tasks.
            assert_eq!(f.run(async { 2 }).0, 2, "{name}");
        }
    });
}

#[test]
fn top_level_block_on_outside_any_runtime_uses_the_global_runtime() {
    watchdog(|| {
        assert!(Handle::try_current().is_err());
        let (v, current, worker) = ebbtide::block_on(async {
            let current = Handle::try_current().is_ok();
            let h = ebbtide::spawn(async {
                sleep(Duration::from_millis(1)).await;
                20
            });
            let b = ebbtide::spawn_blocking(|| 1).await.unwrap();
            let worker = ebbtide::spawn(async { std::thread::current().name().map(str::to_owned) })
                .await
                .unwrap();
            (h.await.unwrap() + b, current, worker)
        });
        assert_eq!(v, 21);
        assert!(current, "Handle::current works inside the global block_on");
        assert!(Handle::try_current().is_err(), "and not after it");
        // Ran by a global worker or by this block_on caller.
        let worker = worker.unwrap();
        assert!(
            worker.starts_with("ebbtide-global-worker-") || worker == "watched-test-body",
            "{worker}"
        );
        // `spawn` outside any runtime goes to the same global runtime.
        let h = ebbtide::spawn(async { 3 });
        assert_eq!(ebbtide::block_on(h).unwrap(), 3);
    });
}

#[test]
fn top_level_block_on_from_many_plain_threads_at_once() {
    watchdog(|| {
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                std::thread::spawn(move || {
                    ebbtide::block_on(async move {
                        let hs: Vec<_> = (0..250u64)
                            .map(|i| ebbtide::spawn(async move { t * i }))
                            .collect();
                        let mut sum = 0;
                        for h in hs {
                            sum += h.await.unwrap();
                        }
                        sum
                    })
                })
            })
            .collect();
        for (t, th) in threads.into_iter().enumerate() {
            assert_eq!(th.join().unwrap(), t as u64 * 249 * 250 / 2);
        }
    });
}

#[test]
fn block_on_inside_spawn_blocking_is_allowed_and_uses_the_same_runtime() {
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            let spawned_before = rt.metrics().spawned_tasks;
            let v = rt.block_on(async {
                ebbtide::spawn_blocking(|| {
                    assert!(
                        Handle::try_current().is_ok(),
                        "blocking jobs see their runtime"
                    );
                    ebbtide::block_on(async {
                        sleep(Duration::from_millis(1)).await;
                        ebbtide::spawn(async { 40 }).await.unwrap() + 2
                    })
                })
                .await
                .unwrap()
            });
            assert_eq!(v, 42, "{name}");
            // The blocking job and the task inside it: both on `rt`.
            assert_eq!(rt.metrics().spawned_tasks - spawned_before, 2, "{name}");
        }
    });
}

#[test]
fn rt_block_on_of_another_runtime_inside_spawn_blocking_is_allowed() {
    watchdog(|| {
        let outer = workers(1);
        let inner = Arc::new(Flavour::current_thread().rt);
        let i2 = inner.clone();
        let v = outer.block_on(async move {
            ebbtide::spawn_blocking(move || {
                i2.block_on(async { ebbtide::spawn(async { 8 }).await.unwrap() })
            })
            .await
            .unwrap()
        });
        assert_eq!(v, 8);
        assert_eq!(
            inner.metrics().spawned_tasks,
            1,
            "spawned on the runtime blocked on"
        );
    });
}

#[test]
fn concurrent_block_on_from_4_threads_on_one_multi_thread_runtime() {
    watchdog(|| {
        let rt = Arc::new(workers(2));
        let ran = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let rt = rt.clone();
                let ran = ran.clone();
                std::thread::spawn(move || {
                    rt.block_on(async move {
                        let hs: Vec<_> = (0..1_000u64)
                            .map(|i| {
                                let ran = ran.clone();
                                ebbtide::spawn(async move {
                                    if i % 10 == 0 {
                                        sleep(Duration::from_millis(1)).await;
                                    } else {
                                        ebbtide::yield_now().await;
                                    }
                                    ran.fetch_add(1, Ordering::Relaxed);
                                    t * 1_000 + i
                                })
                            })
                            .collect();
                        let mut sum = 0;
                        for h in hs {
                            sum += h.await.unwrap();
                        }
                        sum
                    })
                })
            })
            .collect();
        for (t, th) in threads.into_iter().enumerate() {
            let t = t as u64;
            assert_eq!(th.join().unwrap(), t * 1_000 * 1_000 + 999 * 1_000 / 2);
        }
        assert_eq!(ran.load(Ordering::SeqCst), 4_000);
        assert_eq!(rt.metrics().alive_tasks, 0);
    });
}

#[test]
fn concurrent_block_on_from_4_threads_on_one_current_thread_runtime() {
    watchdog(|| {
        let rt = Arc::new(Flavour::current_thread().rt);
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let rt = rt.clone();
                std::thread::spawn(move || {
                    rt.block_on(async move {
                        let mut sum = 0;
                        for i in 0..50u64 {
                            sleep(Duration::from_micros(100 * (i % 3))).await;
                            sum += ebbtide::spawn(async move { t + i }).await.unwrap();
                        }
                        sum
                    })
                })
            })
            .collect();
        for (t, th) in threads.into_iter().enumerate() {
            assert_eq!(th.join().unwrap(), 50 * t as u64 + 49 * 50 / 2);
        }
    });
}

#[test]
fn a_runtime_dropped_inside_a_task_of_another_runtime_neither_panics_nor_deadlocks() {
    watchdog(|| {
        for f in common::flavours() {
            let name = f.name;
            let (dropped, guard) = common::drop_flag();
            let v = f.run(async move {
                let inner = Runtime::builder()
                    .worker_threads(1)
                    .drain_timeout(Duration::from_millis(10))
                    .build()
                    .unwrap();
                let finished = inner.spawn(async { 1 });
                // A task that never finishes: the drop must cancel it.
                inner.spawn(async move {
                    let _guard = guard;
                    std::future::pending::<()>().await
                });
                while !finished.is_finished() {
                    ebbtide::yield_now().await;
                }
                drop(inner); // on a worker of the outer runtime
                7
            });
            assert_eq!(v.0, 7, "{name}");
            // The drop handed the shutdown to a background thread, which
            // cancels the pending task.
            while !dropped.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
}

#[test]
fn a_runtime_dropped_inside_block_on_of_another_runtime_neither_panics_nor_deadlocks() {
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            let v = rt.block_on(async {
                let inner = Flavour::workers(2).rt;
                let h = inner.spawn(async { 3 });
                let v = h.await.unwrap();
                drop(inner);
                // The outer runtime is unaffected.
                v + ebbtide::spawn(async { 1 }).await.unwrap()
            });
            assert_eq!(v, 4, "{name}");
        }
    });
}

/// A current-thread runtime kept in a `thread_local!` is dropped by the
/// thread-local destructors at thread exit, after the runtime's own
/// thread-locals may be gone: it must shut down quietly, not abort the
/// process with "cannot access a Thread Local Storage value during or
/// after destruction". Runs in a child process, which the abort would kill.
#[test]
fn a_current_thread_runtime_in_a_thread_local_is_dropped_cleanly_at_thread_exit() {
    const CHILD: &str = "EBBTIDE_TLS_RUNTIME_CHILD";
    if std::env::var_os(CHILD).is_some() {
        thread_local! {
            static RT: std::cell::RefCell<Option<ebbtide::runtime::Runtime>> =
                const { std::cell::RefCell::new(None) };
        }
        std::thread::spawn(|| {
            RT.with(|rt| {
                let built = ebbtide::runtime::Runtime::builder()
                    .current_thread()
                    .build()
                    .unwrap();
                built.spawn(std::future::pending::<()>());
                built.block_on(ebbtide::time::sleep(std::time::Duration::from_millis(1)));
                *rt.borrow_mut() = Some(built);
            });
            // A second runtime created and dropped on the same thread.
            let other = ebbtide::runtime::Runtime::builder()
                .current_thread()
                .build()
                .unwrap();
            other.block_on(async {});
            drop(other);
        })
        .join()
        .unwrap();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "a_current_thread_runtime_in_a_thread_local_is_dropped_cleanly_at_thread_exit",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the child died: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// After tokio's `rt_common.rs::runtime_in_thread_local`, with the
/// multi-thread flavour: a runtime with workers, a pending task, a pending
/// accept and a running timer, kept in a `thread_local!`, is dropped by the
/// thread-local destructors at thread exit, while another runtime created
/// on that thread is dropped just before. It shuts down quietly (no abort
/// from a thread-local accessed during destruction). Runs in a child
/// process, which an abort would kill.
#[test]
fn a_multi_thread_runtime_in_a_thread_local_is_dropped_cleanly_at_thread_exit() {
    const CHILD: &str = "EBBTIDE_TLS_MT_RUNTIME_CHILD";
    const NAME: &str = "a_multi_thread_runtime_in_a_thread_local_is_dropped_cleanly_at_thread_exit";
    if std::env::var_os(CHILD).is_some() {
        thread_local! {
            static RT: std::cell::RefCell<Option<Runtime>> = const { std::cell::RefCell::new(None) };
        }
        let (dropped, guard) = common::drop_flag();
        std::thread::spawn(move || {
            RT.with(|cell| {
                let rt = Runtime::builder()
                    .worker_threads(2)
                    .drain_timeout(Duration::from_millis(10))
                    .build()
                    .unwrap();
                rt.spawn(async move {
                    let _guard = guard;
                    sleep(Duration::from_secs(3600)).await;
                });
                rt.block_on(async {
                    let listener = ebbtide::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .unwrap();
                    ebbtide::spawn(async move {
                        let _ = listener.accept().await;
                    });
                    sleep(Duration::from_millis(1)).await;
                });
                *cell.borrow_mut() = Some(rt);
            });
            // Alive until the closure returns, dropped before `RT`.
            let _other = Runtime::builder().worker_threads(1).build().unwrap();
        })
        .join()
        .unwrap();
        assert!(
            dropped.load(Ordering::SeqCst),
            "the pending task was cancelled"
        );
        return;
    }
    let out = watchdog(|| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture"])
            .env(CHILD, "1")
            .output()
            .unwrap()
    });
    assert!(
        out.status.success(),
        "the child died: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// After tokio's `rt_common.rs::complete_block_on_under_load` and
/// `complete_task_under_load`: while a spawned task is always ready (it
/// wakes itself on every poll), a `block_on` future woken from another
/// thread, and a task woken the same way, still get polled and complete.
#[test]
fn block_on_and_tasks_woken_from_another_thread_complete_beside_an_always_ready_task() {
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            let spinner = rt.spawn(spin_forever());
            let (tx1, rx1) = async_channel::bounded::<u32>(1);
            let (tx2, rx2) = async_channel::bounded::<u32>(1);
            let got = rt.block_on(async move {
                // Yield so the spinner is running before anyone waits.
                for _ in 0..10 {
                    ebbtide::yield_now().await;
                }
                let relay = ebbtide::spawn(async move {
                    let v = rx1.recv().await.unwrap();
                    tx2.send(v + 1).await.unwrap();
                });
                let sender = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    tx1.send_blocking(41).unwrap();
                });
                let got = rx2.recv().await.unwrap();
                relay.await.unwrap();
                sender.join().unwrap();
                got
            });
            assert_eq!(got, 42, "{name}");
            spinner.abort();
            assert!(rt.block_on(spinner).unwrap_err().is_cancelled(), "{name}");
        }
    });
}

/// After tokio's `rt_common.rs::spawn_from_other_thread_idle`: a `block_on`
/// with nothing to do (its thread parked in the poller or asleep) runs a
/// task that another thread spawns through a `Handle`, and is woken by it.
#[test]
fn an_idle_block_on_runs_a_task_spawned_from_another_thread() {
    watchdog(|| {
        for Flavour {
            name,
            rt,
            current_thread,
        } in common::flavours()
        {
            let handle = rt.handle().clone();
            let (tx, rx) = async_channel::bounded::<std::thread::ThreadId>(1);
            let spawner = std::thread::spawn(move || {
                // Let the `block_on` below go idle first.
                std::thread::sleep(Duration::from_millis(50));
                handle
                    .spawn(async move {
                        tx.send(std::thread::current().id()).await.unwrap();
                    })
                    .detach();
            });
            let ran_on = rt.block_on(async move { rx.recv().await.unwrap() });
            spawner.join().unwrap();
            if current_thread {
                assert_eq!(ran_on, std::thread::current().id(), "{name}");
            }
        }
    });
}
