//! Shared by the integration tests (`mod common;`): the hang watchdog, the
//! runtime flavours every concern is checked on, small probes, and the
//! socket helpers of the `ebbtide::net` tests ([`net`]), the file helpers
//! of the `ebbtide::fs` tests ([`fs`]).
//!
//! Not every test file uses every item.
#![allow(dead_code)]

use std::any::Any;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::thread::ThreadId;
use std::time::Duration;

use ebbtide::runtime::Runtime;
use ebbtide::{JoinError, JoinHandle};

pub(crate) mod child;
pub(crate) mod fs;
pub(crate) mod net;
pub(crate) mod process;

/// How long any one test body may run before it counts as a hang.
pub(crate) const WATCHDOG: Duration = Duration::from_secs(30);

/// Runs `body` on its own thread and returns its result. Panics with a clear
/// message if it has not finished within `limit` (a hang: a lost wakeup, a
/// deadlock), and re-raises the body's own panic (a failed assertion) with
/// its original payload.
pub(crate) fn watchdog_for<T: Send + 'static>(
    limit: Duration,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("watched-test-body".into())
        .spawn(move || {
            let _ = tx.send(body());
        })
        .expect("spawn the test body's thread");
    match rx.recv_timeout(limit) {
        Ok(v) => {
            let _ = thread.join();
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => unreachable!("the body returned without sending its result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "watchdog: the test body did not finish within {limit:?}: a hang (lost wakeup, \
             deadlock, or a task that is never run)"
        ),
    }
}

/// [`watchdog_for`] with the default [`WATCHDOG`] limit.
pub(crate) fn watchdog<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    watchdog_for(WATCHDOG, body)
}

/// A runtime and what kind it is.
pub(crate) struct Flavour {
    /// Names the flavour in assertion messages.
    pub(crate) name: &'static str,
    pub(crate) rt: Runtime,
    /// Tasks run only inside `block_on` (on its caller's thread).
    pub(crate) current_thread: bool,
}

/// One runtime of every flavour the executor has: current-thread, and 1, 2
/// and 4 workers.
pub(crate) fn flavours() -> Vec<Flavour> {
    vec![
        Flavour::current_thread(),
        Flavour::workers(1),
        Flavour::workers(2),
        Flavour::workers(4),
    ]
}

impl Flavour {
    pub(crate) fn current_thread() -> Flavour {
        Flavour {
            name: "current_thread",
            rt: current_thread(),
            current_thread: true,
        }
    }

    pub(crate) fn workers(n: usize) -> Flavour {
        Flavour {
            name: ["", "1 worker", "2 workers", "3 workers", "4 workers"][n],
            rt: workers(n),
            current_thread: false,
        }
    }

    /// Awaits `h` on the runtime's own task runners: inside `block_on` on a
    /// current-thread runtime; otherwise from a watcher task on the workers,
    /// with no `block_on` caller around (one may run ready tasks itself,
    /// which would blur which thread ran what).
    pub(crate) fn join<T: Send + 'static>(&self, h: JoinHandle<T>) -> Result<T, JoinError> {
        if self.current_thread {
            return self.rt.block_on(h);
        }
        let (tx, rx) = mpsc::channel();
        let watcher = self.rt.spawn(async move {
            let _ = tx.send(h.await);
        });
        let out = rx
            .recv_timeout(WATCHDOG)
            .unwrap_or_else(|_| panic!("{}: a joined task never finished", self.name));
        // Gone from the books too (`alive_tasks`) before the caller looks.
        while !watcher.is_finished() {
            std::thread::yield_now();
        }
        out
    }

    /// Runs `fut` as a task (see [`Flavour::join`]); returns its output and
    /// the thread it ran on.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> (T, ThreadId) {
        let h = self.rt.spawn(async move {
            let out = fut.await;
            (out, std::thread::current().id())
        });
        self.join(h)
            .unwrap_or_else(|e| panic!("{}: the task failed: {e}", self.name))
    }

    /// Waits, letting the runtime run, until `cond` holds.
    pub(crate) fn wait_until(&self, cond: impl Fn() -> bool) {
        if self.current_thread {
            self.rt.block_on(async {
                while !cond() {
                    ebbtide::yield_now().await;
                }
            });
        } else {
            while !cond() {
                std::thread::yield_now();
            }
        }
    }
}

pub(crate) fn current_thread() -> Runtime {
    Runtime::builder()
        .current_thread()
        .build()
        .expect("build a current-thread runtime")
}

pub(crate) fn workers(n: usize) -> Runtime {
    Runtime::builder()
        .worker_threads(n)
        .build()
        .expect("build a multi-thread runtime")
}

/// Sets its flag when dropped: proves a future (or value) was dropped.
#[derive(Debug)]
pub(crate) struct SetOnDrop(pub(crate) Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A fresh flag and the guard that sets it when dropped.
pub(crate) fn drop_flag() -> (Arc<AtomicBool>, SetOnDrop) {
    let flag = Arc::new(AtomicBool::new(false));
    (flag.clone(), SetOnDrop(flag))
}

/// The message of a panic payload (`&str` or `String`), or `""`.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Panics the tests provoke on purpose: their message starts with
/// `deliberate:` or is one of the runtime's documented misuse panics.
const EXPECTED_PANICS: &[&str] = &[
    "deliberate:",
    "already running an ebbtide runtime",
    "spawn_local called on a thread that runs no runtime",
    "no ebbtide runtime is current",
    "polled outside a runtime",
    "into_panic on a cancelled task",
];

/// Keeps the default panic hook for real failures but silences the panics
/// listed in `EXPECTED_PANICS` (they would flood the output, and printing
/// a backtrace for each is slow in debug builds). Installed once.
pub(crate) fn quiet_expected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = panic_message(info.payload());
            if !EXPECTED_PANICS.iter().any(|p| msg.contains(p)) {
                default(info);
            }
        }));
    });
}

/// A small deterministic PRNG (xorshift64*), so sizes and delays are
/// reproducible without a dependency.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `release` in release builds, `debug` in debug builds: the release number
/// is the target; the debug one keeps the suite fast on a 2-core machine.
pub(crate) fn scaled(release: usize, debug: usize) -> usize {
    if cfg!(debug_assertions) {
        debug
    } else {
        release
    }
}

/// Drop accounting for [`CountedBuf`]s: how many were made and dropped,
/// and a log of events (`Event::Dropped(id)` etc.) in the order they
/// happened, for tests that check *when* a buffer came back.
#[derive(Default)]
pub(crate) struct BufLedger {
    pub made: std::sync::atomic::AtomicUsize,
    pub dropped: std::sync::atomic::AtomicUsize,
    /// Per-buffer drop counts, indexed by id (a second drop shows as 2).
    pub drops: std::sync::Mutex<Vec<u32>>,
    /// A sequence number ticked at each drop, for ordering against other
    /// events recorded with [`BufLedger::tick`].
    pub clock: std::sync::atomic::AtomicU64,
    /// For each buffer id: the clock value at its drop.
    pub dropped_at: std::sync::Mutex<Vec<u64>>,
    /// For each buffer id: its initialized bytes when it was dropped (what
    /// the kernel wrote into it).
    pub bytes_at_drop: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl BufLedger {
    pub(crate) fn new() -> Arc<BufLedger> {
        Arc::new(BufLedger::default())
    }

    /// A new buffer with `capacity` bytes of spare room.
    pub(crate) fn buf(self: &Arc<Self>, capacity: usize) -> CountedBuf {
        let id = self.made.fetch_add(1, Ordering::SeqCst);
        {
            let mut d = self.drops.lock().unwrap();
            if d.len() <= id {
                d.resize(id + 1, 0);
            }
            let mut at = self.dropped_at.lock().unwrap();
            if at.len() <= id {
                at.resize(id + 1, 0);
            }
            let mut bytes = self.bytes_at_drop.lock().unwrap();
            if bytes.len() <= id {
                bytes.resize(id + 1, Vec::new());
            }
        }
        CountedBuf {
            vec: Vec::with_capacity(capacity),
            id,
            ledger: self.clone(),
        }
    }

    /// Ticks the shared clock and returns the new value.
    pub(crate) fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Asserts every buffer made was dropped exactly once.
    pub(crate) fn assert_all_dropped_once(&self) {
        let made = self.made.load(Ordering::SeqCst);
        let drops = self.drops.lock().unwrap();
        let bad: Vec<(usize, u32)> = drops
            .iter()
            .enumerate()
            .filter(|(_, &n)| n != 1)
            .map(|(i, &n)| (i, n))
            .take(10)
            .collect();
        assert!(
            bad.is_empty(),
            "buffers not dropped exactly once (id, drops): {bad:?}"
        );
        assert_eq!(self.dropped.load(Ordering::SeqCst), made);
    }
}

/// An owned buffer (a `Vec<u8>` inside) that records its drop in a
/// [`BufLedger`].
pub(crate) struct CountedBuf {
    pub vec: Vec<u8>,
    pub id: usize,
    ledger: Arc<BufLedger>,
}

impl Drop for CountedBuf {
    fn drop(&mut self) {
        let at = self.ledger.tick();
        self.ledger.drops.lock().unwrap()[self.id] += 1;
        self.ledger.dropped_at.lock().unwrap()[self.id] = at;
        self.ledger.bytes_at_drop.lock().unwrap()[self.id] = std::mem::take(&mut self.vec);
        self.ledger.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: the bytes are the inner Vec's, on the heap.
unsafe impl ebbtide::io::IoBuf for CountedBuf {
    fn as_buf_ptr(&self) -> *const u8 {
        self.vec.as_ptr()
    }
    fn buf_len(&self) -> usize {
        self.vec.len()
    }
    fn buf_capacity(&self) -> usize {
        self.vec.capacity()
    }
}

// SAFETY: forwarded to the inner Vec.
unsafe impl ebbtide::io::IoBufMut for CountedBuf {
    fn as_buf_mut_ptr(&mut self) -> *mut u8 {
        self.vec.as_mut_ptr()
    }
    unsafe fn set_buf_init(&mut self, len: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { ebbtide::io::IoBufMut::set_buf_init(&mut self.vec, len) }
    }
}

/// Never finishes and never waits: wakes itself and returns `Pending` on
/// every poll (not `yield_now`, which a runtime may treat specially).
pub(crate) async fn spin_forever() {
    std::future::poll_fn::<(), _>(|cx| {
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}
