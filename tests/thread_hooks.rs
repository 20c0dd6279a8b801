//! `Builder::on_thread_start` / `on_thread_stop`: run once on every worker
//! and blocking-pool thread, on that thread, before its first task and
//! after its last; a panicking hook is counted and changes nothing else.

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use ebbtide::runtime::{Builder, Handle, Runtime};

use common::watchdog;

/// What the hooks saw: the name of each thread they ran on, and whether
/// the runtime was current there.
#[derive(Default)]
struct Seen {
    started: Mutex<Vec<(String, bool)>>,
    stopped: Mutex<Vec<(String, bool)>>,
}

impl Seen {
    fn record(list: &Mutex<Vec<(String, bool)>>) {
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        let current = Handle::try_current().is_ok();
        list.lock().unwrap().push((name, current));
    }

    fn started(&self) -> Vec<(String, bool)> {
        sorted(self.started.lock().unwrap().clone())
    }

    fn stopped(&self) -> Vec<(String, bool)> {
        sorted(self.stopped.lock().unwrap().clone())
    }
}

fn sorted(mut v: Vec<(String, bool)>) -> Vec<(String, bool)> {
    v.sort();
    v
}

/// A builder whose hooks record into `seen`.
fn recording(seen: &Arc<Seen>) -> Builder {
    let (on_start, on_stop) = (seen.clone(), seen.clone());
    let mut b = Runtime::builder();
    b.thread_name("hooked")
        .on_thread_start(move || Seen::record(&on_start.started))
        .on_thread_stop(move || Seen::record(&on_stop.stopped));
    b
}

/// Runs `n` blocking jobs at once (each waits for the others), so the pool
/// starts `n` threads.
fn start_blocking_threads(rt: &Runtime, n: usize) {
    let barrier = Arc::new(Barrier::new(n));
    let jobs: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            rt.spawn_blocking(move || {
                barrier.wait();
            })
        })
        .collect();
    for job in jobs {
        rt.block_on(job).unwrap();
    }
}

/// A task that moves on (yields) until a worker thread polls it, then
/// returns what `probe` says there (the thread in `block_on` also runs
/// queued tasks while a worker is idle).
async fn on_a_worker<T>(probe: impl Fn() -> T) -> T {
    while !std::thread::current()
        .name()
        .is_some_and(|n| n.contains("-worker-"))
    {
        ebbtide::yield_now().await;
    }
    probe()
}

fn names(prefix: &str, workers: usize, blocking: usize) -> Vec<(String, bool)> {
    let mut v: Vec<_> = (0..workers)
        .map(|i| (format!("{prefix}-worker-{i}"), true))
        .chain((0..blocking).map(|_| (format!("{prefix}-blocking"), true)))
        .collect();
    v.sort();
    v
}

#[test]
fn every_worker_and_blocking_thread_runs_each_hook_once_on_itself_with_the_runtime_current() {
    watchdog(|| {
        let seen = Arc::new(Seen::default());
        let rt = recording(&seen).worker_threads(2).build().unwrap();
        start_blocking_threads(&rt, 3);
        assert_eq!(rt.metrics().blocking_threads, 3);
        let report = rt.shutdown(Duration::from_secs(5));
        assert_eq!((report.workers_leaked, report.blocking_leaked), (0, 0));
        assert_eq!(seen.started(), names("hooked", 2, 3));
        assert_eq!(seen.stopped(), names("hooked", 2, 3));
        assert_eq!(rt.metrics().hook_panics, 0);
    });
}

#[test]
fn a_current_thread_runtime_runs_hooks_on_its_blocking_threads_only() {
    watchdog(|| {
        let seen = Arc::new(Seen::default());
        let rt = recording(&seen).current_thread().build().unwrap();
        rt.block_on(async {
            ebbtide::spawn(async {}).await.unwrap();
            ebbtide::spawn_blocking(|| ()).await.unwrap();
        });
        rt.shutdown(Duration::from_secs(5));
        assert_eq!(seen.started(), names("hooked", 0, 1));
        assert_eq!(seen.stopped(), names("hooked", 0, 1));
    });
}

thread_local! {
    static HOOK_RAN_HERE: Cell<bool> = const { Cell::new(false) };
}

#[test]
fn the_start_hook_runs_before_the_threads_first_task() {
    watchdog(|| {
        let rt = Runtime::builder()
            .worker_threads(1)
            .on_thread_start(|| HOOK_RAN_HERE.with(|h| h.set(true)))
            .build()
            .unwrap();
        let on_worker = rt.spawn(on_a_worker(|| HOOK_RAN_HERE.with(Cell::get)));
        let on_blocking = rt.spawn_blocking(|| HOOK_RAN_HERE.with(Cell::get));
        assert!(
            rt.block_on(on_worker).unwrap(),
            "the worker's start hook ran first"
        );
        assert!(
            rt.block_on(on_blocking).unwrap(),
            "the blocking thread's start hook ran first"
        );
        assert!(!HOOK_RAN_HERE.with(Cell::get), "not on the block_on thread");
    });
}

#[test]
fn a_panicking_start_hook_is_counted_and_its_thread_still_runs_tasks() {
    common::quiet_expected_panics();
    watchdog(|| {
        let stops = Arc::new(AtomicUsize::new(0));
        let counted = stops.clone();
        let rt = Runtime::builder()
            .worker_threads(2)
            .on_thread_start(|| panic!("deliberate: a start hook panics"))
            .on_thread_stop(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        let tasks: Vec<_> = (0..20u32)
            .map(|i| rt.spawn(on_a_worker(move || i)))
            .collect();
        let sum: u32 = tasks.into_iter().map(|t| rt.block_on(t).unwrap()).sum();
        assert_eq!(sum, 190, "every task ran on a worker");
        assert_eq!(rt.block_on(rt.spawn_blocking(|| 7)).unwrap(), 7);
        let report = rt.shutdown(Duration::from_secs(5));
        assert_eq!((report.workers_leaked, report.blocking_leaked), (0, 0));
        assert_eq!(
            rt.metrics().hook_panics,
            3,
            "2 workers and 1 blocking thread"
        );
        assert_eq!(stops.load(Ordering::SeqCst), 3, "the stop hooks still ran");
    });
}

#[test]
fn a_panicking_stop_hook_is_counted_and_shutdown_completes() {
    common::quiet_expected_panics();
    watchdog(|| {
        let rt = Runtime::builder()
            .worker_threads(2)
            .on_thread_stop(|| panic!("deliberate: a stop hook panics"))
            .build()
            .unwrap();
        rt.block_on(rt.spawn_blocking(|| ())).unwrap();
        let report = rt.shutdown(Duration::from_secs(5));
        assert_eq!((report.workers_leaked, report.blocking_leaked), (0, 0));
        assert_eq!(rt.metrics().hook_panics, 3);
    });
}

/// tokio's `rt_threaded::drop_threadpool_drops_futures`: a runtime dropped
/// with a task that never completes runs every stop hook and drops the
/// task's future (repeated: the hooks race the drop).
#[test]
fn dropping_the_runtime_runs_every_stop_hook_and_drops_pending_tasks() {
    watchdog(|| {
        for _ in 0..20 {
            drop_with_a_pending_task();
        }
    });
}

fn drop_with_a_pending_task() {
    {
        let starts = Arc::new(AtomicUsize::new(0));
        let stops = Arc::new(AtomicUsize::new(0));
        let (a, b) = (starts.clone(), stops.clone());
        let rt = Runtime::builder()
            .drain_timeout(Duration::ZERO)
            .on_thread_start(move || {
                a.fetch_add(1, Ordering::SeqCst);
            })
            .on_thread_stop(move || {
                b.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        let workers = rt.metrics().workers;
        let (dropped, guard) = common::drop_flag();
        rt.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
        drop(rt);
        assert_eq!(starts.load(Ordering::SeqCst), workers);
        assert_eq!(stops.load(Ordering::SeqCst), workers);
        assert!(dropped.load(Ordering::SeqCst));
    }
}

#[test]
fn an_idle_blocking_thread_runs_its_stop_hook_when_it_exits() {
    watchdog(|| {
        let stops = Arc::new(AtomicUsize::new(0));
        let counted = stops.clone();
        let rt = Runtime::builder()
            .current_thread()
            .blocking_keep_alive(Duration::from_millis(10))
            .on_thread_stop(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        rt.block_on(rt.spawn_blocking(|| ())).unwrap();
        while stops.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(rt.metrics().blocking_threads, 0);
        rt.shutdown(Duration::from_secs(5));
        assert_eq!(stops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn shutdown_returns_after_every_stop_hook_has_returned() {
    watchdog(|| {
        let stops = Arc::new(AtomicUsize::new(0));
        let counted = stops.clone();
        let rt = Runtime::builder()
            .worker_threads(2)
            .on_thread_stop(move || {
                std::thread::sleep(Duration::from_millis(100)); // a slow stop hook
                counted.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        start_blocking_threads(&rt, 2);
        let report = rt.shutdown(Duration::from_secs(10));
        assert_eq!((report.workers_leaked, report.blocking_leaked), (0, 0));
        assert_eq!(
            stops.load(Ordering::SeqCst),
            4,
            "2 workers, 2 blocking threads"
        );
    });
}
