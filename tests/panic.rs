//! Panics in user code — in `poll`, in the future's `Drop`, in the output's
//! `Drop` — are caught: the worker survives and keeps running tasks, the
//! `JoinHandle` reports the panic with its payload, and the metrics count it.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::thread::ThreadId;
use std::time::Duration;

use common::{panic_message, quiet_expected_panics, watchdog, Flavour};
use ebbtide::runtime::Runtime;

/// The flavours on which one thread runs every task (when awaited with
/// [`Flavour::join`]), so "the worker survived" shows as "the same thread
/// still runs tasks".
fn single_runners() -> Vec<Flavour> {
    vec![Flavour::current_thread(), Flavour::workers(1)]
}

/// The thread that runs this runtime's tasks.
fn runner_thread(f: &Flavour) -> ThreadId {
    f.run(async {}).1
}

/// Proof that the runner thread still runs tasks: 1,000 complete, with the
/// right results, and the thread is the one from before.
fn assert_next_1000_tasks_run_on(f: &Flavour, runner: ThreadId) {
    let (sum, on) = f.run(async {
        let hs: Vec<_> = (0..1_000u64)
            .map(|i| {
                ebbtide::spawn(async move {
                    ebbtide::yield_now().await;
                    i
                })
            })
            .collect();
        let mut sum = 0;
        for (i, h) in hs.into_iter().enumerate() {
            let v = h.await.expect("a task after the panic completes");
            assert_eq!(v, i as u64);
            sum += v;
        }
        sum
    });
    assert_eq!(sum, 999 * 1_000 / 2, "{}", f.name);
    assert_eq!(on, runner, "{}: the runner thread was replaced", f.name);
}

/// Panics when dropped (after setting its flag, so the drop is observable).
struct PanicOnDrop(&'static str, Arc<AtomicBool>);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        self.1.store(true, Ordering::SeqCst);
        panic!("{}", self.0);
    }
}

fn panic_on_drop(msg: &'static str) -> (Arc<AtomicBool>, PanicOnDrop) {
    let flag = Arc::new(AtomicBool::new(false));
    (flag.clone(), PanicOnDrop(msg, flag))
}

#[test]
fn a_panic_in_poll_is_reported_with_its_payload_and_the_worker_survives() {
    quiet_expected_panics();
    watchdog(|| {
        for r in single_runners() {
            let runner = runner_thread(&r);
            let err = r
                .join(r.rt.spawn(async {
                    if true {
                        panic!("deliberate: in poll");
                    }
                }))
                .expect_err("the task panicked");
            assert!(err.is_panic() && !err.is_cancelled(), "{}: {err:?}", r.name);
            let payload = err.into_panic();
            assert_eq!(
                payload.downcast_ref::<&str>(),
                Some(&"deliberate: in poll"),
                "{}",
                r.name
            );
            assert_next_1000_tasks_run_on(&r, runner);
            assert_eq!(r.rt.metrics().panicked_tasks, 1, "{}", r.name);
        }
    });
}

#[test]
fn a_formatted_panic_payload_is_a_string() {
    quiet_expected_panics();
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            let n = 7;
            let err = rt
                .block_on(rt.spawn(async move {
                    if n > 0 {
                        panic!("deliberate: formatted {n}");
                    }
                }))
                .unwrap_err();
            let payload = err.into_panic();
            assert_eq!(
                payload.downcast_ref::<String>().map(String::as_str),
                Some("deliberate: formatted 7"),
                "{name}"
            );
        }
    });
}

#[test]
fn panics_in_many_tasks_are_all_reported_and_counted() {
    quiet_expected_panics();
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            let results = rt.block_on(async {
                let hs: Vec<_> = (0..200u32)
                    .map(|i| {
                        ebbtide::spawn(async move {
                            ebbtide::yield_now().await;
                            if i % 2 == 0 {
                                panic!("deliberate: task {i}");
                            }
                            i
                        })
                    })
                    .collect();
                let mut out = Vec::new();
                for h in hs {
                    out.push(h.await);
                }
                out
            });
            for (i, r) in results.into_iter().enumerate() {
                match r {
                    Ok(v) => assert!(i % 2 == 1 && v == i as u32, "{name}: task {i}"),
                    Err(e) => {
                        assert!(i % 2 == 0, "{name}: task {i} panicked");
                        assert_eq!(
                            panic_message(&*e.into_panic()),
                            format!("deliberate: task {i}"),
                            "{name}"
                        );
                    }
                }
            }
            let m = rt.metrics();
            assert_eq!(m.panicked_tasks, 100, "{name}: {m}");
            assert_eq!(m.alive_tasks, 0, "{name}: {m}");
        }
    });
}

/// Completes on its second poll; its `PanicOnDrop` field goes off when the
/// runtime drops the completed future. (In an `async` block the local would
/// be dropped inside `poll`, which makes it a panic in `poll`.)
struct ReadyWithBomb<T> {
    _bomb: PanicOnDrop,
    output: Option<T>,
    polled: bool,
}

impl<T: Unpin> Future for ReadyWithBomb<T> {
    type Output = T;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<T> {
        if !self.polled {
            self.polled = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(self.output.take().expect("polled after completion"))
    }
}

#[test]
fn a_panic_in_the_futures_drop_after_completion_is_reported_as_is_panic() {
    quiet_expected_panics();
    watchdog(|| {
        for r in single_runners() {
            let name = r.name;
            let runner = runner_thread(&r);
            let (dropped, bomb) = panic_on_drop("deliberate: future drop");
            let (output_dropped, output_guard) = common::drop_flag();
            let err = r
                .join(r.rt.spawn(ReadyWithBomb {
                    _bomb: bomb,
                    output: Some(output_guard), // lost to the drop panic
                    polled: false,
                }))
                .expect_err("the drop panic is the task's result");
            assert!(dropped.load(Ordering::SeqCst), "{name}");
            assert!(err.is_panic(), "{name}: {err:?}");
            assert_eq!(
                panic_message(&*err.into_panic()),
                "deliberate: future drop",
                "{name}"
            );
            assert!(
                output_dropped.load(Ordering::SeqCst),
                "{name}: the output the panic replaced was dropped"
            );
            assert_next_1000_tasks_run_on(&r, runner);
            let m = r.rt.metrics();
            assert_eq!(m.panicked_tasks, 1, "{name}: {m}");
            assert_eq!(m.alive_tasks, 0, "{name}: {m}");
        }
    });
}

/// Panics in `poll`; holds a [`PanicOnDrop`] that the runtime drops later.
struct PanicInPoll(#[allow(dead_code)] PanicOnDrop);

impl Future for PanicInPoll {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<()> {
        panic!("deliberate: poll with a bomb");
    }
}

#[test]
fn a_panic_in_both_poll_and_the_futures_drop_reports_the_poll_panic() {
    quiet_expected_panics();
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            let (dropped, bomb) = panic_on_drop("deliberate: drop after poll panic");
            // A hand-written future: its field is dropped by the runtime
            // after the poll panic has been caught (an `async` block would
            // drop its locals while unwinding, a double panic that aborts).
            let err = rt.block_on(rt.spawn(PanicInPoll(bomb))).unwrap_err();
            assert!(dropped.load(Ordering::SeqCst), "{name}");
            assert_eq!(
                panic_message(&*err.into_panic()),
                "deliberate: poll with a bomb",
                "{name}"
            );
            assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5, "{name}");
        }
    });
}

#[test]
fn a_panic_in_an_aborted_futures_drop_is_reported_to_its_handle_as_is_panic() {
    quiet_expected_panics();
    watchdog(|| {
        for r in single_runners() {
            let name = r.name;
            let runner = runner_thread(&r);
            let (dropped, bomb) = panic_on_drop("deliberate: cancelled future drop");
            let (started_tx, started_rx) = mpsc::channel();
            let h = r.rt.spawn(async move {
                let _bomb = bomb;
                started_tx.send(()).unwrap();
                std::future::pending::<()>().await
            });
            // Aborted while pending (after its first poll), so the drop runs
            // on the runner thread.
            r.wait_until(|| started_rx.try_recv().is_ok());
            h.abort();
            let err = r.join(h).unwrap_err();
            assert!(
                err.is_panic(),
                "{name}: the Drop panic reaches the handle: {err:?}"
            );
            assert_eq!(
                panic_message(&*err.into_panic()),
                "deliberate: cancelled future drop",
                "{name}"
            );
            assert!(dropped.load(Ordering::SeqCst), "{name}");
            assert_next_1000_tasks_run_on(&r, runner);
            let m = r.rt.metrics();
            assert_eq!(m.drop_panics, 0, "{name}: reported, not counted apart: {m}");
            assert_eq!(m.panicked_tasks, 1, "{name}: {m}");
            assert_eq!(m.alive_tasks, 0, "{name}: {m}");
        }
    });
}

#[test]
fn a_panic_in_a_detached_tasks_output_drop_does_not_kill_the_worker() {
    quiet_expected_panics();
    watchdog(|| {
        for r in single_runners() {
            let name = r.name;
            let runner = runner_thread(&r);
            // Detached before it completes: the runtime drops the output
            // itself, on the runner thread.
            let (dropped, bomb) = panic_on_drop("deliberate: detached output drop");
            r.rt.spawn(async move {
                ebbtide::yield_now().await;
                bomb
            })
            .detach();
            r.wait_until(|| dropped.load(Ordering::SeqCst));
            assert_next_1000_tasks_run_on(&r, runner);
            let m = r.rt.metrics();
            assert_eq!(
                m.panicked_tasks, 0,
                "{name}: the task itself completed: {m}"
            );
            assert_eq!(m.alive_tasks, 0, "{name}: {m}");
        }
    });
}

#[test]
fn a_panic_in_a_finished_tasks_output_drop_is_swallowed_when_its_handle_drops() {
    quiet_expected_panics();
    watchdog(|| {
        for Flavour { name, rt, .. } in common::flavours() {
            let (dropped, bomb) = panic_on_drop("deliberate: output dropped with its handle");
            let h = rt.spawn(async move { bomb });
            rt.block_on(async {
                while !h.is_finished() {
                    ebbtide::yield_now().await;
                }
            });
            assert!(
                !dropped.load(Ordering::SeqCst),
                "{name}: output kept for the handle"
            );
            drop(h); // drops the unclaimed output here; its panic is caught
            assert!(dropped.load(Ordering::SeqCst), "{name}");
            assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3, "{name}");
        }
    });
}

#[test]
fn a_panic_in_an_awaited_outputs_drop_belongs_to_the_awaiter() {
    quiet_expected_panics();
    watchdog(|| {
        for r in single_runners() {
            let name = r.name;
            let runner = runner_thread(&r);
            let (dropped, bomb) = panic_on_drop("deliberate: awaited output drop");
            let inner = r.rt.spawn(async move { bomb });
            // The awaiter receives the output intact; dropping it panics in
            // the awaiter, which the awaiter's own handle reports.
            let outer = r.rt.spawn(async move {
                let out = inner.await;
                assert!(out.is_ok(), "the inner task completed normally");
                drop(out);
                unreachable!("dropping the output panics");
            });
            let err = r.join(outer).unwrap_err();
            assert!(dropped.load(Ordering::SeqCst), "{name}");
            assert_eq!(
                panic_message(&*err.into_panic()),
                "deliberate: awaited output drop",
                "{name}"
            );
            assert_next_1000_tasks_run_on(&r, runner);
            assert_eq!(r.rt.metrics().panicked_tasks, 1, "{name}: the awaiter only");
        }
    });
}

#[test]
fn a_panicking_blocking_job_is_reported_and_the_pool_keeps_working() {
    quiet_expected_panics();
    watchdog(|| {
        let rt = Runtime::builder()
            .worker_threads(1)
            .max_blocking_threads(1)
            .build()
            .unwrap();
        rt.block_on(async {
            let err = ebbtide::spawn_blocking(|| {
                if true {
                    panic!("deliberate: in a blocking job");
                }
            })
            .await
            .unwrap_err();
            assert_eq!(
                panic_message(&*err.into_panic()),
                "deliberate: in a blocking job"
            );
            // The pool's one thread survived.
            for i in 0..100u32 {
                assert_eq!(ebbtide::spawn_blocking(move || i).await.unwrap(), i);
            }
        });
        assert_eq!(rt.metrics().panicked_tasks, 1);
    });
}

/// A waker whose `wake` panics, counting its calls.
struct PanickyWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for PanickyWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("deliberate: a waker that panics");
    }
}

fn panicky_waker() -> (Arc<PanickyWaker>, std::task::Waker) {
    let w = Arc::new(PanickyWaker(std::sync::atomic::AtomicUsize::new(0)));
    (w.clone(), std::task::Waker::from(w))
}

/// Item (a) of the waker rule: the reactor calls a panicking waker when a
/// timer fires; the worker that drives it survives, and with a single
/// worker the runtime still runs tasks afterwards.
#[test]
fn a_panicking_waker_called_by_a_timer_does_not_kill_the_worker() {
    quiet_expected_panics();
    watchdog(|| {
        for r in single_runners() {
            let name = r.name;
            let runner = runner_thread(&r);
            let before = r.rt.metrics().waker_panics;
            let (calls, waker) = panicky_waker();
            // Poll a sleep once with the panicking waker, inside the runtime
            // (so it registers there), then let the timer fire.
            r.rt.block_on(async move {
                let mut sleep = Box::pin(ebbtide::time::sleep(Duration::from_millis(5)));
                let mut cx = std::task::Context::from_waker(&waker);
                assert!(sleep.as_mut().poll(&mut cx).is_pending());
                // Keep the timer registered until it fired.
                let start = std::time::Instant::now();
                while calls_of(&calls) == 0 && start.elapsed() < Duration::from_secs(10) {
                    ebbtide::time::sleep(Duration::from_millis(2)).await;
                }
                drop(sleep);
            });
            assert_eq!(r.join(r.rt.spawn(async { 1 })).unwrap(), 1, "{name}");
            assert_next_1000_tasks_run_on(&r, runner);
            assert!(r.rt.metrics().waker_panics > before, "{name}");
        }
    });
}

fn calls_of(w: &PanickyWaker) -> usize {
    w.0.load(Ordering::SeqCst)
}

/// Item (b): a `JoinHandle` polled once with a panicking waker. When the
/// task finishes, async-task wakes the awaiter inside its abort-on-panic
/// guard; the process must survive (the handle hands async-task an
/// isolating waker).
#[test]
fn a_join_handle_polled_with_a_panicking_waker_does_not_abort_the_process() {
    quiet_expected_panics();
    watchdog(|| {
        for r in single_runners() {
            let name = r.name;
            let runner = runner_thread(&r);
            let (release_tx, release_rx) = mpsc::channel::<()>();
            let release_rx = std::sync::Mutex::new(release_rx);
            let mut h = Box::pin(r.rt.spawn(async move {
                // Finishes only after the handle was polled once.
                loop {
                    if release_rx.lock().unwrap().try_recv().is_ok() {
                        return 7;
                    }
                    ebbtide::time::sleep(Duration::from_millis(1)).await;
                }
            }));
            let (calls, waker) = panicky_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(h.as_mut().poll(&mut cx).is_pending(), "{name}");
            release_tx.send(()).unwrap();
            let start = std::time::Instant::now();
            while calls_of(&calls) == 0 && start.elapsed() < Duration::from_secs(10) {
                r.rt.block_on(ebbtide::time::sleep(Duration::from_millis(1)));
            }
            assert_eq!(calls_of(&calls), 1, "{name}: the awaiter was woken");
            assert_eq!(r.rt.block_on(h).unwrap(), 7, "{name}");
            assert_next_1000_tasks_run_on(&r, runner);
        }
    });
}
