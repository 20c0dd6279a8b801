//! `ebbtide::fs`: files on the blocking pool with owned buffers, and the
//! op-ownership protocol for blocking-pool ops.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::fs::TempDir;
use common::watchdog;
use ebbtide::fs::{self, File};
use ebbtide::io::{BufResult, IoBuf, IoBufMut};
use ebbtide::runtime::Runtime;
use futures_lite::StreamExt;

#[test]
fn positional_reads_and_writes_round_trip() {
    watchdog(|| {
        let dir = TempDir::new("rw");
        let path = dir.path("f");
        ebbtide::block_on(async {
            let file = File::create(&path).await.unwrap();
            let BufResult(res, buf) = file.write_all_at(b"0123456789".to_vec(), 0).await;
            res.unwrap();
            assert_eq!(buf, b"0123456789", "the buffer comes back");
            let BufResult(n, _) = file.write_at("abc", 20).await;
            assert_eq!(n.unwrap(), 3);
            drop(file);

            let mut file = File::open(&path).await.unwrap();
            assert_eq!(file.metadata().await.unwrap().len(), 23);
            // Reads fill spare capacity after the initialized bytes.
            let mut head = Vec::with_capacity(8);
            head.extend_from_slice(b">>");
            let BufResult(n, head) = file.read_at(head, 2).await;
            assert_eq!(n.unwrap(), 6);
            assert_eq!(head, b">>234567");
            // The hole reads as zeros; EOF reads 0.
            let BufResult(n, hole) = file.read_at(Vec::with_capacity(13), 10).await;
            assert_eq!(n.unwrap(), 13);
            assert_eq!(&hole[..10], &[0; 10]);
            assert_eq!(&hole[10..], b"abc");
            let BufResult(n, eof) = file.read_at(Vec::with_capacity(4), 23).await;
            assert_eq!(n.unwrap(), 0);
            assert!(eof.is_empty());
            // No spare capacity: nothing to read into.
            let BufResult(n, _) = file.read_at(Vec::new(), 0).await;
            assert_eq!(n.unwrap(), 0);
            // A slice reads into a window of a bigger buffer.
            let BufResult(n, window) = file.read_at(vec![b'.'; 4].slice(2..), 0).await;
            assert_eq!(n.unwrap(), 0, "slice(2..) of a full Vec has no spare room");
            assert_eq!(window.into_inner(), b"....");
        });
    });
}

#[test]
fn cursor_reads_and_writes_advance_the_position() {
    watchdog(|| {
        let dir = TempDir::new("cursor");
        let path = dir.path("f");
        ebbtide::block_on(async {
            let mut file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .await
                .unwrap();
            for chunk in ["hello ", "owned ", "world"] {
                file.write_all_owned(chunk.to_string()).await.0.unwrap();
            }
            assert_eq!(file.position(), 17);
            file.sync_all().await.unwrap();
            file.set_position(0);
            let mut out = Vec::new();
            loop {
                let BufResult(n, buf) = file.read_owned(Vec::with_capacity(4)).await;
                if n.unwrap() == 0 {
                    break;
                }
                out.extend_from_slice(&buf);
            }
            assert_eq!(out, b"hello owned world");
            assert_eq!(file.position(), 17);
            file.set_len(5).await.unwrap();
            file.sync_data().await.unwrap();
        });
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
    });
}

#[test]
fn whole_file_helpers_and_directories() {
    watchdog(|| {
        let dir = TempDir::new("dirs");
        let root = dir.path("a/b/c");
        ebbtide::block_on(async {
            fs::create_dir_all(&root).await.unwrap();
            // More entries than one read_dir batch (64).
            for i in 0..150 {
                fs::write(
                    root.join(format!("f{i:03}")),
                    format!("file {i}").into_bytes(),
                )
                .await
                .unwrap();
            }
            fs::create_dir(root.join("sub")).await.unwrap();
            let mut names = Vec::new();
            let mut entries = fs::read_dir(&root).await.unwrap();
            while let Some(entry) = entries.next().await {
                let entry = entry.unwrap();
                let name = entry.file_name().into_string().unwrap();
                let meta = entry.metadata().await.unwrap();
                assert_eq!(meta.is_dir(), name == "sub");
                assert_eq!(entry.file_type().unwrap().is_dir(), name == "sub");
                names.push(name);
            }
            names.sort();
            assert_eq!(names.len(), 151);
            assert_eq!(names[0], "f000");
            assert_eq!(names[149], "f149");
            assert_eq!(fs::read(root.join("f042")).await.unwrap(), b"file 42");
            assert_eq!(
                fs::read_to_string(root.join("f007")).await.unwrap(),
                "file 7"
            );
            assert_eq!(fs::metadata(root.join("f100")).await.unwrap().len(), 8);
            fs::rename(root.join("f000"), root.join("renamed"))
                .await
                .unwrap();
            fs::remove_file(root.join("renamed")).await.unwrap();
            fs::remove_dir(root.join("sub")).await.unwrap();
            let err = fs::metadata(root.join("f000")).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
            fs::remove_dir_all(dir.path("a")).await.unwrap();
            assert!(!dir.path("a").exists());
        });
    });
}

#[test]
fn errors_name_their_cause() {
    watchdog(|| {
        let dir = TempDir::new("errors");
        ebbtide::block_on(async {
            let err = File::open(dir.path("missing")).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
            let err = fs::read_dir(dir.path("missing")).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
            // Writing to a read-only handle fails and gives the buffer back.
            std::fs::write(dir.path("ro"), b"x").unwrap();
            let file = File::open(dir.path("ro")).await.unwrap();
            let BufResult(res, buf) = file.write_at(b"data".to_vec(), 0).await;
            assert!(res.is_err());
            assert_eq!(buf, b"data");
        });
        // Outside any runtime: a clear error, not a panic.
        let fut = fs::metadata(dir.path("ro"));
        let err = futures_lite::future::block_on(fut).unwrap_err();
        assert!(err.to_string().contains("outside a runtime"), "{err}");
    });
}

/// A buffer that knows whether a blocking job is between its first and
/// last touch of it (`spare_mut` ... `set_buf_init`), and counts drops.
struct Watched {
    vec: Vec<u8>,
    in_job: Arc<AtomicBool>,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Stats {
    made: AtomicUsize,
    dropped: AtomicUsize,
    dropped_in_job: AtomicUsize,
    jobs_finished: AtomicUsize,
}

impl Watched {
    fn new(stats: &Arc<Stats>, cap: usize) -> Watched {
        stats.made.fetch_add(1, Ordering::SeqCst);
        Watched {
            vec: Vec::with_capacity(cap),
            in_job: Arc::new(AtomicBool::new(false)),
            stats: stats.clone(),
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.in_job.load(Ordering::SeqCst) {
            self.stats.dropped_in_job.fetch_add(1, Ordering::SeqCst);
        }
        self.stats.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: the bytes are the inner Vec's, on the heap.
unsafe impl IoBuf for Watched {
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

// SAFETY: forwarded to the inner Vec; the flag only records timing.
unsafe impl IoBufMut for Watched {
    fn as_buf_mut_ptr(&mut self) -> *mut u8 {
        self.in_job.store(true, Ordering::SeqCst);
        // Widen the window in which an early drop would be seen.
        std::thread::yield_now();
        self.vec.as_mut_ptr()
    }
    unsafe fn set_buf_init(&mut self, len: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { IoBufMut::set_buf_init(&mut self.vec, len) };
        self.in_job.store(false, Ordering::SeqCst);
        self.stats.jobs_finished.fetch_add(1, Ordering::SeqCst);
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn poll_n_times<F: std::future::Future>(fut: F, n: u64) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..n {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}

#[test]
fn dropped_file_reads_drop_each_buffer_once_and_only_after_the_job() {
    // Under Wine each blocking-pool hop costs far more; 10k still covers
    // every drop point.
    let total: u64 = if cfg!(windows) { 10_000 } else { 100_000 };
    common::watchdog_for(Duration::from_secs(120), move || {
        let dir = TempDir::new("dropped");
        let path = dir.path("data");
        std::fs::write(&path, vec![7u8; 4096]).unwrap();
        let rt = Runtime::builder()
            .worker_threads(2)
            .max_blocking_threads(4)
            .build()
            .unwrap();
        let stats = Arc::new(Stats::default());
        let file = rt.block_on(File::open(&path)).unwrap();
        let completed = rt.block_on(async {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            let mut completed = 0u64;
            let mut never_polled = 0u64;
            for i in 0..total {
                let polls = rng.next() % 4;
                // An async fn submits at its first poll: 0 polls means
                // the op never existed and the buffer drops with it.
                never_polled += u64::from(polls == 0 && i % 100 != 0);
                // Larger than the 64 KiB that `read_at` tries inline on
                // cached data: every read goes to the pool.
                let buf = Watched::new(&stats, 65 << 10);
                let read = file.read_at(buf, i % 4096);
                // Every 100th read is awaited, so completions are covered
                // whatever the machine's speed.
                let done = if i % 100 == 0 {
                    Some(read.await)
                } else {
                    poll_n_times(read, polls)
                };
                if let Some(BufResult(n, buf)) = done {
                    assert_eq!(n.unwrap(), 4096 - (i % 4096) as usize);
                    assert!(buf.vec.iter().all(|&b| b == 7));
                    completed += 1;
                }
                if i % 1000 == 0 {
                    ebbtide::yield_now().await;
                }
            }
            (completed, never_polled)
        });
        let (completed, never_polled) = completed;
        let submitted = total - never_polled;
        // Every job ends (cancelled ones on the pool, after the drop).
        let start = std::time::Instant::now();
        while stats.dropped.load(Ordering::SeqCst) < total as usize {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "buffers still held: {} of {} dropped; {:?}",
                stats.dropped.load(Ordering::SeqCst),
                total,
                rt.metrics()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(stats.made.load(Ordering::SeqCst), total as usize);
        assert_eq!(stats.dropped.load(Ordering::SeqCst), total as usize);
        assert_eq!(stats.dropped_in_job.load(Ordering::SeqCst), 0);
        assert_eq!(
            stats.jobs_finished.load(Ordering::SeqCst),
            submitted as usize
        );
        let m = rt.metrics();
        assert_eq!(m.ops_stale_completions, 0);
        assert_eq!(m.ops_in_flight, 0);
        assert_eq!(
            m.ops_submitted,
            submitted + 1,
            "the reads and the open: {m}"
        );
        // The rest completed on the pool but were dropped before the future
        // saw it: not cancelled, and freed at the drop.
        assert!(m.ops_cancelled + completed <= submitted, "{m}");
        assert!(
            completed > 0 && m.ops_cancelled > 0,
            "{completed} completed, {m}"
        );
        drop(file);
        let report = rt.shutdown(Duration::from_secs(5));
        assert_eq!(report.ops_leaked, 0, "{report}");
    });
}

#[test]
fn runtime_dropped_with_file_ops_in_flight_settles_them() {
    watchdog(|| {
        let dir = TempDir::new("settle");
        let path = dir.path("data");
        std::fs::write(&path, vec![1u8; 1 << 20]).unwrap();
        let stats = Arc::new(Stats::default());
        let rt = Runtime::builder()
            .worker_threads(2)
            .max_blocking_threads(2)
            .build()
            .unwrap();
        let file = Arc::new(rt.block_on(File::open(&path)).unwrap());
        for i in 0..2000u64 {
            let file = file.clone();
            let buf = Watched::new(&stats, 512);
            rt.spawn(async move {
                let _ = file.read_at(buf, i * 512).await;
                std::future::pending::<()>().await;
            });
        }
        let report = rt.shutdown(Duration::ZERO);
        // Every op either finished, was dropped unrun with its job, or
        // settled: nothing is still owned by a job past the join, so
        // nothing is leaked and every buffer is gone.
        assert_eq!(report.ops_leaked, 0, "{report}");
        assert_eq!(stats.dropped.load(Ordering::SeqCst), 2000);
        assert_eq!(stats.dropped_in_job.load(Ordering::SeqCst), 0);
        drop(file);
        drop(rt);
    });
}
