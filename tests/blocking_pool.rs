//! The blocking pool's hand-off (`src/blocking`): queuing a job wakes or
//! starts no thread while enough threads are on their way (spinning,
//! notified, starting), and yet every job that needs a thread of its own
//! gets one at once. Scenarios of tokio's `rt_common` (a job spawning and
//! waiting for a job; bursts of jobs from many tasks).

mod common;

use std::sync::{Arc, Barrier};

use common::{watchdog, workers};

#[test]
fn jobs_that_wait_for_each_other_all_get_a_thread() {
    watchdog(|| {
        let rt = workers(2);
        // Each job returns only when all 16 run at once: a pool that
        // counted a thread as coming for a job when none was would leave
        // one queued and the rest waiting for it forever.
        let barrier = Arc::new(Barrier::new(16));
        let jobs: Vec<_> = (0..16)
            .map(|_| {
                let barrier = barrier.clone();
                rt.spawn_blocking(move || {
                    barrier.wait();
                })
            })
            .collect();
        rt.block_on(async {
            for job in jobs {
                job.await.unwrap();
            }
        });
        assert!(rt.metrics().blocking_threads >= 16);
    });
}

/// tokio's `rt_common::spawn_blocking_from_blocking`: a job that queues a
/// job and waits for it needs a second thread while it holds the first.
#[test]
fn a_job_waiting_for_a_job_it_spawned_gets_a_second_thread() {
    watchdog(|| {
        let rt = workers(2);
        let handle = rt.handle().clone();
        let outer = rt.spawn_blocking(move || {
            let inner = handle.spawn_blocking(|| "inner");
            futures_lite::future::block_on(inner)
        });
        assert_eq!(rt.block_on(outer).unwrap().unwrap(), "inner");
    });
}

/// tokio's `rt_common::spawn_many_from_block_on` with blocking jobs: bursts
/// queued faster than threads start, from many tasks, all run, each once.
#[test]
fn bursts_of_jobs_from_many_tasks_all_run_once() {
    watchdog(|| {
        let rt = workers(2);
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        rt.block_on(async {
            let tasks: Vec<_> = (0..32)
                .map(|t| {
                    let ran = ran.clone();
                    ebbtide::spawn(async move {
                        for round in 0..10 {
                            let jobs: Vec<_> = (0..10)
                                .map(|j| {
                                    let ran = ran.clone();
                                    ebbtide::spawn_blocking(move || {
                                        ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                        t * 1000 + round * 10 + j
                                    })
                                })
                                .collect();
                            for (j, job) in jobs.into_iter().enumerate() {
                                assert_eq!(job.await.unwrap(), t * 1000 + round * 10 + j);
                            }
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        assert_eq!(ran.load(std::sync::atomic::Ordering::Relaxed), 32 * 10 * 10);
    });
}

/// The workload of the file-read benchmark without the file: 256 tasks
/// each queue a short job and wait for it, over and over. About `target`
/// threads (step 3 of `src/blocking`: one per core) take job after job,
/// a few more when preemption makes a thread look blocked on a loaded
/// machine; a pool that wakes or starts a thread for every job no thread
/// is free for at that instant grows to a third of a thread per task or
/// more (90–122 threads here).
#[test]
fn a_stream_of_short_jobs_from_256_tasks_is_run_by_a_few_threads() {
    watchdog(|| {
        let rt = workers(2);
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        rt.block_on(async {
            let tasks: Vec<_> = (0..256)
                .map(|_| {
                    let ran = ran.clone();
                    ebbtide::spawn(async move {
                        for _ in 0..200 {
                            let ran = ran.clone();
                            ebbtide::spawn_blocking(move || {
                                ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            })
                            .await
                            .unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        assert_eq!(ran.load(std::sync::atomic::Ordering::Relaxed), 256 * 200);
        let threads = rt.metrics().blocking_threads;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(
            threads <= cores.max(2) * 16,
            "{threads} pool threads for a stream of short jobs on {cores} cores"
        );
    });
}

/// A gate the blocked jobs of the tests below wait on.
struct Gate(std::sync::Mutex<bool>, std::sync::Condvar);

impl Gate {
    fn wait(&self) {
        let mut open = self.0.lock().unwrap();
        while !*open {
            open = self.1.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.0.lock().unwrap() = true;
        self.1.notify_all();
    }
}

/// More jobs than the pool's `target` block (on a gate opened only at the
/// end); short jobs queued behind them must still run, on threads the
/// monitor starts once it sees the blocked ones make no progress (step 4).
/// Without the monitor they would wait for the gate, which waits for them.
#[test]
fn short_jobs_queued_behind_blocked_threads_still_run() {
    watchdog(|| {
        let rt = workers(2);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let blocked_jobs = cores.max(2) + 4;
        let gate = Arc::new(Gate(Default::default(), Default::default()));
        let blocked: Vec<_> = (0..blocked_jobs)
            .map(|_| {
                let gate = gate.clone();
                rt.spawn_blocking(move || gate.wait())
            })
            .collect();
        let short = rt.block_on(async {
            let mut sum = 0;
            for i in 0..200u64 {
                sum += ebbtide::spawn_blocking(move || i).await.unwrap();
            }
            sum
        });
        assert_eq!(short, (0..200).sum::<u64>());
        gate.open();
        rt.block_on(async {
            for job in blocked {
                job.await.unwrap();
            }
        });
        assert!(rt.metrics().blocking_threads > blocked_jobs);
    });
}

/// The monitor thread (`{name}-blocking-monitor`) starts when jobs wait
/// past `target`, and `shutdown` waits for it to leave: no thread of the
/// runtime outlives it.
#[cfg(target_os = "linux")]
#[test]
fn the_pool_monitor_leaves_at_shutdown() {
    /// Threads of this process whose name (cut to 15 bytes) is `comm`.
    fn threads_named(comm: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|c| c.trim_end() == comm)
            .count()
    }
    watchdog(|| {
        let rt = ebbtide::runtime::Runtime::builder()
            .worker_threads(2)
            .thread_name("m")
            // Longer than the test: an idle thread or monitor that does
            // not leave at shutdown is still there at the end.
            .blocking_keep_alive(std::time::Duration::from_secs(120))
            .build()
            .unwrap();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let gate = Arc::new(Gate(Default::default(), Default::default()));
        let jobs: Vec<_> = (0..cores.max(2) + 2)
            .map(|_| {
                let gate = gate.clone();
                rt.spawn_blocking(move || gate.wait())
            })
            .collect();
        while threads_named("m-blocking-moni") == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        gate.open();
        rt.block_on(async {
            for job in jobs {
                job.await.unwrap();
            }
        });
        // With no job waiting the monitor falls asleep after its last
        // ticks (under 100 ms); shutdown must wake it.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let report = rt.shutdown(std::time::Duration::from_secs(10));
        assert_eq!(report.blocking_leaked, 0, "{report:?}");
        // `shutdown` returns once each thread has left its loop; the OS
        // thread ends a moment later.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while threads_named("m-blocking-moni") + threads_named("m-blocking") > 0
            && std::time::Instant::now() < until
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(threads_named("m-blocking-moni"), 0);
        assert_eq!(threads_named("m-blocking"), 0);
    });
}
