//! TLS on ebbtide with futures-rustls: an echo server and its clients in
//! one process, over a self-signed certificate made at start (rcgen).
//!
//! `cargo run --example tls_echo`: starts the server on an ephemeral
//! loopback port, runs three clients concurrently (each sends a few lines
//! and checks the echo), then shuts the runtime down and prints the
//! shutdown report. Exits 0 when every echo matched (`docs/guide.md`,
//! "TLS"; run by `tests/guide_examples.rs`).
//!
//! No glue: futures-rustls works on any futures-io stream, and
//! `ebbtide::net::TcpStream` is one.
//!
//! Not built on macOS and iOS (`target_vendor = "apple"`): the TLS crates
//! it uses are dev-dependencies there only where the crate's cross-check can
//! compile ring's C code (see `Cargo.toml`).

#[cfg(not(target_vendor = "apple"))]
fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tls::main()
}

#[cfg(target_vendor = "apple")]
fn main() {
    println!("tls_echo: not built for Apple targets (see Cargo.toml)");
}

#[cfg(not(target_vendor = "apple"))]
mod tls {
    use std::error::Error;
    use std::sync::Arc;
    use std::time::Duration;

    use ebbtide::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    use ebbtide::net::{TcpListener, TcpStream};
    use ebbtide::runtime::Runtime;
    use futures_lite::io::BufReader;
    use futures_rustls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
    use futures_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
    use futures_rustls::{TlsAcceptor, TlsConnector};

    const CLIENTS: usize = 3;
    const LINES: [&str; 3] = ["hello", "over", "TLS"];

    type BoxError = Box<dyn Error + Send + Sync>;

    pub(crate) fn main() -> Result<(), BoxError> {
        // A certificate for "localhost", signed by its own key.
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
        let cert_der: CertificateDer<'static> = cert.cert.der().clone();
        let key_der = PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der());

        // One crypto provider, named explicitly (ring here).
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone()], key_der.into())?;
        let mut roots = RootCertStore::empty();
        roots.add(cert_der)?;
        let client_config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let acceptor = TlsAcceptor::from(Arc::new(server_config));
        let connector = TlsConnector::from(Arc::new(client_config));

        let rt = Runtime::new()?;
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            println!("tls_echo: listening on {addr}");

            // The server: one task per connection.
            let server = ebbtide::spawn(async move {
                for _ in 0..CLIENTS {
                    let (tcp, _) = listener.accept().await?;
                    let acceptor = acceptor.clone();
                    ebbtide::spawn(async move {
                        let tls = acceptor.accept(tcp).await?;
                        let (reader, mut writer) = futures_lite::io::split(tls);
                        // Echo until the client closes.
                        futures_lite::io::copy(reader, &mut writer).await?;
                        writer.close().await?;
                        Ok::<_, std::io::Error>(())
                    });
                }
                Ok::<_, std::io::Error>(())
            });

            // The clients, concurrently.
            let clients: Vec<_> = (0..CLIENTS)
                .map(|id| ebbtide::spawn(client(id, addr, connector.clone())))
                .collect();
            for c in clients {
                c.await.expect("a client task panicked")?;
            }
            server.await.expect("the server task panicked")?;
            Ok::<_, BoxError>(())
        })?;

        let report = rt.shutdown(Duration::from_secs(1));
        println!("tls_echo: {report}");
        assert_eq!(report.cancelled, 0, "every connection task had finished");
        Ok(())
    }

    /// Connects over TLS, sends `LINES` one by one and checks each echo.
    async fn client(
        id: usize,
        addr: std::net::SocketAddr,
        connector: TlsConnector,
    ) -> Result<(), BoxError> {
        let tcp = TcpStream::connect(addr).await?;
        let tls = connector
            .connect(ServerName::try_from("localhost")?, tcp)
            .await?;
        let mut tls = BufReader::new(tls);
        for line in LINES {
            tls.get_mut()
                .write_all(format!("{id}: {line}\n").as_bytes())
                .await?;
            let mut echo = String::new();
            tls.read_line(&mut echo).await?;
            assert_eq!(echo, format!("{id}: {line}\n"));
        }
        // close_notify, then the server's own close: read to the end.
        tls.get_mut().close().await?;
        let mut rest = Vec::new();
        tls.read_to_end(&mut rest).await?;
        assert!(rest.is_empty());
        println!("tls_echo: client {id}: {} lines echoed", LINES.len());
        Ok(())
    }
}
