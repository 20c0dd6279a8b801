//! The socket ops of a completion backend that takes none (Windows' IOCP
//! backend, where sockets use AFD readiness, and the readiness-only
//! builds): each hands its argument back, and the caller uses readiness.

use crate::io::{BufResult, IoBuf, IoBufMut};
use crate::op::{
    AcceptOp, AcceptStash, DatagramStash, Op, OpContext, ReadStash, Received, RecvFromOp,
};

/// No completion backend for sockets: the caller uses readiness.
pub(crate) fn recv<B: IoBufMut>(
    _ctx: &OpContext,
    _socket: crate::sys::RawSource,
    buf: B,
    _stash: &std::sync::Arc<ReadStash>,
) -> Result<Op<Received<B>>, B> {
    Err(buf)
}

/// As [`recv`].
pub(crate) fn send<B: IoBuf>(
    _ctx: &OpContext,
    _socket: crate::sys::RawSource,
    buf: B,
) -> Result<Op<BufResult<usize, B>>, B> {
    Err(buf)
}

/// No completion backend for sockets: the caller uses readiness.
pub(crate) fn recv_from<B: IoBufMut>(
    _ctx: &OpContext,
    _socket: crate::sys::RawSource,
    buf: B,
    _stash: &std::sync::Arc<DatagramStash>,
) -> Result<RecvFromOp<B>, B> {
    Err(buf)
}

/// As [`recv_from`].
pub(crate) fn send_to<B: IoBuf>(
    _ctx: &OpContext,
    _socket: crate::sys::RawSource,
    buf: B,
    _target: &socket2::SockAddr,
) -> Result<Op<BufResult<usize, B>>, B> {
    Err(buf)
}

/// As [`recv_from`].
pub(crate) fn accept(
    _ctx: &OpContext,
    _socket: crate::sys::RawSource,
    _stash: &std::sync::Arc<AcceptStash>,
) -> Option<AcceptOp> {
    None
}

/// As [`recv_from`].
pub(crate) fn connect(
    _ctx: &OpContext,
    socket: socket2::Socket,
    _addr: socket2::SockAddr,
) -> Result<Op<BufResult<(), socket2::Socket>>, socket2::Socket> {
    Err(socket)
}
