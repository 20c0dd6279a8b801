//! A TCP echo server with graceful shutdown.
//!
//! `cargo run --release --example echo -- 127.0.0.1:7000`, then e.g.
//! `nc 127.0.0.1 7000`; Ctrl-C (or SIGTERM) stops intake, lets open
//! connections finish the message in flight, and prints the shutdown report.
//!
//! Connections are served with owned buffers (`read_owned` /
//! `write_all_owned`): one buffer per connection, moved into each read and
//! back out with its result.

use std::io;
use std::time::Duration;

use ebbtide::io::BufResult;
use ebbtide::net::{TcpListener, TcpStream};
use ebbtide::runtime::{shutdown_requested, Runtime};
use futures_lite::future;

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".into());
    let rt = Runtime::new()?;
    #[cfg(unix)]
    rt.handle()
        .shutdown_on_signals([ebbtide::signal::SIGINT, ebbtide::signal::SIGTERM])?;
    #[cfg(not(unix))]
    rt.handle().shutdown_on_ctrl_c()?;

    let served = rt.block_on(async {
        let listener = TcpListener::bind(addr.as_str()).await?;
        println!("echo: listening on {}", listener.local_addr()?);
        let mut connections = 0u64;
        loop {
            let accepted = future::or(async { Some(listener.accept().await) }, async {
                shutdown_requested().await;
                None
            })
            .await;
            match accepted {
                None => break, // shutting down: stop accepting
                Some(Ok((stream, peer))) => {
                    connections += 1;
                    stream.set_nodelay(true)?;
                    ebbtide::spawn(async move {
                        if let Err(e) = serve(stream).await {
                            eprintln!("echo: {peer}: {e}");
                        }
                    });
                }
                // Out of descriptors: back off instead of spinning; the
                // listener stays registered and accepting resumes.
                Some(Err(e)) if is_fd_exhaustion(&e) => {
                    eprintln!("echo: accept: {e}; backing off 100 ms");
                    ebbtide::time::sleep(Duration::from_millis(100)).await;
                }
                Some(Err(e)) => eprintln!("echo: accept: {e}"),
            }
        }
        io::Result::Ok(connections)
    })?;
    println!("echo: stopped accepting after {served} connections; draining");
    let report = rt.shutdown(Duration::from_secs(5));
    println!("echo: {report}");
    Ok(())
}

/// Echoes until EOF, or until shutdown starts (after finishing the message
/// in flight).
async fn serve(stream: TcpStream) -> io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        buf.clear();
        let read = future::or(async { Some(stream.read_owned(buf).await) }, async {
            shutdown_requested().await;
            None
        })
        .await;
        // A read dropped by shutdown took its buffer with it: nothing to
        // reuse, and nothing the kernel still holds (readiness I/O).
        let Some(BufResult(n, b)) = read else {
            return Ok(());
        };
        if n? == 0 {
            return Ok(());
        }
        let BufResult(res, b) = stream.write_all_owned(b).await;
        res?;
        buf = b;
    }
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}
