//! The io_uring peers as the benches run them (Linux only): compio and
//! monoio are thread-per-core runtimes (a task never leaves the thread that
//! spawned it, futures need not be `Send`), so the way their users run 2
//! cores is one runtime per thread, each with its share of the work. Here:
//! 1. `Tpc::threads(workers, f)` starts `workers` threads; thread `i`
//!    builds its own runtime and runs `f(i)` to completion on it.
//! 2. Inside, `Tpc::join_all` spawns futures on that thread's runtime (one
//!    task each, as users write it) and waits for all of them.
//!
//! Both runtimes use io_uring only: compio is built with its `io-uring`
//! driver and without `polling` (no fallback; `threads` checks the driver),
//! monoio with `RuntimeBuilder<IoUringDriver>`.

use std::future::Future;
use std::thread::JoinHandle;

/// Which thread-per-core runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tpc {
    Compio,
    Monoio,
}

impl Tpc {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tpc::Compio => "compio",
            Tpc::Monoio => "monoio",
        }
    }

    /// Runs `fut` to completion on a new runtime of this kind built on the
    /// current thread.
    pub(crate) fn block_on<F: Future>(self, fut: F) -> F::Output {
        match self {
            Tpc::Compio => {
                let rt = compio::runtime::Runtime::new().expect("compio runtime");
                assert!(
                    matches!(rt.driver_type(), compio::driver::DriverType::IoUring),
                    "compio is not on io_uring"
                );
                rt.block_on(fut)
            }
            Tpc::Monoio => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .build()
                .expect("monoio io_uring runtime")
                .block_on(fut),
        }
    }

    /// Starts `workers` threads named `bench-<runtime>-<i>`, each running
    /// `f(i)` on its own runtime; join them for the results.
    pub(crate) fn threads<T, F, Fut>(self, workers: usize, f: F) -> Vec<JoinHandle<T>>
    where
        T: Send + 'static,
        F: Fn(usize) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = T>,
    {
        (0..workers)
            .map(|i| {
                let f = f.clone();
                std::thread::Builder::new()
                    .name(format!("bench-{}-{i}", self.name()))
                    .spawn(move || self.block_on(f(i)))
                    .expect("spawn a runtime thread")
            })
            .collect()
    }

    /// Spawns every future of `futs` as a task on the current thread's
    /// runtime and waits for all of them, in order.
    pub(crate) async fn join_all<F>(self, futs: Vec<F>) -> Vec<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let mut out = Vec::with_capacity(futs.len());
        match self {
            Tpc::Compio => {
                let tasks: Vec<_> = futs.into_iter().map(compio::runtime::spawn).collect();
                for t in tasks {
                    out.push(t.await.unwrap_or_else(|e| panic!("compio task: {e:?}")));
                }
            }
            Tpc::Monoio => {
                let tasks: Vec<_> = futs.into_iter().map(monoio::spawn).collect();
                for t in tasks {
                    out.push(t.await);
                }
            }
        }
        out
    }
}
