//! The blocking-pool backend: a job owns the op's state (buffer, file
//! handle) while it runs the syscall, and completes the op's slot exactly
//! once — with its output, its panic, or, dropped unrun, the state handed
//! back with an error (step 4 of `op/mod.rs`: the ack is the job returning).

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::future::{ended, Ended, Op};
use super::table::{OpKey, OpTable};

/// A job for the pool.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Where blocking jobs run: the runtime's blocking pool. A queue that
/// refuses a job (shut down) drops it unrun; the job's `Drop` completes its
/// op then.
pub(crate) trait JobQueue: Send + Sync {
    fn push_job(&self, job: Job);
}

impl<T: Send + 'static> Op<T> {
    /// Runs `job(state)` on `jobs` as an op in `table`: the job owns `state`
    /// (the buffer included) and returns the output; the slot is freed when
    /// it returns, whether or not the future is still there. A job dropped
    /// unrun completes the op with `unrun(state)`, which gives the buffer
    /// back with an error; a job that panics completes it with the panic,
    /// resumed in the awaiting task (the buffer was dropped by the unwinding).
    pub(crate) fn blocking<S, F>(
        table: &Arc<OpTable>,
        jobs: &dyn JobQueue,
        state: S,
        job: F,
        unrun: fn(S) -> T,
    ) -> Op<T>
    where
        S: Send + 'static,
        F: FnOnce(S) -> T + Send + 'static,
    {
        let key = table.submit();
        let job = BlockingOp {
            table: table.clone(),
            key,
            state: Some(state),
            job: Some(job),
            unrun,
        };
        jobs.push_job(Box::new(move || job.run()));
        Op::new(table, key)
    }
}

/// A blocking op's job. It holds the table, so a slot whose state a job
/// owns outlives the runtime until the job returns.
struct BlockingOp<S, F, T: Send + 'static> {
    table: Arc<OpTable>,
    key: OpKey,
    state: Option<S>,
    job: Option<F>,
    unrun: fn(S) -> T,
}

impl<S, F, T> BlockingOp<S, F, T>
where
    S: Send + 'static,
    F: FnOnce(S) -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(mut self) {
        let (state, job) = (self.state.take(), self.job.take());
        let out = match catch_unwind(AssertUnwindSafe(|| (job.unwrap())(state.unwrap()))) {
            Ok(out) => Ended::Returned(out),
            Err(payload) => Ended::Panicked(payload),
        };
        // Everything the job owned is back in `out` or dropped: the ack.
        self.table.complete(self.key, ended(out));
    }
}

impl<S, F, T: Send + 'static> Drop for BlockingOp<S, F, T> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            let out = Ended::Returned((self.unrun)(state));
            self.table.complete(self.key, ended(out));
        }
    }
}

/// The error of an op whose job never ran because the runtime shut down.
pub(crate) fn job_not_run() -> io::Error {
    io::Error::other("ebbtide: the runtime shut down before this blocking I/O operation ran")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{mpsc, Mutex};
    use std::time::{Duration, Instant};

    /// A pool of one plain thread per job, or (closed) one that drops
    /// every job unrun: the op layer tested without a runtime.
    struct Threads {
        closed: bool,
        spawned: Mutex<Vec<std::thread::JoinHandle<()>>>,
    }

    impl Threads {
        fn open() -> Threads {
            Threads {
                closed: false,
                spawned: Mutex::new(Vec::new()),
            }
        }
    }

    impl JobQueue for Threads {
        fn push_job(&self, job: Job) {
            if self.closed {
                return drop(job);
            }
            let t = std::thread::spawn(job);
            self.spawned.lock().unwrap().push(t);
        }
    }

    /// A buffer that records whether it was dropped and whether its job was
    /// still running at that moment.
    struct Tracked {
        job_running: Arc<AtomicBool>,
        dropped: Arc<AtomicUsize>,
        dropped_while_running: Arc<AtomicUsize>,
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            if self.job_running.load(Ordering::SeqCst) {
                self.dropped_while_running.fetch_add(1, Ordering::SeqCst);
            }
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[derive(Default)]
    pub(crate) struct Probe {
        job_running: Arc<AtomicBool>,
        dropped: Arc<AtomicUsize>,
        dropped_while_running: Arc<AtomicUsize>,
    }

    impl Probe {
        fn buf(&self) -> Tracked {
            Tracked {
                job_running: self.job_running.clone(),
                dropped: self.dropped.clone(),
                dropped_while_running: self.dropped_while_running.clone(),
            }
        }
    }

    /// Submits a job that holds `buf` until `release` receives, then
    /// returns it.
    fn gated_op(
        table: &Arc<OpTable>,
        jobs: &dyn JobQueue,
        probe: &Probe,
        release: mpsc::Receiver<()>,
    ) -> Op<(io::Result<usize>, Tracked)> {
        let running = probe.job_running.clone();
        Op::blocking(
            table,
            jobs,
            probe.buf(),
            move |buf| {
                running.store(true, Ordering::SeqCst);
                let _ = release.recv();
                running.store(false, Ordering::SeqCst);
                (Ok(7), buf)
            },
            |buf| (Err(job_not_run()), buf),
        )
    }

    fn wait_until(mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < Duration::from_secs(30), "timed out");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn completed_op_returns_its_buffer_and_frees_the_slot() {
        let (table, jobs) = (Arc::new(OpTable::new()), Threads::open());
        let probe = Probe::default();
        let (tx, rx) = mpsc::channel();
        tx.send(()).unwrap();
        let op = gated_op(&table, &jobs, &probe, rx);
        let (res, buf) = futures_lite::future::block_on(op);
        assert_eq!(res.unwrap(), 7);
        assert_eq!(probe.dropped.load(Ordering::SeqCst), 0);
        drop(buf);
        assert_eq!(probe.dropped.load(Ordering::SeqCst), 1);
        assert_eq!(table.len(), 0);
        assert_eq!(table.cancelled(), 0);
    }

    #[test]
    fn dropped_op_keeps_its_buffer_until_the_job_returns() {
        let (table, jobs) = (Arc::new(OpTable::new()), Threads::open());
        let probe = Probe::default();
        let (tx, rx) = mpsc::channel();
        let mut op = Box::pin(gated_op(&table, &jobs, &probe, rx));
        futures_lite::future::block_on(futures_lite::future::poll_once(op.as_mut()));
        wait_until(|| probe.job_running.load(Ordering::SeqCst));
        drop(op); // step 3: the job still runs with the buffer
        assert_eq!(probe.dropped.load(Ordering::SeqCst), 0);
        assert_eq!(table.len(), 1);
        assert_eq!(table.cancelled(), 1);
        tx.send(()).unwrap(); // step 4: the job returns, the slot is freed
        wait_until(|| probe.dropped.load(Ordering::SeqCst) == 1);
        assert_eq!(probe.dropped_while_running.load(Ordering::SeqCst), 0);
        wait_until(|| table.len() == 0);
        assert_eq!(table.stale_completions(), 0);
    }

    #[test]
    fn op_refused_by_its_pool_returns_its_buffer_with_an_error() {
        let table = Arc::new(OpTable::new());
        let jobs = Threads {
            closed: true,
            spawned: Mutex::new(Vec::new()),
        };
        let probe = Probe::default();
        let (_tx, rx) = mpsc::channel();
        let op = gated_op(&table, &jobs, &probe, rx);
        let (res, buf) = futures_lite::future::block_on(op);
        let err = res.unwrap_err();
        assert!(err.to_string().contains("shut down"), "{err}");
        assert_eq!(probe.dropped.load(Ordering::SeqCst), 0);
        drop(buf);
        assert_eq!(probe.dropped.load(Ordering::SeqCst), 1);
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn a_panicking_job_resumes_its_panic_in_the_awaiting_task() {
        let (table, jobs) = (Arc::new(OpTable::new()), Threads::open());
        let op: Op<u32> = Op::blocking(&table, &jobs, (), |()| panic!("job boom"), |()| 0);
        let res = std::panic::catch_unwind(AssertUnwindSafe(|| futures_lite::future::block_on(op)));
        let payload = res.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"job boom"));
        assert_eq!(table.len(), 0);
    }
}
