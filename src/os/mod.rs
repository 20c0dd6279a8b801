//! Platform-specific APIs.

#[cfg(windows)]
pub mod windows;
