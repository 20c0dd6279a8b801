//! `ebbtide::fs::File` on Windows: overlapped reads and writes (the
//! completion backend), run under Wine by `.ci/run`.
#![cfg(windows)]

mod common;

use ebbtide::fs::File;
use ebbtide::io::BufResult;

#[test]
fn overlapped_reads_and_writes_past_4_gib_round_trip() {
    common::watchdog(|| {
        let path = std::env::temp_dir().join(format!("ebbtide-win-fs-{}", std::process::id()));
        ebbtide::block_on(async {
            let mut file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .await
                .unwrap();
            // Offsets beyond 32 bits go through OVERLAPPED.OffsetHigh.
            let far = (5u64 << 30) + 3;
            file.write_all_at(b"far away".to_vec(), far)
                .await
                .0
                .unwrap();
            file.write_all_at(b"near".to_vec(), 0).await.0.unwrap();
            assert_eq!(file.metadata().await.unwrap().len(), far + 8);
            let BufResult(n, buf) = file.read_at(Vec::with_capacity(8), far).await;
            assert_eq!(n.unwrap(), 8);
            assert_eq!(buf, b"far away");
            let BufResult(n, buf) = file.read_at(Vec::with_capacity(4), 0).await;
            assert_eq!(n.unwrap(), 4);
            assert_eq!(buf, b"near");
            // The hole reads as zeros (4 GiB + 1: past the low 32 bits).
            let BufResult(n, buf) = file.read_at(Vec::with_capacity(16), (4u64 << 30) + 1).await;
            assert_eq!(n.unwrap(), 16);
            assert!(buf.iter().all(|&b| b == 0));
            // EOF: ERROR_HANDLE_EOF reads as 0 bytes.
            let BufResult(n, buf) = file.read_at(Vec::with_capacity(4), far + 8).await;
            assert_eq!(n.unwrap(), 0);
            assert!(buf.is_empty());
            // A read that straddles the end returns what is there.
            let BufResult(n, buf) = file.read_at(Vec::with_capacity(64), far + 4).await;
            assert_eq!(n.unwrap(), 4);
            assert_eq!(buf, b"away");
            drop(file);

            // Reading a write-only handle: ERROR_ACCESS_DENIED (5), with
            // the buffer back.
            let wo = File::options().write(true).open(&path).await.unwrap();
            let BufResult(res, buf) = wo.read_at(Vec::with_capacity(4), 0).await;
            let err = res.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(5), "{err}");
            assert_eq!(buf.capacity(), 4);
            drop(wo);
            ebbtide::fs::remove_file(&path).await.unwrap();
        });
    });
}
