//! Many children at once: all reaped (no zombie), no descriptor leaked.
//! In its own test binary, so that no other test opens or closes
//! descriptors or spawns children meanwhile.
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::process::{open_fds, until, zombie_children};
use common::{watchdog, workers};
use ebbtide::process::Command;

#[test]
fn many_children_at_once_are_all_reaped_and_leak_no_descriptor() {
    watchdog(|| {
        let rt = workers(2);
        let n = 1000;
        let fds_before = open_fds();
        let pids = rt.block_on(async move {
            let tasks: Vec<_> = (0..n)
                .map(|i| {
                    ebbtide::spawn(async move {
                        let mut child = Command::new("sh")
                            .args(["-c", &format!("exit {}", i % 7)])
                            .spawn()
                            .unwrap();
                        let status = child.wait().await.unwrap();
                        assert_eq!(status.code(), Some((i % 7) as i32));
                        child.id()
                    })
                })
                .collect();
            let mut pids = Vec::new();
            for t in tasks {
                pids.push(t.await.unwrap());
            }
            pids
        });
        assert_eq!(pids.len(), n);
        assert_eq!(zombie_children(), Vec::<u32>::new());
        assert!(
            until(Duration::from_secs(5), || open_fds() <= fds_before),
            "descriptors leaked: {} before, {} after",
            fds_before,
            open_fds()
        );
    });
}
