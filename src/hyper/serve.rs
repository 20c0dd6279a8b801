//! [`serve`]: accept, serve HTTP/1.1 and HTTP/2, shut down gracefully
//! (module doc, "Graceful shutdown in `serve`").

use std::error::Error as StdError;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ::hyper::body::{Body, Incoming};
use ::hyper::service::Service;
use ::hyper::{Request, Response};
use hyper_util::server::conn::auto;

use super::{EbbtideExecutor, EbbtideIo, EbbtideTimer};
use crate::net::{TcpListener, TcpStream};
use crate::runtime::{shutdown_requested, Handle};

/// How long the accept loop backs off after an error that is not about one
/// connection (`EMFILE`, `ENFILE`, `ENOBUFS`): retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves HTTP on `listener` with `service` (one clone per connection)
/// until the runtime shuts down.
///
/// Each connection is served in its own task, HTTP/1.1 or HTTP/2 as the
/// client opens it (hyper-util's `server::conn::auto`, with
/// [`EbbtideExecutor`] and [`EbbtideTimer`]; `TCP_NODELAY` is set). When
/// [`shutdown_requested`] fires, it stops accepting, closes the listener
/// and shuts every connection down gracefully: requests in flight finish,
/// then the connections close. It returns once that is done, so
/// `rt.shutdown(deadline)` of a busy server reports every task completed
/// when the deadline is long enough for the requests in flight.
///
/// # Errors
///
/// None today: per-connection errors (a client that disconnects, a
/// malformed request) end that connection only, and `accept` errors are
/// retried (after a short back-off when they are not about one
/// connection). The `io::Result` leaves room for setup errors.
///
/// # Panics
///
/// When polled outside a runtime.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use http_body_util::Full;
/// use hyper::body::{Bytes, Incoming};
/// use hyper::{Request, Response};
///
/// let rt = ebbtide::runtime::Runtime::new()?;
/// let listener = rt.block_on(ebbtide::net::TcpListener::bind("127.0.0.1:0"))?;
/// let hello = hyper::service::service_fn(|_req: Request<Incoming>| async {
///     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("hello"))))
/// });
/// let server = rt.spawn(ebbtide::hyper::serve(listener, hello));
/// // ... serve requests, then:
/// let report = rt.shutdown(Duration::from_secs(5));
/// assert_eq!(report.cancelled, 0);
/// # drop(server);
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn serve<S, B>(listener: TcpListener, service: S) -> io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let handle = Handle::current();
    let mut builder = auto::Builder::new(EbbtideExecutor::new());
    builder.http1().timer(EbbtideTimer::new());
    builder.http2().timer(EbbtideTimer::new());
    let builder = Arc::new(builder);
    let open = Arc::new(OpenConnections::default());
    let mut shutdown = pin!(shutdown_requested());

    // Step 1: a connection, or shutdown.
    loop {
        let next = poll_fn(|cx| {
            if shutdown.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            listener.poll_accept(cx).map(Some)
        });
        match next.await {
            None => break,
            Some(Ok((stream, _peer))) => {
                // Step 2. Refused only once shutdown began: the stream is
                // dropped (closed) and the loop sees the shutdown next.
                let task = serve_connection(stream, builder.clone(), service.clone(), &open);
                if let Ok(h) = handle.try_spawn(task) {
                    h.detach();
                }
            }
            Some(Err(e)) if is_per_connection(&e) => {}
            Some(Err(_)) => {
                let back_off = crate::time::sleep(ACCEPT_BACKOFF);
                let mut back_off = pin!(back_off);
                poll_fn(|cx| match shutdown.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(()),
                    Poll::Pending => back_off.as_mut().poll(cx),
                })
                .await;
            }
        }
    }
    // Step 3: no more connections; step 5: wait for the open ones.
    drop(listener);
    poll_fn(|cx| open.poll_all_closed(cx)).await;
    Ok(())
}

/// Errors about one connection that failed before it was accepted: the
/// next one may be fine.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Steps 2–3 for one connection: serves it, and shuts it down gracefully
/// once the runtime's shutdown is requested.
fn serve_connection<S, B>(
    stream: TcpStream,
    builder: Arc<auto::Builder<EbbtideExecutor>>,
    service: S,
    open: &Arc<OpenConnections>,
) -> impl Future<Output = ()> + Send + 'static
where
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let guard = open.open();
    async move {
        let _guard = guard;
        // Nagle would hold back a response's last segment.
        let _ = stream.set_nodelay(true);
        let handle = Handle::current();
        let mut conn = pin!(builder.serve_connection(EbbtideIo::new(stream), service));
        let mut shutdown = pin!(shutdown_requested());
        let mut registered = false;
        let mut graceful = false;
        // The connection's own error (a client gone mid-request, a
        // malformed request) ends this connection only.
        let _ = poll_fn(|cx| {
            // The shutdown future registers this task's waker once; after
            // that an atomic load says whether to look again (no lock per
            // poll).
            if !graceful && (!registered || handle.is_shutting_down()) {
                registered = true;
                if shutdown.as_mut().poll(cx).is_ready() {
                    graceful = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            conn.as_mut().poll(cx)
        })
        .await;
    }
}

/// How many connections [`serve`] has open, and the waker of the accept
/// loop waiting for them to close (step 5).
#[derive(Default)]
struct OpenConnections {
    state: Mutex<(usize, Option<Waker>)>,
}

impl OpenConnections {
    fn open(self: &Arc<Self>) -> Closer {
        self.lock().0 += 1;
        Closer(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, Option<Waker>)> {
        // No user code runs under this lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn poll_all_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        if state.0 == 0 {
            return Poll::Ready(());
        }
        state.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// One open connection: closing it (its task ends, or is cancelled, or was
/// never spawned) wakes the accept loop when it was the last one.
struct Closer(Arc<OpenConnections>);

impl Drop for Closer {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.0.lock();
            state.0 -= 1;
            if state.0 == 0 {
                state.1.take()
            } else {
                None
            }
        };
        // Woken outside the lock.
        if let Some(w) = waker {
            w.wake();
        }
    }
}
