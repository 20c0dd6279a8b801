//! Named pipes on overlapped I/O (Windows; run under Wine by `.ci/run`).
#![cfg(windows)]

mod common;

use std::sync::Arc;

use ebbtide::io::BufResult;
use ebbtide::os::windows::pipe::{NamedPipeClient, NamedPipeServer};

fn name(tag: &str) -> String {
    format!(r"\\.\pipe\ebbtide-test-{tag}-{}", std::process::id())
}

fn checksum(bytes: &[u8], mut acc: u64) -> u64 {
    for &b in bytes {
        acc = acc.wrapping_mul(0x100_0000_01b3) ^ u64::from(b);
    }
    acc
}

#[test]
fn a_64_mib_echo_through_a_pipe_keeps_every_byte() {
    common::watchdog(|| {
        let rt = ebbtide::runtime::Runtime::builder()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            let name = name("echo");
            let server = NamedPipeServer::create(&name).unwrap();
            let client = Arc::new(NamedPipeClient::open(&name).unwrap());
            server.connect().await.unwrap();
            // The server echoes until the client closes its end.
            let echo = ebbtide::spawn(async move {
                let mut buf = Vec::with_capacity(64 * 1024);
                let mut total = 0usize;
                loop {
                    buf.clear();
                    let BufResult(n, b) = server.read_owned(buf).await;
                    let n = n.unwrap();
                    if n == 0 {
                        return total;
                    }
                    total += n;
                    let BufResult(res, b) = server.write_all_owned(b).await;
                    res.unwrap();
                    buf = b;
                }
            });
            const TOTAL: usize = 64 << 20;
            let writer = {
                let client = client.clone();
                ebbtide::spawn(async move {
                    let mut sent = 0usize;
                    let mut sum = 0xcbf2_9ce4_8422_2325u64;
                    let mut i = 0u8;
                    while sent < TOTAL {
                        let chunk: Vec<u8> = (0..(48 * 1024).min(TOTAL - sent))
                            .map(|j| i.wrapping_add(j as u8))
                            .collect();
                        i = i.wrapping_add(7);
                        sum = checksum(&chunk, sum);
                        sent += chunk.len();
                        client.write_all_owned(chunk).await.0.unwrap();
                    }
                    sum
                })
            };
            let mut received = 0usize;
            let mut sum = 0xcbf2_9ce4_8422_2325u64;
            let mut buf = Vec::with_capacity(64 * 1024);
            while received < TOTAL {
                buf.clear();
                let BufResult(n, b) = client.read_owned(buf).await;
                let n = n.unwrap();
                assert!(n > 0, "early EOF after {received} bytes");
                sum = checksum(&b, sum);
                received += n;
                buf = b;
            }
            let sent_sum = writer.await.unwrap();
            assert_eq!(received, TOTAL);
            assert_eq!(sum, sent_sum, "checksums differ");
            drop(client); // the server sees EOF
            assert_eq!(echo.await.unwrap(), TOTAL);
        });
        let m = rt.metrics();
        assert_eq!(m.ops_stale_completions, 0, "{m}");
        assert_eq!(m.ops_in_flight, 0, "{m}");
    });
}

#[test]
fn pipe_errors_carry_their_windows_codes() {
    common::watchdog(|| {
        ebbtide::block_on(async {
            let err = NamedPipeClient::open(name("missing")).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
            let name = name("busy");
            let server = NamedPipeServer::create(&name).unwrap();
            let _first = NamedPipeClient::open(&name).unwrap();
            // One instance, taken: ERROR_PIPE_BUSY (231).
            let err = NamedPipeClient::open(&name).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(231), "{err}");
            // (Windows refuses a second `create` of the same name, through
            // FILE_FLAG_FIRST_PIPE_INSTANCE; Wine 8 does not enforce it.)
            let second = NamedPipeServer::create_instance(&name).unwrap();
            let _other = NamedPipeClient::open(&name).unwrap();
            second.connect().await.unwrap();
            server.connect().await.unwrap();
            // No spare capacity: nothing to read into.
            let BufResult(n, _) = server.read_owned(Vec::new()).await;
            assert_eq!(n.unwrap(), 0);
        });
        // Outside a runtime: a clear error.
        let err = NamedPipeServer::create(name("outside")).unwrap_err();
        assert!(err.to_string().contains("outside a runtime"), "{err}");
    });
}

#[test]
fn a_64_mib_echo_through_the_futures_io_api_keeps_every_byte() {
    use ebbtide::io::{AsyncReadExt, AsyncWriteExt};
    common::watchdog(|| {
        let rt = ebbtide::runtime::Runtime::builder()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            let name = name("echo-io");
            let mut server = NamedPipeServer::create(&name).unwrap();
            let client = NamedPipeClient::open(&name).unwrap();
            server.connect().await.unwrap();
            let echo = ebbtide::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                let mut total = 0usize;
                loop {
                    let n = server.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return total;
                    }
                    total += n;
                    server.write_all(&buf[..n]).await.unwrap();
                    server.flush().await.unwrap();
                }
            });
            const TOTAL: usize = 64 << 20;
            let (mut rx, mut tx) = futures_lite::io::split(client);
            let writer = ebbtide::spawn(async move {
                let mut sum = 0xcbf2_9ce4_8422_2325u64;
                let mut sent = 0usize;
                let mut i = 0u8;
                while sent < TOTAL {
                    let chunk: Vec<u8> = (0..(40 * 1024 + 17).min(TOTAL - sent))
                        .map(|j| i.wrapping_add((j * 31) as u8))
                        .collect();
                    i = i.wrapping_add(3);
                    sum = checksum(&chunk, sum);
                    sent += chunk.len();
                    tx.write_all(&chunk).await.unwrap();
                }
                tx.flush().await.unwrap();
                (sum, tx)
            });
            let mut sum = 0xcbf2_9ce4_8422_2325u64;
            let mut received = 0usize;
            let mut buf = vec![0u8; 64 * 1024];
            while received < TOTAL {
                let n = rx.read(&mut buf).await.unwrap();
                assert!(n > 0, "early EOF after {received} bytes");
                sum = checksum(&buf[..n], sum);
                received += n;
            }
            let (sent_sum, tx) = writer.await.unwrap();
            assert_eq!(sum, sent_sum, "checksums differ");
            drop((rx, tx)); // the server sees EOF
            assert_eq!(echo.await.unwrap(), TOTAL);
        });
        let m = rt.metrics();
        assert_eq!(m.ops_stale_completions, 0, "{m}");
    });
}
