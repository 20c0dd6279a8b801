//! Spawning: every task runs to completion with its own result on every
//! runtime flavour; spawning works from any thread through a `Handle`; the
//! current runtime is visible where it should be and nowhere else.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{current_thread, watchdog, workers};
use ebbtide::runtime::{Handle, Runtime};

/// Tasks per flavour in the completion tests.
const TASKS: u64 = 100_000;

/// Spawns `TASKS` tasks from inside `block_on` (every third one yields once,
/// so it is rescheduled after a wake) and checks each result and the count
/// of tasks that ran.
fn every_task_completes_with_its_result(rt: Runtime) {
    let ran = Arc::new(AtomicUsize::new(0));
    let ran2 = ran.clone();
    let sum = rt.block_on(async move {
        let handles: Vec<_> = (0..TASKS)
            .map(|i| {
                let ran = ran2.clone();
                ebbtide::spawn(async move {
                    if i % 3 == 0 {
                        ebbtide::yield_now().await;
                    }
                    ran.fetch_add(1, Ordering::Relaxed);
                    i * 2 + 1
                })
            })
            .collect();
        let mut sum = 0u64;
        for (i, h) in handles.into_iter().enumerate() {
            let v = h.await.expect("task completes");
            assert_eq!(
                v,
                i as u64 * 2 + 1,
                "task {i} returned another task's result"
            );
            sum += v;
        }
        sum
    });
    assert_eq!(ran.load(Ordering::SeqCst), TASKS as usize);
    assert_eq!(sum, TASKS * TASKS); // sum of the first TASKS odd numbers
    let m = rt.metrics();
    assert_eq!(m.spawned_tasks, TASKS);
    assert_eq!(m.alive_tasks, 0, "{m}");
}

#[test]
fn every_spawned_task_completes_on_current_thread() {
    watchdog(|| every_task_completes_with_its_result(current_thread()));
}

#[test]
fn every_spawned_task_completes_on_1_worker() {
    watchdog(|| every_task_completes_with_its_result(workers(1)));
}

#[test]
fn every_spawned_task_completes_on_2_workers() {
    watchdog(|| every_task_completes_with_its_result(workers(2)));
}

#[test]
fn every_spawned_task_completes_on_4_workers() {
    watchdog(|| every_task_completes_with_its_result(workers(4)));
}

#[test]
fn tasks_spawned_from_outside_block_on_complete_on_every_flavour() {
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            // Spawned before any `block_on` runs (a current-thread runtime
            // runs them in the next one).
            let handles: Vec<_> = (0..1_000u32).map(|i| rt.spawn(async move { i })).collect();
            let got = rt.block_on(async move {
                let mut got = Vec::new();
                for h in handles {
                    got.push(h.await.unwrap());
                }
                got
            });
            assert_eq!(got, (0..1_000).collect::<Vec<_>>(), "{name}");
        }
    });
}

#[test]
fn spawn_from_a_plain_thread_via_handle_runs_on_the_runtimes_workers() {
    watchdog(|| {
        let rt = Runtime::builder()
            .worker_threads(2)
            .thread_name("plain-spawn")
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let spawner = std::thread::spawn(move || {
            assert!(
                Handle::try_current().is_err(),
                "a plain thread has no runtime"
            );
            (0..1_000u32)
                .map(|i| {
                    let tx = tx.clone();
                    handle.spawn(async move {
                        let name = std::thread::current().name().map(str::to_owned);
                        tx.send(name).unwrap();
                        i
                    })
                })
                .collect::<Vec<_>>()
        });
        let handles = spawner.join().unwrap();
        // Nobody calls `block_on` yet: the workers alone run them.
        for _ in 0..1_000 {
            let name = rx
                .recv_timeout(common::WATCHDOG)
                .expect("a task spawned from a plain thread never ran")
                .expect("workers are named");
            assert!(name.starts_with("plain-spawn-worker-"), "ran on {name}");
        }
        rt.block_on(async move {
            for (i, h) in handles.into_iter().enumerate() {
                assert_eq!(h.await.unwrap(), i as u32);
            }
        });
    });
}

#[test]
fn try_spawn_on_a_running_runtime_is_ok() {
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            let h = rt
                .handle()
                .try_spawn(async { 7 })
                .unwrap_or_else(|e| panic!("{name}: try_spawn refused: {e}"));
            assert_eq!(rt.block_on(h).unwrap(), 7, "{name}");
            // And from inside a task, through `Handle::current`.
            let inner = rt.block_on(async {
                let h = Handle::current().try_spawn(async { 8 }).unwrap();
                h.await.unwrap()
            });
            assert_eq!(inner, 8, "{name}");
        }
    });
}

#[test]
fn metrics_count_every_spawned_task_and_none_alive_after_completion() {
    watchdog(|| {
        for common::Flavour { name, rt, .. } in common::flavours() {
            assert_eq!(rt.metrics().spawned_tasks, 0, "{name}: fresh runtime");
            assert_eq!(rt.metrics().alive_tasks, 0, "{name}: fresh runtime");
            rt.block_on(async {
                let tasks: Vec<_> = (0..500u32)
                    .map(|i| ebbtide::spawn(async move { i }))
                    .collect();
                let jobs: Vec<_> = (0..20u32)
                    .map(|i| ebbtide::spawn_blocking(move || i))
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                for j in jobs {
                    j.await.unwrap();
                }
            });
            let m = rt.metrics();
            assert_eq!(m.spawned_tasks, 520, "{name}: tasks + blocking jobs: {m}");
            assert_eq!(m.alive_tasks, 0, "{name}: every future was dropped: {m}");
            assert_eq!(m.panicked_tasks, 0, "{name}: {m}");
            assert_eq!(m.injector_depth, 0, "{name}: {m}");
        }
    });
}

#[test]
fn alive_tasks_counts_pending_tasks_until_they_finish() {
    watchdog(|| {
        let rt = workers(2);
        let handles: Vec<_> = (0..10)
            .map(|_| rt.spawn(std::future::pending::<()>()))
            .collect();
        assert_eq!(rt.metrics().alive_tasks, 10);
        for h in &handles {
            h.abort();
        }
        rt.block_on(async move {
            for h in handles {
                assert!(h.await.unwrap_err().is_cancelled());
            }
        });
        assert_eq!(rt.metrics().alive_tasks, 0);
        assert_eq!(rt.metrics().spawned_tasks, 10);
    });
}

#[test]
fn handle_try_current_errs_outside_any_runtime() {
    watchdog(|| {
        let err = Handle::try_current().expect_err("no runtime on a plain thread");
        assert!(
            err.to_string().contains("no ebbtide runtime is current"),
            "{err}"
        );
        common::quiet_expected_panics();
        let caught = std::panic::catch_unwind(Handle::current);
        let payload = caught.expect_err("Handle::current panics outside a runtime");
        let msg = common::panic_message(&*payload);
        assert!(msg.contains("no ebbtide runtime is current"), "{msg}");
    });
}

#[test]
fn handle_current_works_inside_block_on_tasks_and_spawn_blocking() {
    watchdog(|| {
        let rt = workers(2);
        // Each use spawns one task through `Handle::current()`; the count on
        // `rt` proves the handle named `rt` (not the global runtime).
        let through_current = || Handle::current().spawn(async { 1u32 });
        let got = rt.block_on(async move {
            // In the block_on future itself.
            let a = through_current().await.unwrap();
            // In a task.
            let b = ebbtide::spawn(async move { through_current().await.unwrap() })
                .await
                .unwrap();
            // In a blocking job.
            let c = ebbtide::spawn_blocking(through_current)
                .await
                .unwrap()
                .await
                .unwrap();
            a + b + c
        });
        assert_eq!(got, 3);
        // 3 through `Handle::current()`, plus the outer task and blocking job.
        assert_eq!(rt.metrics().spawned_tasks, 5, "{}", rt.metrics());
        // Current inside, not after.
        assert!(
            Handle::try_current().is_err(),
            "block_on restores the context"
        );
    });
}

#[test]
fn handle_enter_makes_the_runtime_current_until_the_guard_drops() {
    watchdog(|| {
        let rt = workers(1);
        assert!(Handle::try_current().is_err());
        {
            let _guard = rt.handle().enter();
            assert!(Handle::try_current().is_ok());
            let h = ebbtide::spawn(async { 11 });
            assert_eq!(rt.block_on(h).unwrap(), 11);
            assert_eq!(
                rt.metrics().spawned_tasks,
                1,
                "spawned on the entered runtime"
            );
        }
        assert!(Handle::try_current().is_err());
    });
}

#[test]
fn default_worker_count_is_available_parallelism() {
    watchdog(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(Runtime::new().unwrap().metrics().workers, cores);
        assert_eq!(Runtime::builder().build().unwrap().metrics().workers, cores);
        assert_eq!(current_thread().metrics().workers, 1);
        assert_eq!(workers(3).metrics().workers, 3);
    });
}

#[test]
fn zero_workers_or_zero_blocking_threads_is_an_invalid_input_error() {
    let err = Runtime::builder().worker_threads(0).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let err = Runtime::builder()
        .max_blocking_threads(0)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn workers_and_blocking_threads_carry_the_configured_name() {
    watchdog(|| {
        let rt = Runtime::builder()
            .worker_threads(1)
            .thread_name("named")
            .max_blocking_threads(2)
            .build()
            .unwrap();
        // Reported through a channel, not awaited: a `block_on` caller may
        // itself run ready tasks, and this checks the worker's name.
        let (tx, rx) = std::sync::mpsc::channel();
        let tx2 = tx.clone();
        rt.spawn(async move {
            tx.send(std::thread::current().name().map(str::to_owned))
                .unwrap();
        });
        rt.spawn_blocking(move || {
            tx2.send(std::thread::current().name().map(str::to_owned))
                .unwrap();
        });
        let mut names: Vec<String> = (0..2)
            .map(|_| rx.recv_timeout(common::WATCHDOG).unwrap().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["named-blocking", "named-worker-0"]);
    });
}
