#!/usr/bin/env bash
# Installs what a fresh machine lacks for the build and the end-to-end tests: a C compiler,
# Python 3, Node.js and a Go toolchain (cgo test programs). Idempotent; needs root for apt.
set -euo pipefail
need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v python3 >/dev/null || need+=(python3)
command -v node >/dev/null || need+=(nodejs)
command -v go >/dev/null || [ -x /usr/lib/go/bin/go ] || need+=(golang-go)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}"
fi
