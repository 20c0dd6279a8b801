//! TCP reads where the OS gives no receive-queue hint: a plain `recv`.

use std::io;
use std::mem::MaybeUninit;
use std::net::TcpStream;

/// No hint to ask for here.
pub(crate) fn tcp_enable_queue_hint(_stream: &TcpStream) {}

/// One `recv` from `stream` into `buf`; never a queue hint, asked for or
/// not.
pub(crate) fn tcp_recv(
    stream: &TcpStream,
    buf: &mut [MaybeUninit<u8>],
    _hint: bool,
) -> io::Result<(usize, Option<usize>)> {
    Ok((socket2::SockRef::from(stream).recv(buf)?, None))
}
