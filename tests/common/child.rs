//! Tests that change process-wide state (seccomp filters, descriptor
//! limits) run in a child process: [`run_test_in_child`] runs one test of
//! the current binary again with a variable set, and [`seccomp`] installs a
//! filter there.

/// Runs this test binary's test `name` in a child process with `env` set,
/// asserts it succeeded, and returns its output.
pub(crate) fn run_test_in_child(name: &str, env: &str) -> std::process::Output {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(env, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Classic BPF for seccomp filters (`linux/filter.h`, `linux/seccomp.h`).
#[cfg(target_os = "linux")]
pub(crate) mod seccomp {
    /// One BPF instruction (`struct sock_filter`).
    #[repr(C)]
    pub(crate) struct Insn {
        code: u16,
        jt: u8,
        jf: u8,
        k: u32,
    }

    #[repr(C)]
    struct Prog {
        len: u16,
        filter: *const Insn,
    }

    /// Loads the 32-bit word at `offset` of `seccomp_data` (0: the syscall
    /// number; 16: the low half of the first argument).
    pub(crate) const fn load(offset: u32) -> Insn {
        Insn {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: offset,
        } // BPF_LD | BPF_W | BPF_ABS
    }

    /// Skips `skip` instructions unless the loaded word equals `k`.
    pub(crate) const fn unless_eq(k: u32, skip: u8) -> Insn {
        Insn {
            code: 0x15,
            jt: 0,
            jf: skip,
            k,
        } // BPF_JMP | BPF_JEQ | BPF_K
    }

    /// Skips `skip` instructions unless the loaded word has a bit of `k`.
    pub(crate) const fn unless_any_bit(k: u32, skip: u8) -> Insn {
        Insn {
            code: 0x45,
            jt: 0,
            jf: skip,
            k,
        } // BPF_JMP | BPF_JSET | BPF_K
    }

    /// Fails the syscall with `errno`.
    pub(crate) const fn fail(errno: i32) -> Insn {
        Insn {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x0005_0000 | errno as u32,
        } // RET ERRNO
    }

    /// Lets the syscall run.
    pub(crate) const fn allow() -> Insn {
        Insn {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000,
        } // RET ALLOW
    }

    /// Installs `filter` for this process's threads created from now on
    /// and the calling thread.
    pub(crate) fn install(filter: &[Insn]) {
        let prog = Prog {
            len: filter.len() as u16,
            filter: filter.as_ptr(),
        };
        // SAFETY: plain prctl calls; `prog` and `filter` outlive them.
        unsafe {
            assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
            assert_eq!(
                libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const Prog
                ),
                0,
                "seccomp: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}
