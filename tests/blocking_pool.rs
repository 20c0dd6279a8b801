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
