//! `EMFILE` while spawning a child with pipes: a clear error, no descriptor
//! leaked, and spawning works again once descriptors are free. In its own
//! test binary: it lowers the process's descriptor limit.
#![cfg(unix)]

mod common;

use common::process::open_fds;
use common::{watchdog, workers};
use ebbtide::process::{Command, Stdio};

#[test]
fn spawning_at_the_descriptor_limit_is_a_clear_error_and_leaks_nothing() {
    watchdog(|| {
        let rt = workers(1);
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `old` is a valid out-pointer.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) }, 0);
        rt.block_on(async {
            let before = open_fds();
            // Room for a few descriptors, not for three pipes (six ends).
            let low = libc::rlimit {
                rlim_cur: (before + 2) as libc::rlim_t,
                rlim_max: old.rlim_max,
            };
            // SAFETY: a valid rlimit value.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
            let err = Command::new("true")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_err();
            // SAFETY: restores the limit read above.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) }, 0);
            let os = err
                .get_ref()
                .and_then(|e| e.source())
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .and_then(std::io::Error::raw_os_error);
            assert_eq!(os, Some(libc::EMFILE), "{err}");
            assert!(
                err.to_string().contains("\"true\""),
                "names the program: {err}"
            );
            assert_eq!(open_fds(), before, "a descriptor leaked");
            let status = Command::new("true")
                .stdout(Stdio::piped())
                .status()
                .await
                .unwrap();
            assert!(status.success());
        });
    });
}
