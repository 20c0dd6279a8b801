//! Positional reads of cached file data skip the blocking pool
//! (`fs::File::read_at` tries `preadv2(RWF_NOWAIT)` first on Linux), and
//! still take the cooperative budget: a loop over cached reads lets the
//! rest of its thread run.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{current_thread, watchdog};
use ebbtide::fs::File;
use ebbtide::io::BufResult;

/// A 1 MiB file whose every byte is its offset modulo 251, read once
/// through std so that its pages are cached.
fn cached_file(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("ebbtide-{name}-{}", std::process::id()));
    let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    path
}

#[test]
fn cached_reads_never_start_a_pool_thread() {
    watchdog(|| {
        let path = cached_file("cached-no-pool");
        let rt = current_thread();
        rt.block_on(async {
            let file = File::open(&path).await.unwrap();
            let before = ebbtide::runtime::Handle::current()
                .metrics()
                .blocking_threads;
            for i in 0..256u64 {
                let pos = i * 4096 + 7;
                let BufResult(res, buf) = file.read_at(Vec::with_capacity(100), pos).await;
                assert_eq!(res.unwrap(), 100);
                let want: Vec<u8> = (pos..pos + 100).map(|p| (p % 251) as u8).collect();
                assert_eq!(buf, want, "bytes at {pos}");
            }
            // Reading at the end is a zero-length read, also inline.
            let BufResult(res, _) = file.read_at(Vec::with_capacity(10), 1 << 20).await;
            assert_eq!(res.unwrap(), 0);
            let after = ebbtide::runtime::Handle::current()
                .metrics()
                .blocking_threads;
            assert_eq!(after, before, "a cached read went to the blocking pool");
        });
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn a_loop_over_cached_reads_lets_its_siblings_run() {
    watchdog(|| {
        let path = cached_file("cached-coop");
        let rt = current_thread();
        let ticks = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            let file = File::open(&path).await.unwrap();
            let ticker = {
                let ticks = ticks.clone();
                ebbtide::spawn(async move {
                    for _ in 0..10 {
                        ticks.fetch_add(1, Ordering::Relaxed);
                        ebbtide::task::yield_now().await;
                    }
                })
            };
            // Always ready: without the budget this loop never returns
            // `Pending`, the ticker never runs, and the watchdog fires.
            let mut buf = Vec::with_capacity(64);
            while ticks.load(Ordering::Relaxed) < 10 {
                buf.clear();
                let BufResult(res, b) = file.read_at(buf, 0).await;
                buf = b;
                assert_eq!(res.unwrap(), 64);
            }
            ticker.await.unwrap();
            // And a timeout around such a loop fires.
            let spin = async {
                loop {
                    let BufResult(res, _) = file.read_at(Vec::with_capacity(8), 0).await;
                    res.unwrap();
                }
            };
            let timed = ebbtide::time::timeout(Duration::from_millis(10), spin).await;
            assert!(timed.is_err());
        });
        std::fs::remove_file(&path).unwrap();
    });
}
