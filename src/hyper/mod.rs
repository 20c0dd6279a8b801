//! hyper 1.x on ebbtide (feature `hyper`): the I/O, executor and timer
//! adapters hyper needs, named like hyper-util's tokio ones
//! ([`EbbtideIo`] ~ `TokioIo`, [`EbbtideExecutor`] ~ `TokioExecutor`,
//! [`EbbtideTimer`] ~ `TokioTimer`), and [`serve`], an HTTP server loop
//! with graceful shutdown.
//!
//! # Reading into hyper's buffer
//!
//! hyper hands [`EbbtideIo`] the spare capacity of its read buffer,
//! uninitialised. How it is filled:
//!
//! 1. ebbtide's own [`TcpStream`](crate::net::TcpStream) and `UnixStream`
//!    `recv` straight into it (a crate-private read path of `net`): the
//!    kernel writes the bytes, nothing is zeroed first. The stream type is
//!    recognised by its `TypeId`, a comparison the compiler resolves per
//!    type, so this costs nothing at run time.
//! 2. Any other `futures-io` stream takes a `&mut [u8]`, so the bytes must
//!    be initialised before it sees them. hyper's cursor tracks how much of
//!    its buffer is initialised, so each byte is zeroed at most once per
//!    read; and only a *window* is zeroed and offered, not the whole spare
//!    capacity (which can be hundreds of KiB): 8 KiB at first, doubled
//!    after every read that fills it, as hyper's own read strategy grows.
//! 3. The cursor is advanced by the count the read returned, never more.
//!
//! Writes go to the stream's `poll_write`; hyper's vectored writes go to
//! `poll_write_vectored` (one `writev` on ebbtide's sockets, which report
//! `is_write_vectored`; a foreign stream reports it false, so hyper
//! flattens its buffers first rather than have a default
//! `poll_write_vectored` send only the first one).
//!
//! # Graceful shutdown in [`serve`]
//!
//! 1. The accept loop waits for a connection or for
//!    [`shutdown_requested`](crate::runtime::shutdown_requested), whichever
//!    comes first.
//! 2. Each connection is served in its own task by hyper-util's
//!    runtime-neutral `server::conn::auto` (HTTP/1.1, or HTTP/2 when the
//!    client opens with the HTTP/2 preface; only its hyper parts are used,
//!    no tokio).
//! 3. When shutdown is requested, the accept loop stops and the listener
//!    closes (new connections are refused by the kernel); every connection
//!    task calls hyper's `graceful_shutdown`: an idle HTTP/1.1 connection
//!    closes at once, a busy one after its response (with
//!    `connection: close`); HTTP/2 sends `GOAWAY` and finishes its open
//!    streams.
//! 4. HTTP/2 streams are tasks spawned by [`EbbtideExecutor`], which spawns
//!    even while the runtime drains: a stream the client opened before the
//!    `GOAWAY` is in-flight work. The runtime's drain waits for these tasks
//!    like any other, and its deadline still cancels them.
//! 5. [`serve`] returns once it has stopped accepting and every connection
//!    it accepted has closed; the runtime's drain sees no task left, so a
//!    `shutdown(deadline)` of a busy server reports every task completed.

mod io;
mod rt;
mod serve;

pub use io::EbbtideIo;
pub use rt::{EbbtideExecutor, EbbtideTimer};
pub use serve::serve;
