//! Owned buffers of `ebbtide::net` reads (`docs/ownership.md`): however a
//! read ends (completed, dropped after any number of polls, or pending when
//! the runtime is dropped) its buffer is dropped exactly once, and the
//! runtime's end closes the sockets.

mod common;

use std::future::Future;
use std::io::{Read, Write};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::net::tcp_with_std_peer;
use common::{watchdog, BufLedger, CountedBuf, Rng};
use ebbtide::io::BufResult;
use ebbtide::net::UdpSocket;
use ebbtide::runtime::Runtime;

/// Polls `fut` once with a waker that does nothing.
fn poll_now<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Starts `n` owned reads made by `read`, polls each a pseudo-random 0–3
/// times and drops it; before some, `feed` has the peer send data so those
/// complete. Returns how many completed.
async fn churn<Fut>(
    rng: &mut Rng,
    ledger: &Arc<BufLedger>,
    n: usize,
    mut read: impl FnMut(CountedBuf) -> Fut,
    mut feed: impl FnMut(),
) -> usize
where
    Fut: Future<Output = BufResult<usize, CountedBuf>>,
{
    let mut completed = 0;
    for _ in 0..n {
        let fed = rng.below(4) == 0;
        if fed {
            feed();
            // Let the reactor see the data: after a short stream read, the
            // next read waits for the readiness event instead of trying
            // `recv` (`reactor::source` step 6), and events are dispatched
            // only when the task yields. Without this, reads would stop
            // completing and the peer's blocking writes would fill the
            // socket buffer.
            ebbtide::yield_now().await;
        }
        let polls = rng.below(4);
        let mut fut = pin!(read(ledger.buf(64)));
        for _ in 0..polls {
            if let Poll::Ready(BufResult(res, buf)) = poll_now(fut.as_mut()) {
                assert!(res.unwrap() > 0);
                drop(buf);
                completed += 1;
                break;
            }
            if fed {
                // A read through a completion backend (the ring) completes
                // when the reactor reaps it: let the driver run between
                // polls (a timer wait surely does).
                ebbtide::time::sleep(std::time::Duration::from_micros(1)).await;
            }
        }
    }
    completed
}

#[test]
fn owned_reads_dropped_at_random_points_drop_each_buffer_exactly_once() {
    // 100,000 reads in all. Under Wine (how Windows is tested here) each
    // socket call is a round trip to wineserver: a read costs ~65 µs there
    // against ~3 µs natively, so 100,000 would take this one test ~7 s on
    // a fast machine; 10,000 (TCP and UDP: no Unix sockets) keeps it ~1 s.
    let (tcp, udp, unix) = if cfg!(windows) {
        (5_000, 5_000, 0)
    } else {
        (40_000, 30_000, 30_000)
    };
    let _ = unix;
    watchdog(move || {
        let ledger = BufLedger::new();
        let mut rng = Rng::new(0x5eed_0feb);
        let rt = common::current_thread();
        rt.block_on(async {
            let (s, mut peer) = tcp_with_std_peer().await;
            let done = churn(
                &mut rng,
                &ledger,
                tcp,
                |b| s.read_owned(b),
                || peer.write_all(&[1u8; 16]).unwrap(),
            )
            .await;
            assert!(done > 0, "some TCP reads complete");

            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let to = sock.local_addr().unwrap();
            let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let sock = &sock;
            let done = churn(
                &mut rng,
                &ledger,
                udp,
                move |b| async move { sock.recv_from_owned(b).await.map(|(n, _)| n) },
                || {
                    peer.send_to(&[2u8; 16], to).unwrap();
                },
            )
            .await;
            assert!(done > 0, "some UDP reads complete");

            #[cfg(unix)]
            {
                let (s, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
                let s = ebbtide::net::UnixStream::try_from(s).unwrap();
                let done = churn(
                    &mut rng,
                    &ledger,
                    unix,
                    |b| s.read_owned(b),
                    || peer.write_all(&[3u8; 16]).unwrap(),
                )
                .await;
                assert!(done > 0, "some Unix reads complete");
            }
        });
        // Reads through a completion backend (the ring) give their buffer
        // back when the kernel acknowledges the cancel: the runtime's
        // shutdown settles the last of them.
        let report = rt.shutdown(std::time::Duration::from_secs(5));
        assert_eq!(report.ops_leaked, 0, "{report}");
        assert_eq!(
            ledger.made.load(Ordering::SeqCst),
            if cfg!(unix) {
                tcp + udp + unix
            } else {
                tcp + udp
            }
        );
        ledger.assert_all_dropped_once();
    });
}

#[test]
fn a_runtime_dropped_with_reads_pending_drops_each_buffer_once_and_closes_sockets() {
    const EACH: usize = 8;
    watchdog(|| {
        let ledger = BufLedger::new();
        let started = Arc::new(AtomicUsize::new(0));
        let rt = Runtime::builder()
            .worker_threads(2)
            .drain_timeout(Duration::from_millis(20))
            .build()
            .unwrap();
        let mut tcp_peers = Vec::new();
        #[cfg(unix)]
        let mut unix_peers = Vec::new();
        rt.block_on(async {
            for _ in 0..EACH {
                let (s, peer) = tcp_with_std_peer().await;
                tcp_peers.push(peer);
                let (buf, task_started) = (ledger.buf(64), started.clone());
                ebbtide::spawn(async move {
                    task_started.fetch_add(1, Ordering::SeqCst);
                    let _ = s.read_owned(buf).await; // nothing is ever sent
                });

                let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let (buf, task_started) = (ledger.buf(64), started.clone());
                ebbtide::spawn(async move {
                    task_started.fetch_add(1, Ordering::SeqCst);
                    let _ = u.recv_from_owned(buf).await; // nothing is ever sent
                });

                #[cfg(unix)]
                {
                    let (s, peer) = std::os::unix::net::UnixStream::pair().unwrap();
                    unix_peers.push(peer);
                    let s = ebbtide::net::UnixStream::try_from(s).unwrap();
                    let (buf, task_started) = (ledger.buf(64), started.clone());
                    ebbtide::spawn(async move {
                        task_started.fetch_add(1, Ordering::SeqCst);
                        let _ = s.read_owned(buf).await; // nothing is ever sent
                    });
                }
            }
            // Every read is pending inside its task.
            let tasks = if cfg!(unix) { 3 * EACH } else { 2 * EACH };
            while started.load(Ordering::SeqCst) < tasks {
                ebbtide::yield_now().await;
            }
        });
        drop(rt);
        ledger.assert_all_dropped_once();
        // The sockets were closed with their tasks: each peer reads EOF.
        for mut p in tcp_peers {
            assert_eq!(p.read(&mut [0u8; 1]).unwrap(), 0);
        }
        #[cfg(unix)]
        for mut p in unix_peers {
            assert_eq!(p.read(&mut [0u8; 1]).unwrap(), 0);
        }
    });
}
