//! The seed scenarios (DESIGN.md, "Seed scenarios"): each is a real bug of
//! a mature event loop, replayed against ebbtide.
//!
//! | seed | the scenario | where |
//! | --- | --- | --- |
//! | libev at-exit cleanup | a program that uses the global runtime with open sockets, pending reads and running timers returns from `main`: the exit hook drains, nothing runs after it, no crash | `tests/libev_exit.rs` (a `harness = false` test: its `main` must be the process's real one); `begin_shutdown()` from another thread here, from a signal handler in `tests/signal.rs` |
//! | self-pipe queueing (Crochet) | 100,000 signals while workers are busy, wakers and `Drop` impls that spawn and wake from inside `poll`: no deadlock, no lost wake, every task completes | here (Unix) |
//! | asyncio IOCP cancellation | 10,000 overlapped pipe reads dropped at random points, cancelled twice, a runtime shut down with reads pending: every buffer dropped once, after its acknowledgement | the unit tests of the Windows overlapped backend (`src/op/iocp.rs`; the tests sit in `src/os/windows/pipe.rs`, next to the pipes they use), run under Wine: they check the protocol's internals (the kernel's final result against each buffer's drop) |
//! | mitogen shutdown | queued messages are delivered before the join; a task that never yields and a blocking job that never returns do not stop shutdown and are reported | here |

mod common;
use common::watchdog_for as watchdog;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ebbtide::runtime::Runtime;
use ebbtide::time::sleep;

/// `begin_shutdown()` from another thread stops a busy runtime: intake
/// stops at once and `shutdown` cancels the busy loops.
#[test]
fn begin_shutdown_from_another_thread_stops_a_busy_runtime() {
    watchdog(Duration::from_secs(30), || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let polls = Arc::new(AtomicU64::new(0));
        for _ in 0..8 {
            let polls = polls.clone();
            rt.spawn(async move {
                loop {
                    polls.fetch_add(1, Ordering::Relaxed);
                    ebbtide::yield_now().await;
                }
            });
        }
        while polls.load(Ordering::Relaxed) < 1000 {
            std::thread::yield_now();
        }
        let handle = rt.handle().clone();
        let stopped = Arc::new(AtomicBool::new(false));
        let s = stopped.clone();
        std::thread::spawn(move || {
            handle.begin_shutdown();
            s.store(true, Ordering::SeqCst);
        })
        .join()
        .unwrap();
        assert!(stopped.load(Ordering::SeqCst));
        assert!(rt.handle().try_spawn(async {}).is_err());
        let report = rt.shutdown(Duration::from_millis(50));
        assert_eq!(report.cancelled, 8, "{report}");
        assert_eq!(report.workers_leaked, 0, "{report}");
    });
}

/// The Crochet seed: a storm of signals while workers are busy, plus wakers
/// and `Drop` impls that spawn and wake from inside `poll`: no deadlock,
/// every task completes, and a signal sent after the storm still arrives.
#[cfg(unix)]
#[test]
fn crochet_signal_storm_with_reentrant_wakes_loses_nothing() {
    use ebbtide::signal::Signals;
    use ebbtide::time::timeout;

    const STORM: u64 = 100_000;
    fn raise(sig: i32) {
        // SAFETY: raising a signal that has a handler installed.
        assert_eq!(unsafe { libc::raise(sig) }, 0);
    }
    watchdog(Duration::from_secs(120), || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let completed = Arc::new(AtomicU64::new(0));
        rt.block_on(async {
            let mut signals = Signals::new([libc::SIGUSR2]).unwrap();
            let storm_over = Arc::new(AtomicBool::new(false));
            let over = storm_over.clone();
            let sender = std::thread::spawn(move || {
                for _ in 0..STORM {
                    raise(libc::SIGUSR2);
                }
                over.store(true, Ordering::SeqCst);
            });

            // Busy workers whose futures spawn and wake from inside poll
            // and from Drop.
            struct SpawnOnDrop(Arc<AtomicU64>);
            impl Drop for SpawnOnDrop {
                fn drop(&mut self) {
                    let c = self.0.clone();
                    ebbtide::spawn(async move {
                        c.fetch_add(1, Ordering::SeqCst);
                    });
                }
            }
            let mut tasks = Vec::new();
            for _ in 0..1000 {
                let c = completed.clone();
                tasks.push(ebbtide::spawn(async move {
                    let _d = SpawnOnDrop(c.clone());
                    for _ in 0..20 {
                        let c2 = c.clone();
                        ebbtide::spawn(async move {
                            c2.fetch_add(1, Ordering::SeqCst);
                        });
                        ebbtide::yield_now().await;
                    }
                }));
            }
            let mut received = 0u64;
            while !storm_over.load(Ordering::SeqCst) {
                if timeout(Duration::from_millis(50), signals.recv())
                    .await
                    .is_ok()
                {
                    received += 1;
                }
            }
            sender.join().unwrap();
            for t in tasks {
                t.await.unwrap();
            }
            // Drain what the storm left, then one more signal must arrive.
            while timeout(Duration::from_millis(100), signals.recv())
                .await
                .is_ok()
            {
                received += 1;
            }
            assert!(received >= 1, "the storm yielded nothing");
            raise(libc::SIGUSR2);
            assert_eq!(signals.recv().await.unwrap(), libc::SIGUSR2);
        });
        // 1000 tasks × (20 spawned + 1 spawned from Drop).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while completed.load(Ordering::SeqCst) < 21_000 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(completed.load(Ordering::SeqCst), 21_000);
    });
}

/// The mitogen seed: messages queued before shutdown are all delivered
/// before the workers are joined.
#[test]
fn queued_messages_are_delivered_before_join() {
    watchdog(Duration::from_secs(30), || {
        for common::Flavour { rt, .. } in common::flavours() {
            let (tx, rx) = smol::channel::unbounded::<u32>();
            let delivered = Arc::new(AtomicUsize::new(0));
            let d = delivered.clone();
            rt.spawn(async move {
                while let Ok(_msg) = rx.recv().await {
                    d.fetch_add(1, Ordering::SeqCst);
                    ebbtide::yield_now().await;
                }
            });
            rt.spawn(async move {
                for i in 0..1000 {
                    tx.send(i).await.unwrap();
                }
            });
            let report = rt.shutdown(Duration::from_secs(10));
            assert_eq!(delivered.load(Ordering::SeqCst), 1000, "{report}");
            assert_eq!(report.cancelled, 0, "{report}");
        }
    });
}

/// The mitogen seed's other half: a task stuck in a loop that never yields,
/// and a blocking job that never returns, do not stop shutdown; another
/// task still finishes during the drain.
#[test]
fn a_never_yielding_task_and_a_stuck_blocking_job_are_detached_and_reported() {
    static RELEASE: AtomicBool = AtomicBool::new(false);
    let (report, other) = watchdog(Duration::from_secs(10), || {
        let rt = Runtime::builder().worker_threads(2).build().unwrap();
        let entered = Arc::new(AtomicBool::new(false));
        let e = entered.clone();
        rt.spawn(async move {
            e.store(true, Ordering::SeqCst);
            // Never yields (until the test releases it, so the thread ends).
            while !RELEASE.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        rt.spawn_blocking(|| {
            while !RELEASE.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let other = rt.spawn(async { sleep(Duration::from_millis(1)).await });
        while !entered.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let report = rt.shutdown(Duration::from_millis(100));
        (report, futures_lite::future::block_on(other))
    });
    RELEASE.store(true, Ordering::Relaxed);
    assert!(
        other.is_ok(),
        "the other task did not drain: {other:?}, {report}"
    );
    assert_eq!(report.workers_leaked, 1, "{report}");
    assert_eq!(report.blocking_leaked, 1, "{report}");
    assert_eq!(
        report.tasks_leaked, 1,
        "the spinning task; the blocking job is counted once, in blocking_leaked: {report}"
    );
}
