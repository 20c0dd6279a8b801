//! A hyper hello-world on ebbtide, with graceful shutdown on Ctrl-C.
//!
//! `cargo run --release --example hello_hyper --features hyper -- 127.0.0.1:3000`
//!
//! The listen address is the first argument (default `127.0.0.1:3000`;
//! port 0 picks a free one); the address actually bound is printed as
//! `listening on http://ADDR`. Every request gets `Hello, world!`, over
//! HTTP/1.1 or HTTP/2 (`curl --http2-prior-knowledge`). Ctrl-C stops
//! accepting, lets the requests in flight finish, and prints the shutdown
//! report.

use std::convert::Infallible;
use std::time::Duration;

use ebbtide::net::TcpListener;
use ebbtide::runtime::{shutdown_requested, Handle, Runtime};
use futures_lite::future;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, world!",
    ))))
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let rt = Runtime::new()?;
    rt.block_on(async {
        let listener = TcpListener::bind(addr.as_str()).await?;
        println!("listening on http://{}", listener.local_addr()?);
        // Ctrl-C begins the runtime's shutdown; `serve` sees it and drains.
        let handle = Handle::current();
        ebbtide::spawn(async move {
            let ctrl_c = async {
                if ebbtide::signal::ctrl_c().await.is_ok() {
                    handle.begin_shutdown();
                }
            };
            future::or(ctrl_c, shutdown_requested()).await;
        })
        .detach();
        ebbtide::hyper::serve(listener, hyper::service::service_fn(hello)).await
    })?;
    println!("{}", rt.shutdown(Duration::from_secs(5)));
    Ok(())
}
