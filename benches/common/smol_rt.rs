//! smol as the benches run it: one `async_executor::Executor` run by
//! `workers` threads, each `async_io::block_on(ex.run(..))` (the usual smol
//! set-up for a multi-threaded executor).

use async_executor::Executor;

/// The executor and its threads; dropping it stops and joins them.
pub(crate) struct SmolRt {
    /// Leaked on purpose: tasks hold `&'static Executor`, like the static
    /// `EX` of async-executor's benches. One per built runtime.
    pub(crate) ex: &'static Executor<'static>,
    /// Closed on drop: every thread's `ex.run` returns.
    stop: Option<smol::channel::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl SmolRt {
    /// Starts `workers` threads named `bench-smol-<i>`.
    pub(crate) fn new(workers: usize) -> SmolRt {
        let ex: &'static Executor<'static> = Box::leak(Box::new(Executor::new()));
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let threads = (0..workers)
            .map(|i| {
                let stopped = stopped.clone();
                std::thread::Builder::new()
                    .name(format!("bench-smol-{i}"))
                    .spawn(move || {
                        let _ = async_io::block_on(ex.run(stopped.recv()));
                    })
                    .expect("spawn smol worker")
            })
            .collect();
        SmolRt {
            ex,
            stop: Some(stop),
            threads,
        }
    }

    /// How many threads run the executor.
    pub(crate) fn workers(&self) -> usize {
        self.threads.len()
    }
}

impl Drop for SmolRt {
    fn drop(&mut self) {
        drop(self.stop.take()); // closes the channel: every `ex.run` returns
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
