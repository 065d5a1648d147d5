#!/usr/bin/env bash
# System packages the test suite needs beyond the virtual environment; idempotent, called by .ci/run.
#   chromium  Debian's package, for the dashboard end-to-end test (tests/dashboard/test_browser.py).
# Installs only what is missing, so a second run costs nothing and needs no network.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "install-test-deps: chromium present ($("$CHROMIUM" --version 2>/dev/null | head -n1))"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: $CHROMIUM is missing and apt-get is not available; install Chromium by hand" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-test-deps: installing chromium needs root (or sudo)" >&2
        exit 1
    fi
fi

echo "install-test-deps: installing chromium (Debian package)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
"$CHROMIUM" --version 2>/dev/null | head -n1
