#!/usr/bin/env bash
# The test command: installs missing tools, builds everything, runs every test in the workspace
# (unit tests, policy tests, end-to-end tests with real programs under the guard).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --workspace --release --locked
cargo test --workspace --release --locked
./target/release/guardctl policy test
