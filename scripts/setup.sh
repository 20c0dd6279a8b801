#!/usr/bin/env bash
# One-time setup a fresh machine needs for the README's two commands and for
# .ci/run: rustfmt and clippy; nightly with miri and rust-src for the Miri
# job; the MSRV toolchain (Cargo.toml's rust-version) for the MSRV check.
# (Wine, mingw and the cross targets are installed by
# ../shared/tools/windows-env.sh and cross-check.sh themselves.)
set -euo pipefail
cd "$(dirname "$0")/.."
have() { rustup component list --installed 2>/dev/null | grep -q "^$1"; }
for c in rustfmt clippy; do
  have "$c" || for i in 1 2 3; do rustup component add "$c" && break; sleep 5; done
done
rustup toolchain list | grep -q '^nightly' || for i in 1 2 3; do rustup toolchain install nightly --profile minimal && break; sleep 5; done
for c in miri rust-src; do
  rustup +nightly component list --installed 2>/dev/null | grep -q "^$c" ||
    for i in 1 2 3; do rustup +nightly component add "$c" && break; sleep 5; done
done
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
rustup toolchain list | grep -q "^$msrv-" || for i in 1 2 3; do rustup toolchain install "$msrv" --profile minimal && break; sleep 5; done
# wrk loads the HTTP benchmark's servers (benches/http.rs, .ci/run's bench
# step); taskset (util-linux) pins them; perf (Debian's linux-perf) counts
# their system calls (raw_syscalls:sys_enter), strace where perf cannot.
apt_install() { # apt_install COMMAND PACKAGE: install PACKAGE unless COMMAND exists
  command -v "$1" >/dev/null || apt-get install -y "$2" >/dev/null 2>&1 ||
    { apt-get update >/dev/null 2>&1 && apt-get install -y "$2" >/dev/null 2>&1; }
}
apt_install wrk wrk || echo "setup: wrk not installed (the HTTP benchmark will say it is skipped)"
apt_install perf linux-perf || echo "setup: perf not installed (the HTTP benchmark counts syscalls with strace)"
apt_install strace strace || echo "setup: strace not installed"
