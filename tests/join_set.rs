//! `task::JoinSet`: tasks come out in the order they finish, dropping the set
//! cancels and drops every task, `shutdown` resolves only once every future
//! is dropped, `abort_all` / `detach_all` / `try_join_next` / `join_all`,
//! and joining stays O(1) per task in a set of 100,000.
//! (Scenarios after tokio's `tests/task_join_set.rs`.)

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use common::{current_thread, quiet_expected_panics, watchdog, workers};
use ebbtide::runtime::Runtime;
use ebbtide::task::JoinSet;

/// Counts the futures (or values) dropped.
#[derive(Clone, Default)]
struct DropCount(Arc<AtomicUsize>);

impl DropCount {
    fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A future that never finishes and counts its drop.
fn pending_counted(drops: &DropCount) -> impl Future<Output = ()> + Send + 'static {
    let guard = drops.guard();
    async move {
        let _guard = guard;
        std::future::pending::<()>().await
    }
}

/// Waits, letting `rt` run its tasks, until `cond` holds (the watchdog
/// bounds it).
fn wait_until(rt: &Runtime, cond: impl Fn() -> bool) {
    rt.block_on(async {
        while !cond() {
            ebbtide::yield_now().await;
        }
    });
}

/// A current-thread runtime and two multi-thread ones.
fn runtimes() -> Vec<(&'static str, Runtime)> {
    vec![
        ("current_thread", current_thread()),
        ("1 worker", workers(1)),
        ("4 workers", workers(4)),
    ]
}

#[test]
fn join_next_on_an_empty_set_is_none() {
    watchdog(|| {
        let rt = current_thread();
        rt.block_on(async {
            let mut set = JoinSet::<u32>::new();
            assert!(set.is_empty());
            assert!(set.join_next().await.is_none());
            assert!(set.try_join_next().is_none());
            // Emptied by joining, it is empty again.
            set.spawn(async { 1 });
            assert_eq!(set.join_next().await.unwrap().unwrap(), 1);
            assert!(set.join_next().await.is_none());
            assert!(set.is_empty());
        });
    });
}

#[test]
fn len_counts_tasks_until_they_are_joined() {
    watchdog(|| {
        let rt = current_thread();
        rt.block_on(async {
            let mut set = JoinSet::new();
            set.spawn(async {});
            set.spawn(async {});
            assert_eq!(set.len(), 2);
            for _ in 0..16 {
                set.join_next().await.unwrap().unwrap();
                assert_eq!(set.len(), 1);
                set.spawn(async {});
                assert_eq!(set.len(), 2);
            }
        });
    });
}

#[test]
fn join_next_returns_results_in_completion_order() {
    watchdog(|| {
        let rt = current_thread();
        rt.block_on(async {
            const N: usize = 8;
            let order = [5, 2, 7, 0, 3, 6, 1, 4];
            let finished = Arc::new(Mutex::new(Vec::new()));
            let mut senders = Vec::new();
            let mut set = JoinSet::new();
            for i in 0..N {
                let (tx, rx) = async_channel::bounded::<()>(1);
                senders.push(tx);
                let finished = finished.clone();
                set.spawn(async move {
                    rx.recv().await.unwrap();
                    finished.lock().unwrap().push(i);
                    i
                });
            }
            // Everything parked: nothing has finished.
            ebbtide::yield_now().await;
            assert!(set.try_join_next().is_none());
            // Release them one by one, in a shuffled order, each finishing
            // before the next is released, and join none until all have.
            for (n, &i) in order.iter().enumerate() {
                senders[i].send(()).await.unwrap();
                while finished.lock().unwrap().len() <= n {
                    ebbtide::yield_now().await;
                }
            }
            let mut joined = Vec::new();
            while let Some(result) = set.join_next().await {
                joined.push(result.unwrap());
            }
            assert_eq!(
                *finished.lock().unwrap(),
                order,
                "tasks finished in release order"
            );
            assert_eq!(joined, order, "joined in the order they finished");
        });
    });
}

#[test]
fn dropping_a_joinset_cancels_and_drops_every_task() {
    watchdog(|| {
        for (name, rt) in runtimes() {
            const N: usize = 64;
            let drops = DropCount::default();
            rt.block_on(async {
                let mut set = JoinSet::new();
                for _ in 0..N {
                    let guard = drops.guard();
                    set.spawn(async move {
                        let _guard = guard;
                        // Wakes itself forever until the set is dropped: only
                        // the abort can end it.
                        loop {
                            ebbtide::time::sleep(Duration::from_millis(1)).await;
                        }
                    });
                }
                ebbtide::yield_now().await;
                drop(set);
            });
            wait_until(&rt, || drops.get() == N);
            assert_eq!(drops.get(), N, "{name}: every future dropped once");
            let report = rt.shutdown(Duration::from_secs(5));
            assert_eq!(
                report.cancelled, 0,
                "{name}: the set left nothing to cancel: {report}"
            );
        }
    });
}

#[test]
fn shutdown_resolves_after_every_future_is_dropped() {
    watchdog(|| {
        for (name, rt) in runtimes() {
            const N: usize = 32;
            let drops = DropCount::default();
            let rt_handle = rt.handle();
            let seen = rt.block_on(async {
                let mut set = JoinSet::new();
                for _ in 0..N {
                    // A slow `Drop` on a worker: an unacknowledged shutdown
                    // would return before these finish.
                    struct SlowDrop {
                        _count: DropGuard,
                    }
                    impl Drop for SlowDrop {
                        fn drop(&mut self) {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                    }
                    let slow = SlowDrop {
                        _count: drops.guard(),
                    };
                    set.spawn_on(
                        async move {
                            let _slow = slow;
                            std::future::pending::<()>().await
                        },
                        rt_handle,
                    );
                }
                // Tasks that already finished are discarded too.
                set.spawn_on(async {}, rt_handle);
                ebbtide::yield_now().await;
                set.shutdown().await;
                assert!(set.is_empty(), "{name}");
                drops.get()
            });
            assert_eq!(seen, N, "{name}: shutdown resolved before every drop ran");
        }
    });
}

#[test]
fn abort_all_yields_cancelled_errors() {
    watchdog(|| {
        for (name, rt) in runtimes() {
            let drops = DropCount::default();
            let done = Arc::new(AtomicUsize::new(0));
            let (finished, cancelled) = rt.block_on(async {
                let mut set = JoinSet::new();
                for _ in 0..5 {
                    set.spawn(pending_counted(&drops));
                }
                for _ in 0..5 {
                    let done = done.clone();
                    set.spawn(async move {
                        done.fetch_add(1, Ordering::SeqCst);
                    });
                }
                while done.load(Ordering::SeqCst) < 5 {
                    ebbtide::yield_now().await;
                }
                set.abort_all();
                assert_eq!(set.len(), 10, "{name}: aborted tasks stay until joined");
                let (mut finished, mut cancelled) = (0, 0);
                while let Some(result) = set.join_next().await {
                    match result {
                        Ok(()) => finished += 1,
                        Err(e) => {
                            assert!(e.is_cancelled(), "{name}: {e:?}");
                            cancelled += 1;
                        }
                    }
                }
                assert!(set.is_empty());
                (finished, cancelled)
            });
            // A finished task may still be joined as finished or cancelled
            // (tokio: either); the pending ones are always cancelled.
            assert_eq!(finished + cancelled, 10, "{name}");
            assert!(cancelled >= 5, "{name}: {cancelled} cancelled");
            assert_eq!(drops.get(), 5, "{name}: the pending futures were dropped");
        }
    });
}

#[test]
fn a_panicking_task_comes_out_as_a_panic_error() {
    quiet_expected_panics();
    watchdog(|| {
        for (name, rt) in runtimes() {
            rt.block_on(async {
                let mut set = JoinSet::new();
                set.spawn(async { panic!("deliberate: task panics") });
                set.spawn(async { 1 });
                let mut ok = 0;
                let mut panics = 0;
                while let Some(result) = set.join_next().await {
                    match result {
                        Ok(v) => ok += v,
                        Err(e) => {
                            assert!(e.is_panic(), "{name}: {e:?}");
                            let payload = e.into_panic();
                            assert_eq!(common::panic_message(&*payload), "deliberate: task panics");
                            panics += 1;
                        }
                    }
                }
                assert_eq!((ok, panics), (1, 1), "{name}");
            });
        }
    });
}

#[test]
fn join_all_returns_every_output_and_resumes_a_panic() {
    quiet_expected_panics();
    watchdog(|| {
        let rt = workers(2);
        let mut out = rt.block_on(async {
            let mut set = JoinSet::new();
            for i in 0..5 {
                set.spawn(async move { i });
            }
            set.join_all().await
        });
        out.sort_unstable();
        assert_eq!(out, [0, 1, 2, 3, 4]);

        // One task panics first; the other, still pending, is cancelled
        // when `join_all` unwinds with the panic.
        let drops = DropCount::default();
        let mut set = JoinSet::new();
        set.spawn_on(pending_counted(&drops), rt.handle());
        set.spawn_on(
            async { panic!("deliberate: join_all resumes this") },
            rt.handle(),
        );
        let err = rt.block_on(rt.spawn(set.join_all())).unwrap_err();
        assert!(err.is_panic());
        assert_eq!(
            common::panic_message(&*err.into_panic()),
            "deliberate: join_all resumes this"
        );
        wait_until(&rt, || drops.get() == 1);
    });
}

#[test]
fn detach_all_lets_tasks_finish() {
    watchdog(|| {
        for (name, rt) in runtimes() {
            const N: usize = 10;
            let done = Arc::new(AtomicUsize::new(0));
            let (tx, rx) = async_channel::unbounded::<()>();
            rt.block_on(async {
                let mut set = JoinSet::new();
                for _ in 0..N {
                    let (done, rx) = (done.clone(), rx.clone());
                    set.spawn(async move {
                        rx.recv().await.unwrap();
                        done.fetch_add(1, Ordering::SeqCst);
                    });
                }
                set.detach_all();
                assert_eq!(set.len(), 0, "{name}");
                assert!(set.join_next().await.is_none(), "{name}");
                drop(set); // dropping an emptied set cancels nothing
            });
            for _ in 0..N {
                tx.send_blocking(()).unwrap();
            }
            wait_until(&rt, || done.load(Ordering::SeqCst) == N);
        }
    });
}

#[test]
fn try_join_next_returns_finished_tasks_without_waiting() {
    watchdog(|| {
        let rt = current_thread();
        rt.block_on(async {
            const N: usize = 1_000;
            let (tx, rx) = async_channel::unbounded::<()>();
            let mut set = JoinSet::new();
            for _ in 0..N {
                let rx = rx.clone();
                set.spawn(async move { rx.recv().await.is_err() });
            }
            drop(rx);
            assert!(set.try_join_next().is_none(), "nothing finished yet");
            tx.close();
            // Current thread: once every receiver is gone, every task has
            // returned.
            while tx.receiver_count() > 0 {
                ebbtide::yield_now().await;
            }
            let mut count = 0;
            while let Some(result) = set.try_join_next() {
                assert!(result.unwrap(), "the channel was closed");
                count += 1;
            }
            assert_eq!(count, N);
            assert!(set.is_empty());
        });
    });
}

#[test]
fn join_next_is_cancel_safe() {
    watchdog(|| {
        let rt = current_thread();
        rt.block_on(async {
            let (tx, rx) = async_channel::bounded::<u32>(1);
            let mut set = JoinSet::new();
            set.spawn(async move { rx.recv().await.unwrap() });
            // Start a join, then drop it before it resolves.
            let mut join = Box::pin(set.join_next());
            assert!(futures_lite::future::poll_once(&mut join).await.is_none());
            drop(join);
            tx.send(9).await.unwrap();
            assert_eq!(set.join_next().await.unwrap().unwrap(), 9);
        });
    });
}

#[test]
fn joining_100_000_tasks_one_at_a_time_never_scans_the_set() {
    // With a scan of every handle per join this is 5 * 10^9 polls: the
    // watchdog would fire. The exact count (at most two polls per task) is
    // checked by the unit test `task::join_set::tests`, which can see it.
    watchdog(|| {
        const N: usize = 100_000;
        let rt = current_thread();
        let polls = Arc::new(AtomicUsize::new(0));
        let seen = rt.block_on(async {
            let (tx, rx) = async_channel::unbounded::<()>();
            let mut set = JoinSet::new();
            for i in 0..N {
                let (rx, polls) = (rx.clone(), polls.clone());
                set.spawn(async move {
                    polls.fetch_add(1, Ordering::Relaxed);
                    rx.recv().await.unwrap();
                    i
                });
            }
            let mut seen = HashSet::with_capacity(N);
            for _ in 0..N {
                tx.send(()).await.unwrap();
                let i = set.join_next().await.unwrap().unwrap();
                assert!(seen.insert(i), "task {i} joined twice");
            }
            assert!(set.join_next().await.is_none());
            seen.len()
        });
        assert_eq!(seen, N);
        // Each task body ran once before parking: no task was polled
        // by anyone but its worker.
        assert_eq!(polls.load(Ordering::Relaxed), N);
    });
}

#[test]
fn a_task_finishing_on_another_thread_wakes_the_waiting_set() {
    watchdog(|| {
        for (name, rt) in runtimes() {
            rt.block_on(async {
                let mut set = JoinSet::new();
                for i in 0..16u32 {
                    let (tx, rx) = async_channel::bounded::<u32>(1);
                    // A plain thread completes the task's wait.
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(1));
                        tx.send_blocking(i).unwrap();
                    });
                    set.spawn(async move { rx.recv().await.unwrap() });
                }
                let mut sum = 0;
                while let Some(result) = set.join_next().await {
                    sum += result.unwrap();
                }
                assert_eq!(sum, (0..16).sum::<u32>(), "{name}");
            });
        }
    });
}

#[test]
fn spawn_local_joins_non_send_tasks_on_a_current_thread_runtime() {
    watchdog(|| {
        let rt = current_thread();
        rt.block_on(async {
            const N: usize = 32;
            let mut set = JoinSet::new();
            for i in 0..N {
                let rc = Rc::new(i);
                set.spawn_local(async move {
                    ebbtide::yield_now().await;
                    *rc
                });
            }
            let mut seen = [false; N];
            while let Some(result) = set.join_next().await {
                seen[result.unwrap()] = true;
            }
            assert!(seen.iter().all(|&s| s));

            // Dropping the set cancels pending local tasks too.
            let drops = Rc::new(std::cell::Cell::new(0));
            struct LocalDrop(Rc<std::cell::Cell<usize>>);
            impl Drop for LocalDrop {
                fn drop(&mut self) {
                    self.0.set(self.0.get() + 1);
                }
            }
            let mut set = JoinSet::new();
            for _ in 0..N {
                let guard = LocalDrop(drops.clone());
                set.spawn_local(async move {
                    let _guard = guard;
                    std::future::pending::<()>().await
                });
            }
            ebbtide::yield_now().await;
            drop(set);
            while drops.get() < N {
                ebbtide::yield_now().await;
            }
        });
    });
}

#[test]
fn spawn_blocking_jobs_are_joined_and_shutdown_waits_for_a_running_one() {
    watchdog(|| {
        let rt = workers(2);
        rt.block_on(async {
            let mut set = JoinSet::new();
            for i in 0..8u64 {
                set.spawn_blocking(move || i * 2);
            }
            let mut sum = 0;
            while let Some(result) = set.join_next().await {
                sum += result.unwrap();
            }
            assert_eq!(sum, 56);

            // A job that has started cannot be interrupted: shutdown waits
            // until it returns.
            let (started_tx, started_rx) = mpsc::channel();
            let returned = Arc::new(AtomicBool::new(false));
            let flag = returned.clone();
            set.spawn_blocking(move || {
                started_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(20));
                flag.store(true, Ordering::SeqCst);
                0
            });
            while started_rx.try_recv().is_err() {
                ebbtide::yield_now().await;
            }
            set.shutdown().await;
            assert!(
                returned.load(Ordering::SeqCst),
                "shutdown resolved while the job ran"
            );
        });
    });
}

#[test]
fn a_joinset_moves_between_workers_and_joins_everything() {
    watchdog(|| {
        let rt = workers(4);
        const N: usize = 2_000;
        let (set_tx, set_rx) = async_channel::bounded::<(JoinSet<usize>, HashSet<usize>)>(1);
        // The first owner joins half, yielding (and maybe migrating) between
        // joins, then hands the set to a second task.
        let first = rt.spawn(async move {
            let mut set = JoinSet::new();
            for i in 0..N {
                set.spawn(async move {
                    for _ in 0..(i % 3) {
                        ebbtide::yield_now().await;
                    }
                    i
                });
            }
            let mut seen = HashSet::new();
            for _ in 0..N / 2 {
                seen.insert(set.join_next().await.unwrap().unwrap());
                ebbtide::yield_now().await;
            }
            set_tx.send((set, seen)).await.unwrap();
        });
        let second = rt.spawn(async move {
            let (mut set, mut seen) = set_rx.recv().await.unwrap();
            while let Some(result) = set.join_next().await {
                assert!(seen.insert(result.unwrap()));
            }
            seen.len()
        });
        rt.block_on(first).unwrap();
        assert_eq!(rt.block_on(second).unwrap(), N);
    });
}

#[test]
fn a_joinset_dropped_inside_a_task_during_runtime_shutdown_drops_every_task() {
    watchdog(|| {
        for (name, rt) in runtimes() {
            const N: usize = 50;
            let drops = DropCount::default();
            let owner_ready = Arc::new(AtomicBool::new(false));
            let (ready, count) = (owner_ready.clone(), drops.clone());
            // A task owns a set of never-ending tasks and never finishes:
            // shutdown's cancel step drops it, and with it the set.
            rt.spawn(async move {
                let mut set = JoinSet::new();
                for _ in 0..N {
                    set.spawn(pending_counted(&count));
                }
                let _guard = count.guard();
                ready.store(true, Ordering::SeqCst);
                set.join_next().await;
                unreachable!("no task of the set finishes");
            })
            .detach();
            wait_until(&rt, || owner_ready.load(Ordering::SeqCst));
            let report = rt.shutdown(Duration::from_millis(200));
            assert_eq!(drops.get(), N + 1, "{name}: {report}");
            assert_eq!(report.ops_leaked, 0, "{name}: {report}");
            assert_eq!(report.workers_leaked, 0, "{name}: {report}");
        }
    });
}

#[test]
fn a_task_whose_runtime_is_gone_comes_out_cancelled() {
    watchdog(|| {
        let drops = DropCount::default();
        let mut set = JoinSet::new();
        {
            let rt = Runtime::builder()
                .current_thread()
                .drain_timeout(Duration::ZERO)
                .build()
                .unwrap();
            set.spawn_on(pending_counted(&drops), rt.handle());
            drop(rt);
        }
        assert_eq!(drops.get(), 1, "the runtime's teardown dropped the future");
        let err = current_thread()
            .block_on(set.join_next())
            .unwrap()
            .unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
    });
}

#[test]
fn join_next_spends_the_cooperative_budget() {
    watchdog(|| {
        let rt = current_thread();
        rt.block_on(async {
            const N: usize = 1_000;
            let done = Arc::new(AtomicUsize::new(0));
            let mut set = JoinSet::new();
            for _ in 0..N {
                let done = done.clone();
                set.spawn(async move {
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
            while done.load(Ordering::SeqCst) < N {
                ebbtide::yield_now().await;
            }
            // Every task has finished; joining them all in one poll would
            // never yield. The budget makes `join_next` pend now and then.
            let mut joined = 0;
            let mut yielded = 0;
            std::future::poll_fn(|cx| loop {
                match set.poll_join_next(cx) {
                    Poll::Ready(Some(result)) => {
                        result.unwrap();
                        joined += 1;
                    }
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => {
                        yielded += 1;
                        return Poll::Pending;
                    }
                }
            })
            .await;
            assert_eq!(joined, N);
            assert!(yielded >= 1, "joined {N} finished tasks without yielding");
        });
    });
}

#[test]
fn collect_and_extend_spawn_every_future() {
    watchdog(|| {
        let rt = workers(2);
        rt.block_on(async {
            let mut set: JoinSet<u32> = (0..5).map(|i| async move { i }).collect();
            set.extend((5..10).map(|i| async move { i }));
            assert_eq!(set.len(), 10);
            let mut out = set.join_all().await;
            out.sort_unstable();
            assert_eq!(out, (0..10).collect::<Vec<_>>());
        });
    });
}

#[test]
fn debug_shows_the_number_of_tasks() {
    watchdog(|| {
        let rt = current_thread();
        rt.block_on(async {
            let mut set = JoinSet::new();
            set.spawn(async {});
            let text = format!("{set:?}");
            assert!(text.starts_with("JoinSet { len: 1"), "{text}");
            set.shutdown().await;
        });
    });
}

#[test]
fn joining_while_tasks_finish_on_other_workers_loses_no_task() {
    // Tasks finish on other workers while `join_next` polls their handles
    // for the first time (step 3): a wake landing during that poll must
    // queue the entry again, or `join_next` would wait forever.
    watchdog(|| {
        let rt = workers(4);
        rt.block_on(async {
            for round in 0..300 {
                let mut set = JoinSet::new();
                for i in 0..32usize {
                    set.spawn(async move {
                        if i % 2 == 0 {
                            ebbtide::yield_now().await;
                        }
                        i
                    });
                }
                let mut sum = 0;
                while let Some(result) = set.join_next().await {
                    sum += result.unwrap();
                }
                assert_eq!(sum, (0..32).sum::<usize>(), "round {round}");
            }
        });
    });
}

#[test]
fn a_task_spawned_into_a_set_is_reported_at_the_callers_location() {
    watchdog(|| {
        let rt = workers(1);
        let mut set = JoinSet::new();
        let line = line!() + 1;
        set.spawn_on(std::future::pending::<()>(), rt.handle());
        let mut lines_expected = vec![line];
        {
            let _current = rt.handle().enter();
            let line_extend = line!() + 1;
            set.extend([std::future::pending::<()>()]);
            lines_expected.push(line_extend);
        }
        // Keep the tasks alive past the set so shutdown has to cancel them.
        set.detach_all();
        let report = rt.shutdown(Duration::from_millis(50));
        let mut lines: Vec<u32> = report
            .cancelled_sites
            .iter()
            .map(|s| {
                assert_eq!(s.location.file(), file!(), "{report}");
                s.location.line()
            })
            .collect();
        lines.sort_unstable();
        assert_eq!(lines, lines_expected, "{report}");
    });
}
