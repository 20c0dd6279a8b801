//! WebSockets on ebbtide with async-tungstenite: an echo server and its
//! clients in one process.
//!
//! `cargo run --example websocket_echo`: starts the server on an ephemeral
//! loopback port, runs three clients concurrently (each sends text and
//! binary messages, checks every echo, and closes with a close frame),
//! then shuts the runtime down and prints the shutdown report. Exits 0
//! when every echo matched (`docs/guide.md`, "WebSockets"; run by
//! `tests/guide_examples.rs`).
//!
//! No glue: async-tungstenite works on any futures-io stream, and
//! `ebbtide::net::TcpStream` is one. (For `wss://`, put a futures-rustls
//! stream in between, as in `examples/tls_echo.rs`.)

use std::error::Error;
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use ebbtide::net::{TcpListener, TcpStream};
use ebbtide::runtime::Runtime;
use futures_lite::StreamExt;

const CLIENTS: usize = 3;

type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let rt = Runtime::new()?;
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        println!("websocket_echo: listening on {addr}");

        // The server: one task per connection, echoing data messages.
        let server = ebbtide::spawn(async move {
            for _ in 0..CLIENTS {
                let (tcp, _) = listener.accept().await?;
                ebbtide::spawn(async move {
                    let mut ws = async_tungstenite::accept_async(tcp).await?;
                    while let Some(msg) = ws.next().await {
                        let msg = msg?;
                        if msg.is_text() || msg.is_binary() {
                            ws.send(msg).await?;
                        }
                        // A close frame is answered by tungstenite itself;
                        // the stream then ends.
                    }
                    Ok::<_, BoxError>(())
                });
            }
            Ok::<_, BoxError>(())
        });

        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| ebbtide::spawn(client(id, addr)))
            .collect();
        for c in clients {
            c.await.expect("a client task panicked")?;
        }
        server.await.expect("the server task panicked")?;
        Ok::<_, BoxError>(())
    })?;

    let report = rt.shutdown(Duration::from_secs(1));
    println!("websocket_echo: {report}");
    assert_eq!(report.cancelled, 0, "every connection task had finished");
    Ok(())
}

/// Connects, sends a text and a binary message, checks their echoes, and
/// closes.
async fn client(id: usize, addr: std::net::SocketAddr) -> Result<(), BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    let (mut ws, response) = async_tungstenite::client_async(format!("ws://{addr}/"), tcp).await?;
    assert_eq!(response.status(), 101); // Switching Protocols
    let sent = [
        Message::text(format!("hello from client {id}")),
        Message::binary(vec![id as u8; 1000]),
    ];
    for msg in sent {
        ws.send(msg.clone()).await?;
        let echo = ws.next().await.ok_or("the server closed early")??;
        assert_eq!(echo, msg);
    }
    ws.close(None).await?;
    // The server's close frame, then the end of the stream.
    while let Some(msg) = ws.next().await {
        assert!(msg?.is_close());
    }
    println!("websocket_echo: client {id}: 2 messages echoed");
    Ok(())
}
