#!/usr/bin/env bash
# One-time setup a fresh machine needs for the README's two commands and for
# .ci/run: rustfmt and clippy. (Wine, mingw and the cross targets are
# installed by ../shared/tools/windows-env.sh and cross-check.sh themselves.)
set -euo pipefail
have() { rustup component list --installed 2>/dev/null | grep -q "^$1"; }
for c in rustfmt clippy; do
  have "$c" || for i in 1 2 3; do rustup component add "$c" && break; sleep 5; done
done
