//! `ebbtide::fs::File` as a futures-io stream: `AsyncRead`, `AsyncWrite`,
//! `AsyncSeek` on the `File`'s own buffer, cancel safety of a dropped read
//! or write, and how the stream, the owned-buffer calls, `try_clone` and
//! `set_len` share one position. The scenarios of tokio's
//! `tests/fs_file.rs` are here too, in this crate's terms.

mod common;

use std::io::{IoSlice, SeekFrom};
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::fs::{evict_from_page_cache, TempDir};
use common::{watchdog, watchdog_for, Rng};
use ebbtide::fs::File;
use ebbtide::io::BufResult;
use ebbtide::net::{TcpListener, TcpStream};
use futures_lite::io::{AsyncBufReadExt, BufReader};
use futures_lite::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, StreamExt};

const HELLO: &[u8] = b"hello world...";

/// `len` bytes no two nearby windows of which are alike, so a lost or
/// repeated chunk shows.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn open_rw(path: &std::path::Path) -> File {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .open(path)
        .await
        .unwrap()
}

/// A file opened by std and handed over, so its ops run on the blocking
/// pool on every platform: a file `ebbtide::fs` opens on Windows is
/// overlapped and completes through the port, which [`hold_the_pool`]
/// cannot hold.
fn pooled(opts: &mut std::fs::OpenOptions, path: &std::path::Path) -> File {
    File::from_std(opts.open(path).unwrap())
}

/// Polls `fut` `n` times with a waker that does nothing, then drops it.
fn poll_then_drop<F: std::future::Future>(fut: F, n: u64) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..n {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return Some(v);
        }
    }
    None
}

/// A runtime with one blocking thread, which [`hold_the_pool`] can hold.
/// On Linux it runs on epoll, whatever the suite's backend: there file ops
/// go to the pool, which these tests hold to keep an op in flight (on the
/// io_uring backend they go through the ring, which nothing can hold;
/// tests/uring.rs covers that path).
fn one_pool_thread() -> ebbtide::runtime::Runtime {
    let mut b = ebbtide::runtime::Runtime::builder();
    b.worker_threads(1).max_blocking_threads(1);
    if cfg!(target_os = "linux") {
        b.io_backend(ebbtide::runtime::IoBackend::Epoll);
    }
    b.build().unwrap()
}

/// Occupies the current runtime's only blocking thread until the sender is
/// dropped: a file op submitted meanwhile queues behind it and is surely
/// still in flight when its future is dropped.
fn hold_the_pool() -> (mpsc::Sender<()>, ebbtide::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<()>();
    let held = ebbtide::spawn_blocking(move || {
        let _ = rx.recv();
    });
    (tx, held)
}

/// FNV-1a, fed in pieces.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[test]
fn read_to_end_write_all_and_seek_round_trip() {
    watchdog(|| {
        let dir = TempDir::new("round-trip");
        let path = dir.path("f");
        let data = pattern(300_000, 1);
        let expect = data.clone();
        ebbtide::block_on(async move {
            let mut file = open_rw(&path).await;
            file.write_all(&data).await.unwrap();
            assert_eq!(file.position(), 300_000, "accepted bytes count");
            assert_eq!(file.seek(SeekFrom::Start(0)).await.unwrap(), 0);
            let mut back = Vec::new();
            assert_eq!(file.read_to_end(&mut back).await.unwrap(), 300_000);
            assert!(back == expect, "read back what was written");
            // Overwrite the middle, read it back.
            file.seek(SeekFrom::Start(1000)).await.unwrap();
            file.write_all(b"MIDDLE").await.unwrap();
            assert_eq!(file.seek(SeekFrom::Current(0)).await.unwrap(), 1006);
            file.seek(SeekFrom::Start(998)).await.unwrap();
            let mut around = [0; 10];
            file.read_exact(&mut around).await.unwrap();
            assert_eq!(&around[..2], &expect[998..1000]);
            assert_eq!(&around[2..8], b"MIDDLE");
            assert_eq!(&around[8..], &expect[1006..1008]);
            file.close().await.unwrap();
        });
        let on_disk = std::fs::read(dir.path("f")).unwrap();
        assert_eq!(on_disk.len(), 300_000);
        assert_eq!(&on_disk[1000..1006], b"MIDDLE");
    });
}

#[test]
fn buf_reader_reads_every_line() {
    watchdog(|| {
        let dir = TempDir::new("lines");
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("line {i} {}\n", "x".repeat(i % 37)));
        }
        let path = dir.file("lines", text.as_bytes());
        ebbtide::block_on(async move {
            let file = File::open(&path).await.unwrap();
            let mut lines = BufReader::new(file).lines();
            let mut n = 0;
            while let Some(line) = lines.next().await {
                assert_eq!(line.unwrap(), format!("line {n} {}", "x".repeat(n % 37)));
                n += 1;
            }
            assert_eq!(n, 20_000);
        });
    });
}

#[test]
fn copy_of_256_mib_from_a_file_to_a_tcp_stream_arrives_intact() {
    const LEN: usize = 256 << 20;
    watchdog_for(Duration::from_secs(240), || {
        let dir = TempDir::new("copy");
        let path = dir.path("big");
        // Written in 1 MiB pieces of a pattern; the checksum of what was
        // written is computed as it is made.
        let mut sent = Fnv::new();
        {
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            for i in 0..(LEN >> 20) {
                let piece = pattern(1 << 20, i as u64 + 7);
                sent.feed(&piece);
                out.write_all(&piece).unwrap();
            }
            out.flush().unwrap();
        }
        let (count, received) = ebbtide::block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let receiver = ebbtide::spawn(async move {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut sum = Fnv::new();
                let mut count = 0usize;
                let mut buf = vec![0; 64 * 1024];
                loop {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    sum.feed(&buf[..n]);
                    count += n;
                }
                (count, sum.0)
            });
            let file = File::open(&path).await.unwrap();
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let copied = futures_lite::io::copy(file, &mut stream).await.unwrap();
            assert_eq!(copied, LEN as u64);
            stream.close().await.unwrap();
            drop(stream);
            receiver.await.unwrap()
        });
        assert_eq!(count, LEN, "every byte arrived once");
        assert_eq!(received, sent.0, "in order and intact");
    });
}

#[test]
fn read_dropped_mid_flight_loses_and_repeats_no_byte() {
    watchdog_for(Duration::from_secs(120), || {
        let dir = TempDir::new("dropped-read");
        let data = pattern(4 << 20, 3);
        let path = dir.uncached_file("f", &data);
        let (out, dropped_pending) = ebbtide::block_on(async move {
            let mut file = File::open(&path).await.unwrap();
            // Small reads so that many of them start an op; the read-ahead
            // is capped to make more ops.
            file.set_max_buf_size(4096);
            let mut rng = Rng::new(11);
            let mut out = Vec::new();
            let mut dropped_pending = 0;
            loop {
                // Uncached every time: the kernel's read-ahead would
                // otherwise cache the next pages, whose reads then complete
                // at once instead of going to the pool.
                evict_from_page_cache(&path);
                let mut buf = vec![0; 1 + rng.below(3000) as usize];
                let polls = rng.below(3);
                // Poll 0, 1 or 2 times and drop: a read op may be left in
                // flight, owned by the file.
                match poll_then_drop(file.read(&mut buf), polls) {
                    Some(n) => {
                        let n = n.unwrap();
                        if n == 0 {
                            break;
                        }
                        out.extend_from_slice(&buf[..n]);
                    }
                    None => {
                        dropped_pending += u64::from(polls > 0);
                        // Then read on, awaited, with a fresh buffer.
                        let n = file.read(&mut buf).await.unwrap();
                        if n == 0 {
                            break;
                        }
                        out.extend_from_slice(&buf[..n]);
                    }
                }
                assert_eq!(
                    file.position(),
                    out.len() as u64,
                    "the position follows the bytes handed out"
                );
            }
            (out, dropped_pending)
        });
        assert!(
            dropped_pending > 100,
            "reads were dropped in flight: {dropped_pending}"
        );
        assert_eq!(out.len(), data.len(), "no byte lost or repeated");
        assert!(out == data, "the file's content, in order");
    });
}

#[test]
fn seek_from_current_and_end_counts_only_bytes_handed_out() {
    watchdog(|| {
        let dir = TempDir::new("seek");
        let data: Vec<u8> = (0..=99).collect();
        let path = dir.file("f", &data);
        ebbtide::block_on(async move {
            let mut file = File::open(&path).await.unwrap();
            let mut three = [0; 3];
            file.read_exact(&mut three).await.unwrap();
            assert_eq!(three, [0, 1, 2]);
            // The read took all 100 bytes ahead; the position is 3.
            assert_eq!(file.seek(SeekFrom::Current(0)).await.unwrap(), 3);
            assert_eq!(file.seek(SeekFrom::Current(2)).await.unwrap(), 5);
            let mut one = [0; 1];
            file.read_exact(&mut one).await.unwrap();
            assert_eq!(one, [5]);
            assert_eq!(file.seek(SeekFrom::Current(-4)).await.unwrap(), 2);
            file.read_exact(&mut one).await.unwrap();
            assert_eq!(one, [2]);
            assert_eq!(file.seek(SeekFrom::End(-3)).await.unwrap(), 97);
            let mut rest = Vec::new();
            file.read_to_end(&mut rest).await.unwrap();
            assert_eq!(rest, [97, 98, 99]);
            // Before the start: an error, and the position does not move.
            let err = file.seek(SeekFrom::Current(-101)).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            assert_eq!(file.position(), 100);
            let err = file.seek(SeekFrom::End(-101)).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            assert_eq!(file.seek(SeekFrom::Start(0)).await.unwrap(), 0);
        });
    });
}

#[test]
fn seek_waits_for_a_read_dropped_in_flight() {
    watchdog(|| {
        let dir = TempDir::new("seek-dropped");
        let data: Vec<u8> = (0..200).map(|i| i as u8).collect();
        let path = dir.uncached_file("f", &data);
        one_pool_thread().block_on(async move {
            let mut file = pooled(std::fs::OpenOptions::new().read(true), &path);
            file.seek(SeekFrom::Start(20)).await.unwrap();
            let (release, held) = hold_the_pool();
            let mut buf = [0; 5];
            assert!(
                poll_then_drop(file.read(&mut buf), 1).is_none(),
                "the read is in flight"
            );
            assert_eq!(file.position(), 20);
            drop(release);
            held.await.unwrap();
            // The seek waits for that read and counts none of its bytes.
            assert_eq!(file.seek(SeekFrom::Current(5)).await.unwrap(), 25);
            file.read_exact(&mut buf).await.unwrap();
            assert_eq!(buf, [25, 26, 27, 28, 29]);
        });
    });
}

#[test]
fn write_then_seek_then_read_sees_the_write() {
    watchdog(|| {
        let dir = TempDir::new("write-seek-read");
        let path = dir.file("f", b"0123456789");
        ebbtide::block_on(async move {
            let mut file = open_rw(&path).await;
            let mut two = [0; 2];
            file.read_exact(&mut two).await.unwrap();
            // A write after a read goes at the position, not past the
            // read-ahead.
            file.write_all(b"ab").await.unwrap();
            assert_eq!(file.position(), 4);
            file.seek(SeekFrom::Start(0)).await.unwrap();
            let mut all = String::new();
            file.read_to_string(&mut all).await.unwrap();
            assert_eq!(all, "01ab456789");
        });
    });
}

#[test]
fn close_and_flush_wait_for_accepted_writes() {
    watchdog(|| {
        let dir = TempDir::new("close");
        let path = dir.path("f");
        let p = path.clone();
        one_pool_thread().block_on(async move {
            let mut file = pooled(std::fs::OpenOptions::new().write(true).create(true), &p);
            let (release, held) = hold_the_pool();
            // Accepted at once, written once the pool runs it.
            assert_eq!(file.write(HELLO).await.unwrap(), HELLO.len());
            assert!(
                poll_then_drop(file.flush(), 3).is_none(),
                "flush waits for the write"
            );
            drop(release);
            held.await.unwrap();
            file.flush().await.unwrap();
            assert_eq!(std::fs::read(&p).unwrap(), HELLO, "flushed");
            let (release, held) = hold_the_pool();
            file.write_all(b"!!").await.unwrap();
            assert!(
                poll_then_drop(file.close(), 3).is_none(),
                "close waits for the write"
            );
            drop(release);
            held.await.unwrap();
            file.close().await.unwrap();
        });
        assert_eq!(
            std::fs::read(&path).unwrap(),
            [HELLO, b"!!"].concat(),
            "closed"
        );
    });
}

#[test]
fn write_error_is_reported_by_the_next_flush() {
    watchdog(|| {
        let dir = TempDir::new("write-error");
        let path = dir.file("ro", b"read only");
        one_pool_thread().block_on(async move {
            let mut file = File::open(&path).await.unwrap();
            let (release, held) = hold_the_pool();
            // Accepted into the buffer: the OS says no only later.
            assert_eq!(file.write(b"data").await.unwrap(), 4);
            drop(release);
            held.await.unwrap();
            assert!(file.flush().await.is_err(), "the write's error");
            file.flush().await.unwrap();
            let mut back = String::new();
            file.seek(SeekFrom::Start(0)).await.unwrap();
            file.read_to_string(&mut back).await.unwrap();
            assert_eq!(back, "read only");
        });
    });
}

#[test]
fn seek_past_the_end_reads_nothing_and_a_write_leaves_a_hole() {
    watchdog(|| {
        let dir = TempDir::new("past-end");
        let path = dir.file("f", b"abc");
        let p = path.clone();
        ebbtide::block_on(async move {
            let mut file = open_rw(&p).await;
            assert_eq!(file.seek(SeekFrom::End(10)).await.unwrap(), 13);
            let mut buf = [0; 8];
            assert_eq!(file.read(&mut buf).await.unwrap(), 0);
            assert_eq!(file.position(), 13);
            file.write_all(b"z").await.unwrap();
            file.seek(SeekFrom::Start(1 << 40)).await.unwrap();
            assert_eq!(file.read(&mut buf).await.unwrap(), 0);
            file.close().await.unwrap();
        });
        let mut expect = b"abc".to_vec();
        expect.extend_from_slice(&[0; 10]);
        expect.push(b'z');
        assert_eq!(std::fs::read(&path).unwrap(), expect);
    });
}

#[test]
fn set_len_and_metadata_wait_for_the_pending_write() {
    watchdog_for(Duration::from_secs(60), || {
        let dir = TempDir::new("set-len");
        let path = dir.path("f");
        let chunk = vec![7u8; 2 << 20];
        let p = path.clone();
        let c = chunk.clone();
        one_pool_thread().block_on(async move {
            let mut file = pooled(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true),
                &p,
            );
            let (release, held) = hold_the_pool();
            assert_eq!(file.write(&c).await.unwrap(), c.len());
            // set_len waits for the accepted write: dropped while it waits,
            // it never started.
            assert!(poll_then_drop(file.set_len(10), 1).is_none());
            drop(release);
            held.await.unwrap();
            file.flush().await.unwrap();
            // Every job queued before this one has run (one pool thread).
            ebbtide::spawn_blocking(|| ()).await.unwrap();
            assert_eq!(std::fs::metadata(&p).unwrap().len(), c.len() as u64);
            // Awaited, it lands after the write, and moves no position.
            file.seek(SeekFrom::Start(0)).await.unwrap();
            assert_eq!(file.write(&c).await.unwrap(), c.len());
            file.set_len(10).await.unwrap();
            assert_eq!(std::fs::metadata(&p).unwrap().len(), 10);
            assert_eq!(file.position(), c.len() as u64);
        });
        // metadata: with two pool threads, a metadata that did not wait
        // would run beside the write.
        let rt = ebbtide::runtime::Runtime::builder()
            .worker_threads(1)
            .max_blocking_threads(2)
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut file = open_rw(&path).await;
            let chunk = vec![7u8; 8 << 20];
            file.set_max_buf_size(chunk.len());
            for round in 1..=8u64 {
                let (release1, held1) = hold_the_pool();
                let (release2, held2) = hold_the_pool();
                assert_eq!(file.write(&chunk).await.unwrap(), chunk.len());
                let mut meta = Box::pin(file.metadata());
                assert!(poll_then_drop(meta.as_mut(), 1).is_none());
                drop((release1, release2));
                let len = meta.await.unwrap().len();
                assert_eq!(len, round * chunk.len() as u64, "round {round}");
                held1.await.unwrap();
                held2.await.unwrap();
            }
        });
        rt.shutdown(Duration::from_secs(5));
    });
}

#[test]
fn try_clone_shares_the_position_as_std_does() {
    watchdog(|| {
        let dir = TempDir::new("clone");
        let path = dir.path("f");
        let std_path = dir.path("std");
        // What std does: duplicated handles share one cursor.
        let std_positions = {
            use std::io::{Seek, Write};
            let mut a = std::fs::File::create(&std_path).unwrap();
            let mut b = a.try_clone().unwrap();
            a.write_all(b"one ").unwrap();
            b.write_all(b"two").unwrap();
            let after_writes = (a.stream_position().unwrap(), b.stream_position().unwrap());
            b.seek(SeekFrom::Start(1)).unwrap();
            (after_writes, a.stream_position().unwrap())
        };
        let p = path.clone();
        let ours = ebbtide::block_on(async move {
            let mut a = open_rw(&p).await;
            let mut b = a.try_clone().await.unwrap();
            a.write_all(b"one ").await.unwrap();
            a.flush().await.unwrap();
            b.write_all(b"two").await.unwrap();
            b.flush().await.unwrap();
            let after_writes = (
                a.seek(SeekFrom::Current(0)).await.unwrap(),
                b.seek(SeekFrom::Current(0)).await.unwrap(),
            );
            b.seek(SeekFrom::Start(1)).await.unwrap();
            let moved = a.seek(SeekFrom::Current(0)).await.unwrap();
            // Reads through either move both.
            let mut buf = [0; 3];
            a.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ne ");
            (after_writes, moved)
        });
        assert_eq!(ours, std_positions);
        assert_eq!(ours, ((7, 7), 1));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&std_path).unwrap()
        );
    });
}

#[test]
fn owned_calls_and_the_stream_share_one_position() {
    watchdog(|| {
        let dir = TempDir::new("owned");
        let path = dir.file("f", b"0123456789");
        let p = path.clone();
        ebbtide::block_on(async move {
            let mut file = open_rw(&p).await;
            let mut two = [0; 2];
            file.read_exact(&mut two).await.unwrap();
            // The stream read ahead; read_owned hands out those bytes first.
            let BufResult(n, buf) = file.read_owned(Vec::with_capacity(3)).await;
            assert_eq!(n.unwrap(), 3);
            assert_eq!(buf, b"234");
            assert_eq!(file.position(), 5);
            // write_all_owned goes at the position and moves it.
            file.write_all_owned("xy").await.0.unwrap();
            assert_eq!(file.position(), 7);
            let mut rest = String::new();
            file.read_to_string(&mut rest).await.unwrap();
            assert_eq!(rest, "789");
            file.set_position(0);
            let mut all = String::new();
            file.read_to_string(&mut all).await.unwrap();
            assert_eq!(all, "01234xy789");
        });
    });
}

#[test]
fn dropped_owned_write_lands_before_the_next_operation() {
    watchdog(|| {
        let dir = TempDir::new("dropped-write");
        let path = dir.path("f");
        let ro = dir.file("ro", b"read only");
        one_pool_thread().block_on(async move {
            let mut file = open_rw(&path).await;
            file.write_all_owned("0000").await.0.unwrap();
            let (release, held) = hold_the_pool();
            // Started, then dropped in flight (the pool is held; an
            // overlapped write on Windows may complete at once): the
            // position counts it either way.
            let first = poll_then_drop(file.write_all_owned("0001"), 1);
            assert_eq!(file.position(), 8);
            // Waits for the one in flight, so it does not start while that
            // one is in flight.
            let second = poll_then_drop(file.write_all_owned("0002"), 1);
            let second_started = file.position() == 12;
            if cfg!(unix) {
                assert!(first.is_none() && second.is_none() && !second_started);
            }
            drop(release);
            held.await.unwrap();
            file.set_position(0);
            let mut all = String::new();
            file.read_to_string(&mut all).await.unwrap();
            let expect = if second_started {
                "000000010002"
            } else {
                "00000001"
            };
            assert_eq!(all, expect, "the dropped write landed before the read");

            // A dropped write's error goes to the next operation, and the
            // position goes back.
            let mut file = File::open(&ro).await.unwrap();
            let (release, held) = hold_the_pool();
            let done = poll_then_drop(file.write_all_owned("data"), 1);
            drop(release);
            held.await.unwrap();
            match done {
                // The pool's job (held): dropped in flight.
                None => assert!(file.flush().await.is_err(), "the dropped write's error"),
                // An overlapped write (Windows) may fail at once.
                Some(res) => assert!(res.0.is_err()),
            }
            assert_eq!(file.position(), 0, "back to where the write started");
        });
    });
}

#[test]
fn dropped_owned_read_leaves_the_position() {
    watchdog(|| {
        let dir = TempDir::new("dropped-owned-read");
        let path = dir.uncached_file("f", b"abcdef");
        one_pool_thread().block_on(async move {
            let mut file = pooled(std::fs::OpenOptions::new().read(true), &path);
            let (release, held) = hold_the_pool();
            assert!(poll_then_drop(file.read_owned(Vec::with_capacity(3)), 1).is_none());
            assert_eq!(file.position(), 0);
            drop(release);
            held.await.unwrap();
            let BufResult(n, buf) = file.read_owned(Vec::with_capacity(3)).await;
            assert_eq!(n.unwrap(), 3);
            assert_eq!(buf, b"abc", "the dropped read's bytes are read again");
            assert_eq!(file.position(), 3);
        });
    });
}

#[test]
fn file_dropped_with_an_accepted_write_still_writes_it() {
    watchdog(|| {
        let dir = TempDir::new("drop-file");
        let path = dir.path("f");
        let data = pattern(1 << 20, 5);
        let (p, d) = (path.clone(), data.clone());
        ebbtide::block_on(async move {
            let mut file = File::create(&p).await.unwrap();
            file.write_all(&d).await.unwrap();
            drop(file);
            // The op finishes on its own; wait for it without the file.
            while std::fs::metadata(&p).unwrap().len() < d.len() as u64 {
                ebbtide::time::sleep(Duration::from_millis(1)).await;
            }
        });
        assert!(std::fs::read(&path).unwrap() == data);
    });
}

// The scenarios of tokio's tests/fs_file.rs.

#[test]
fn basic_read() {
    watchdog(|| {
        let dir = TempDir::new("basic-read");
        let path = dir.file("f", HELLO);
        ebbtide::block_on(async move {
            let mut file = File::open(&path).await.unwrap();
            let mut buf = [0; 1024];
            let n = file.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], HELLO);
        });
    });
}

#[test]
fn basic_write_and_close() {
    watchdog(|| {
        let dir = TempDir::new("basic-write");
        let (a, b) = (dir.path("a"), dir.path("b"));
        let (pa, pb) = (a.clone(), b.clone());
        ebbtide::block_on(async move {
            let mut file = File::create(&pa).await.unwrap();
            file.write_all(HELLO).await.unwrap();
            file.flush().await.unwrap();
            let mut file = File::create(&pb).await.unwrap();
            file.write_all(HELLO).await.unwrap();
            file.close().await.unwrap();
        });
        assert_eq!(std::fs::read(a).unwrap(), HELLO);
        assert_eq!(std::fs::read(b).unwrap(), HELLO);
    });
}

#[test]
fn write_vectored_writes_every_slice() {
    watchdog(|| {
        let dir = TempDir::new("vectored");
        let path = dir.path("f");
        let p = path.clone();
        ebbtide::block_on(async move {
            let mut file = File::create(&p).await.unwrap();
            let n = file
                .write_vectored(&[IoSlice::new(HELLO), IoSlice::new(HELLO)])
                .await
                .unwrap();
            assert_eq!(n, HELLO.len() * 2);
            file.close().await.unwrap();
        });
        assert_eq!(std::fs::read(path).unwrap(), [HELLO, HELLO].concat());
    });
}

#[test]
fn rewind_after_seek_is_at_zero() {
    watchdog(|| {
        let dir = TempDir::new("rewind");
        let path = dir.path("f");
        ebbtide::block_on(async move {
            let mut file = File::create(&path).await.unwrap();
            file.seek(SeekFrom::Current(10)).await.unwrap();
            file.seek(SeekFrom::Start(0)).await.unwrap();
            assert_eq!(file.seek(SeekFrom::Current(0)).await.unwrap(), 0);
        });
    });
}

#[test]
fn read_seek_loop_yields_to_other_tasks() {
    watchdog(|| {
        let dir = TempDir::new("coop");
        let path = dir.file("f", HELLO);
        let rt = ebbtide::runtime::Runtime::builder()
            .current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            let spinner = ebbtide::spawn(async move {
                let mut file = File::open(&path).await.unwrap();
                let mut buf = [0; 1024];
                loop {
                    let _ = file.read(&mut buf).await.unwrap();
                    file.seek(SeekFrom::Start(0)).await.unwrap();
                }
            });
            // On one thread, this task runs only if the loop yields.
            assert_eq!(ebbtide::spawn(async { 7 }).await.unwrap(), 7);
            spinner.abort();
        });
    });
}

#[test]
fn write_to_clone() {
    watchdog(|| {
        let dir = TempDir::new("write-clone");
        let path = dir.path("f");
        let p = path.clone();
        ebbtide::block_on(async move {
            let file = File::create(&p).await.unwrap();
            let mut clone = file.try_clone().await.unwrap();
            clone.write_all(HELLO).await.unwrap();
            clone.flush().await.unwrap();
        });
        assert_eq!(std::fs::read(path).unwrap(), HELLO);
    });
}

#[test]
fn into_std_after_an_unflushed_write_and_try_into_std_when_idle() {
    watchdog(|| {
        use std::io::Write;
        let dir = TempDir::new("into-std");
        let (a, b) = (dir.path("a"), dir.path("b"));
        let (pa, pb) = (a.clone(), b.clone());
        ebbtide::block_on(async move {
            // from_std: a handle std can use (not overlapped, on Windows).
            let std_file = || std::fs::File::create(&pa).unwrap();
            let mut file = File::from_std(std_file());
            file.write_all(b"async ").await.unwrap();
            let mut std_file = file.into_std().await.unwrap();
            std_file.write_all(HELLO).unwrap();

            let file = File::from_std(std::fs::File::create(&pb).unwrap());
            let mut std_file = file.try_into_std().unwrap();
            std_file.write_all(HELLO).unwrap();
        });
        assert_eq!(std::fs::read(a).unwrap(), [&b"async "[..], HELLO].concat());
        assert_eq!(std::fs::read(b).unwrap(), HELLO);
    });
}

#[test]
fn files_opened_by_ebbtide_convert_to_std_where_std_can_use_them() {
    watchdog(|| {
        use std::io::Write;
        let dir = TempDir::new("into-std-opened");
        let path = dir.path("f");
        let p = path.clone();
        let converted = ebbtide::block_on(async move {
            let mut file = File::create(&p).await.unwrap();
            file.write_all(b"async ").await.unwrap();
            match file.into_std().await {
                Ok(mut std_file) => {
                    std_file.write_all(HELLO).unwrap();
                    true
                }
                // Windows: an overlapped handle; the write landed anyway.
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{e}");
                    false
                }
            }
        });
        assert_eq!(converted, cfg!(not(windows)));
        let expect: &[u8] = if converted {
            b"async hello world..."
        } else {
            b"async "
        };
        assert_eq!(std::fs::read(path).unwrap(), expect);
    });
}

#[test]
fn read_file_from_std() {
    watchdog(|| {
        let dir = TempDir::new("from-std");
        let path = dir.file("f", HELLO);
        ebbtide::block_on(async move {
            let mut file = File::from_std(std::fs::File::open(&path).unwrap());
            let mut buf = [0; 1024];
            let n = file.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], HELLO);
        });
    });
}

#[test]
fn empty_read_is_ready_at_once_and_is_not_eof() {
    watchdog(|| {
        let dir = TempDir::new("empty-read");
        let path = dir.file("f", HELLO);
        ebbtide::block_on(async move {
            let mut file = File::open(&path).await.unwrap();
            assert!(matches!(poll_then_drop(file.read(&mut []), 1), Some(Ok(0))));
            let mut buf = [0; 1024];
            let n = file.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], HELLO);
        });
    });
}

#[test]
fn max_buf_size_bounds_one_read_and_one_write() {
    watchdog(|| {
        let dir = TempDir::new("max-buf");
        let path = dir.file("f", HELLO);
        ebbtide::block_on(async move {
            let mut file = open_rw(&path).await;
            file.set_max_buf_size(1);
            let mut buf = [0; 1024];
            assert_eq!(file.read(&mut buf).await.unwrap(), 1);
            assert_eq!(file.write(HELLO).await.unwrap(), 1);
        });
    });
}

#[test]
fn debug_shows_the_std_file_and_the_position() {
    watchdog(|| {
        let dir = TempDir::new("debug");
        let path = dir.file("f", HELLO);
        ebbtide::block_on(async move {
            let mut file = File::open(&path).await.unwrap();
            let mut buf = [0; 4];
            file.read_exact(&mut buf).await.unwrap();
            let text = format!("{file:?}");
            assert!(text.starts_with("File { std: File {"), "{text}");
            assert!(text.contains("position: 4"), "{text}");
        });
    });
}
