//! The blocking pool's hand-off (`src/blocking`): queuing a job wakes or
//! starts no thread while enough threads are on their way (spinning,
//! notified, starting), and yet every job that needs a thread of its own
//! gets one at once.

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
