//! Every public type of the crate can be named from outside it: a type
//! that is public but unreachable (a private `use` in its module) fails to
//! compile here.

use std::time::Duration;

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
