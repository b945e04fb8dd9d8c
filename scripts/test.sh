#!/usr/bin/env bash
# The test command: installs missing tools, builds everything, runs every test in the workspace
# (unit tests, policy tests, end-to-end tests with real programs under the guard), then the
# CPython compatibility check (CPython's own OS-layer tests, bare vs guarded with an allow-all
# policy: the outcomes must be identical).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --workspace --release --locked
cargo test --workspace --release --locked
PROFILE=release tests/compat/cpython_regrtest.sh
./target/release/guardctl policy test
