//! `ebbtide::hyper` (feature `hyper`): hyper's own client against
//! `serve` — HTTP/1.1 keep-alive, HTTP/2 multiplexing, bodies larger than
//! a read buffer (over ebbtide's sockets and over a foreign futures-io
//! stream), a client gone mid-body, and graceful shutdown under load.
#![cfg(feature = "hyper")]

mod common;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::net::{checksum, pattern};
use common::{watchdog, workers};
use ebbtide::hyper::{serve, EbbtideExecutor, EbbtideIo};
use ebbtide::io::AsyncWriteExt;
use ebbtide::net::{TcpListener, TcpStream};
use ebbtide::runtime::Runtime;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper::{Request, Response, StatusCode};

/// What the test service saw.
struct State {
    /// Service clones: one per accepted connection.
    connections: AtomicUsize,
    /// `/wait` requests that reached the handler.
    waiting: AtomicUsize,
    /// `/wait` handlers release everyone once this many arrived.
    barrier: usize,
    gate_tx: async_channel::Sender<()>,
    gate_rx: async_channel::Receiver<()>,
    /// `/echo` requests whose handler started, and whose body failed.
    echo_started: AtomicUsize,
    body_errors: AtomicUsize,
}

impl State {
    fn new(barrier: usize) -> Arc<State> {
        let (gate_tx, gate_rx) = async_channel::bounded(1);
        Arc::new(State {
            connections: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            barrier,
            gate_tx,
            gate_rx,
            echo_started: AtomicUsize::new(0),
            body_errors: AtomicUsize::new(0),
        })
    }

    /// Lets every `/wait` handler answer.
    fn open_gate(&self) {
        self.gate_tx.close();
    }
}

/// `/` answers "hello"; `/echo` collects the body and sends it back;
/// `/wait` answers "done" once the gate opens.
struct App(Arc<State>);

impl Clone for App {
    fn clone(&self) -> App {
        self.0.connections.fetch_add(1, SeqCst);
        App(self.0.clone())
    }
}

type BoxFut = Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, hyper::Error>> + Send>>;

impl Service<Request<Incoming>> for App {
    type Response = Response<Full<Bytes>>;
    type Error = hyper::Error;
    type Future = BoxFut;

    fn call(&self, req: Request<Incoming>) -> BoxFut {
        let state = self.0.clone();
        Box::pin(async move {
            let body = match req.uri().path() {
                "/echo" => {
                    state.echo_started.fetch_add(1, SeqCst);
                    match req.into_body().collect().await {
                        Ok(b) => b.to_bytes(),
                        Err(e) => {
                            state.body_errors.fetch_add(1, SeqCst);
                            return Err(e);
                        }
                    }
                }
                "/wait" => {
                    if state.waiting.fetch_add(1, SeqCst) + 1 >= state.barrier {
                        state.open_gate();
                    }
                    let _ = state.gate_rx.recv().await; // Err once closed
                    Bytes::from_static(b"done")
                }
                _ => Bytes::from_static(b"hello"),
            };
            Ok(Response::new(Full::new(body)))
        })
    }
}

/// A server on `rt` (listening on loopback) serving [`App`].
fn start(rt: &Runtime, state: &Arc<State>) -> (SocketAddr, ebbtide::JoinHandle<io::Result<()>>) {
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = App(state.clone());
    (addr, rt.spawn(serve(listener, app)))
}

type H1 = hyper::client::conn::http1::SendRequest<Full<Bytes>>;
type H2 = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

/// An HTTP/1.1 client connection over `io`, its driver spawned.
async fn h1_over<T>(io: T) -> H1
where
    T: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = hyper::client::conn::http1::handshake(EbbtideIo::new(io))
        .await
        .unwrap();
    ebbtide::spawn(conn).detach();
    send
}

async fn h1(addr: SocketAddr) -> H1 {
    h1_over(TcpStream::connect(addr).await.unwrap()).await
}

async fn h2(addr: SocketAddr) -> H2 {
    let io = EbbtideIo::new(TcpStream::connect(addr).await.unwrap());
    let (send, conn) = hyper::client::conn::http2::handshake(EbbtideExecutor::new(), io)
        .await
        .unwrap();
    ebbtide::spawn(conn).detach();
    send
}

fn request(path: &str, body: Bytes) -> Request<Full<Bytes>> {
    Request::post(format!("http://localhost{path}"))
        .body(Full::new(body))
        .unwrap()
}

async fn body_of(res: Response<Incoming>) -> (StatusCode, Bytes) {
    let status = res.status();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

/// Waits (polling, bounded by the watchdog) until `cond` holds.
fn wait_until(cond: impl Fn() -> bool) {
    while !cond() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn http1_keep_alive_serves_many_requests_on_one_connection() {
    watchdog(|| {
        let (server, client) = (workers(2), workers(1));
        let state = State::new(usize::MAX);
        let (addr, _server) = start(&server, &state);
        let bodies = client.block_on(async move {
            let mut send = h1(addr).await;
            let mut bodies = Vec::new();
            for _ in 0..100 {
                send.ready().await.unwrap();
                let res = send.send_request(request("/", Bytes::new())).await.unwrap();
                bodies.push(body_of(res).await);
            }
            bodies
        });
        assert_eq!(bodies.len(), 100);
        assert!(bodies
            .iter()
            .all(|(s, b)| *s == StatusCode::OK && &b[..] == b"hello"));
        assert_eq!(
            state.connections.load(SeqCst),
            1,
            "one connection, kept alive"
        );
        let report = server.shutdown(Duration::from_secs(10));
        assert_eq!(report.cancelled, 0, "{report}");
    });
}

#[test]
fn http2_multiplexes_concurrent_streams_on_one_connection() {
    const STREAMS: usize = 32;
    watchdog(|| {
        let (server, client) = (workers(2), workers(2));
        // Every handler waits until all STREAMS are inside a handler at
        // once: only concurrent streams get past it.
        let state = State::new(STREAMS);
        let (addr, _server) = start(&server, &state);
        let bodies = client.block_on(async move {
            let send = h2(addr).await;
            let calls: Vec<_> = (0..STREAMS)
                .map(|_| {
                    let mut send = send.clone();
                    ebbtide::spawn(async move {
                        let res = send.send_request(request("/wait", Bytes::new())).await;
                        body_of(res.unwrap()).await
                    })
                })
                .collect();
            let mut bodies = Vec::new();
            for c in calls {
                bodies.push(c.await.unwrap());
            }
            bodies
        });
        assert!(bodies
            .iter()
            .all(|(s, b)| *s == StatusCode::OK && &b[..] == b"done"));
        assert_eq!(state.waiting.load(SeqCst), STREAMS);
        assert_eq!(state.connections.load(SeqCst), 1, "one HTTP/2 connection");
        let report = server.shutdown(Duration::from_secs(10));
        assert_eq!(report.cancelled, 0, "{report}");
    });
}

/// 8 MiB each way: many reads into hyper's buffer, checksummed.
fn echo_large_body(client_io: fn(SocketAddr) -> Pin<Box<dyn Future<Output = H1> + Send>>) {
    const LEN: usize = 8 << 20;
    let (server, client) = (workers(2), workers(2));
    let state = State::new(usize::MAX);
    let (addr, _server) = start(&server, &state);
    let data = Bytes::from(pattern(7, LEN));
    let sent = checksum(&data);
    let (status, got) = client.block_on(async move {
        let mut send = client_io(addr).await;
        let res = send.send_request(request("/echo", data)).await.unwrap();
        body_of(res).await
    });
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got.len(), LEN);
    assert_eq!(checksum(&got), sent);
    let report = server.shutdown(Duration::from_secs(10));
    assert_eq!(report.cancelled, 0, "{report}");
}

#[test]
fn echoes_a_body_larger_than_a_read_buffer_intact() {
    watchdog(|| echo_large_body(|addr| Box::pin(h1(addr))));
}

/// A futures-io stream ebbtide does not know: `EbbtideIo` takes its
/// zero-a-window read path.
struct Foreign(TcpStream);

impl futures_lite::AsyncRead for Foreign {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl futures_lite::AsyncWrite for Foreign {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

#[test]
fn echoes_a_large_body_intact_over_a_foreign_futures_io_stream() {
    watchdog(|| {
        echo_large_body(|addr| {
            Box::pin(async move { h1_over(Foreign(TcpStream::connect(addr).await.unwrap())).await })
        })
    });
}

#[test]
fn client_gone_mid_body_ends_its_connection_task_and_frees_everything() {
    watchdog(|| {
        let (server, client) = (workers(2), workers(1));
        let state = State::new(usize::MAX);
        let (addr, _server) = start(&server, &state);
        let baseline = server.metrics();
        let raw = client.block_on(async move {
            let mut raw = TcpStream::connect(addr).await.unwrap();
            let head = "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1048576\r\n\r\n";
            raw.write_all(head.as_bytes()).await.unwrap();
            raw.write_all(&pattern(1, 64 << 10)).await.unwrap();
            raw.flush().await.unwrap();
            raw
        });
        // The handler is reading the body: then the client vanishes.
        wait_until(|| state.echo_started.load(SeqCst) == 1);
        drop(raw);
        wait_until(|| state.body_errors.load(SeqCst) == 1);
        wait_until(|| {
            let m = server.metrics();
            m.alive_tasks == baseline.alive_tasks && m.io_sources == baseline.io_sources
        });
        // Only `serve` and the test hold the state: the connection's
        // service clone is gone with its task.
        wait_until(|| Arc::strong_count(&state) == 2);
        let m = server.metrics();
        assert_eq!(m.panicked_tasks, 0);
        assert_eq!(m.timers, baseline.timers, "no timer left behind");
        let report = server.shutdown(Duration::from_secs(10));
        assert_eq!(report.cancelled, 0, "{report}");
    });
}

/// Requests in flight when `shutdown` starts: all answered, every task
/// completed, none cancelled; the listener is closed afterwards.
fn graceful_shutdown_under_load(http2: bool) {
    const REQUESTS: usize = 16;
    let (server, client) = (workers(2), workers(2));
    let state = State::new(usize::MAX);
    let (addr, serve_task) = start(&server, &state);
    // The handlers are released only once shutdown has begun.
    let releaser = {
        let state = state.clone();
        server.spawn(async move {
            ebbtide::runtime::shutdown_requested().await;
            state.open_gate();
        })
    };
    // The clients keep their connections (their `SendRequest`s) open
    // until after the shutdown: only the server's graceful shutdown
    // closes them.
    let (calls, _h2_send) = client.block_on(async move {
        let mut calls = Vec::new();
        let h2_send = if http2 { Some(h2(addr).await) } else { None };
        for _ in 0..REQUESTS {
            let call = match &h2_send {
                Some(send) => {
                    let mut send = send.clone();
                    ebbtide::spawn(async move {
                        let res = send.send_request(request("/wait", Bytes::new())).await;
                        (body_of(res.unwrap()).await, None)
                    })
                }
                None => ebbtide::spawn(async move {
                    let mut send = h1(addr).await;
                    let res = send.send_request(request("/wait", Bytes::new())).await;
                    (body_of(res.unwrap()).await, Some(send))
                }),
            };
            calls.push(call);
        }
        (calls, h2_send)
    });
    wait_until(|| state.waiting.load(SeqCst) == REQUESTS);

    let report = server.shutdown(Duration::from_secs(20));

    assert_eq!(report.cancelled, 0, "{report}");
    let conns = if http2 { 1 } else { REQUESTS };
    // serve + the releaser + one task per connection (+ HTTP/2 streams).
    assert!(report.completed >= (2 + conns) as u64, "{report}");
    assert!(serve_task.is_finished() && releaser.is_finished());
    let (bodies, _h1_sends): (Vec<_>, Vec<_>) = client.block_on(async move {
        let mut out = Vec::new();
        for c in calls {
            out.push(c.await.unwrap());
        }
        out.into_iter().unzip()
    });
    assert_eq!(bodies.len(), REQUESTS);
    assert!(bodies
        .iter()
        .all(|(s, b)| *s == StatusCode::OK && &b[..] == b"done"));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the listener is closed after shutdown"
    );
}

#[test]
fn graceful_shutdown_completes_http1_requests_in_flight() {
    watchdog(|| graceful_shutdown_under_load(false));
}

#[test]
fn graceful_shutdown_completes_http2_streams_in_flight() {
    watchdog(|| graceful_shutdown_under_load(true));
}

#[test]
fn executor_still_runs_hyper_work_spawned_while_the_runtime_drains() {
    watchdog(|| {
        let rt = workers(2);
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        rt.spawn(async move {
            ebbtide::runtime::shutdown_requested().await;
            // As hyper does for an HTTP/2 stream opened before its GOAWAY.
            hyper::rt::Executor::execute(&EbbtideExecutor::new(), async move {
                ebbtide::yield_now().await;
                r.fetch_add(1, SeqCst);
            });
        })
        .detach();
        let report = rt.shutdown(Duration::from_secs(10));
        assert_eq!(ran.load(SeqCst), 1, "the stream's task ran to the end");
        assert_eq!(report.cancelled, 0, "{report}");
        assert_eq!(report.completed, 2, "{report}");
    });
}
