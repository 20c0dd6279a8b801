//! The public API's shape. Every public type of the crate can be named
//! from outside it: a type that is public but unreachable (a private `use`
//! in its module) fails to compile here. The socket types are `Send +
//! Sync` and their futures `Send`: one that is not fails to compile here.

mod common;

use std::time::Duration;

use common::net::tcp_pair;
use ebbtide::net::{TcpListener, TcpStream, UdpSocket};

#[cfg(unix)]
#[allow(clippy::too_many_arguments, dead_code)]
fn names_every_public_type(
    _: &mut ebbtide::runtime::Builder,
    _: &ebbtide::runtime::Runtime,
    _: &ebbtide::runtime::Handle,
    _: &ebbtide::runtime::EnterGuard<'_>,
    _: &ebbtide::runtime::Metrics,
    _: &ebbtide::runtime::ShutdownReport,
    _: &ebbtide::runtime::ShutdownRequested,
    _: &ebbtide::runtime::SpawnError,
    _: &ebbtide::runtime::TryCurrentError,
    _: &ebbtide::JoinHandle<()>,
    _: &ebbtide::JoinError,
    _: &ebbtide::YieldNow,
    _: &ebbtide::time::Sleep,
    _: &ebbtide::time::Timeout<std::future::Ready<()>>,
    _: &ebbtide::time::Elapsed,
    _: &ebbtide::time::Interval,
    _: ebbtide::time::MissedTickBehavior,
    _: &ebbtide::io::Async<std::net::TcpStream>,
    _: &ebbtide::io::BufResult<usize, Vec<u8>>,
    _: &ebbtide::net::TcpListener,
    _: &ebbtide::net::TcpStream,
    _: &ebbtide::net::UdpSocket,
    _: &ebbtide::io::Slice<Vec<u8>>,
    _: &dyn ebbtide::io::IoBuf,
    _: &ebbtide::process::Command,
    _: &ebbtide::process::Child,
    _: &ebbtide::process::ChildStdin,
    _: &ebbtide::process::ChildStdout,
    _: &ebbtide::process::ChildStderr,
    _: &ebbtide::process::ExitStatus,
    _: &ebbtide::process::Output,
    _: &ebbtide::process::Stdio,
    _: &ebbtide::net::UnixListener,
    _: &ebbtide::net::UnixStream,
    _: &ebbtide::net::UnixDatagram,
    _: &ebbtide::signal::Signals,
    _: &ebbtide::fs::File,
    _: &ebbtide::fs::OpenOptions,
    _: &ebbtide::fs::DirEntry,
    _: &ebbtide::fs::ReadDir,
) {
}

#[test]
fn a_builder_can_be_passed_by_name() {
    fn configure(b: &mut ebbtide::runtime::Builder) -> &mut ebbtide::runtime::Builder {
        b.worker_threads(1)
            .drain_timeout(Duration::from_millis(100))
    }
    let rt = configure(&mut ebbtide::runtime::Runtime::builder())
        .build()
        .unwrap();
    assert_eq!(rt.metrics().workers, 1);
}

#[test]
fn sockets_and_their_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<TcpListener>();
    send_sync::<TcpStream>();
    send_sync::<UdpSocket>();
    send_sync::<ebbtide::process::Child>();
    send_sync::<ebbtide::process::ChildStdin>();
    send_sync::<ebbtide::process::ChildStdout>();
    send_sync::<ebbtide::process::Command>();
    #[cfg(unix)]
    {
        send_sync::<ebbtide::net::UnixListener>();
        send_sync::<ebbtide::net::UnixStream>();
        send_sync::<ebbtide::net::UnixDatagram>();
    }
    let rt = common::current_thread();
    rt.block_on(async {
        let (a, _b) = tcp_pair().await;
        send(&a.read_owned(Vec::new()));
        send(&a.write_all_owned(Vec::new()));
        send(&TcpStream::connect("localhost:1"));
        send(&TcpListener::bind("127.0.0.1:0"));
        let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        send(&u.recv_from_owned(Vec::new()));
        send(&u.send_to_owned(Vec::new(), "127.0.0.1:9"));
    });
}
