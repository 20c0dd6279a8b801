//! Windows-only APIs: named pipes on overlapped I/O.

pub mod pipe;
