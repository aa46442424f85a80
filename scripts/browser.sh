#!/usr/bin/env bash
# Chromium from the OS packages, for the test that renders `backupctl report coverage --html` in a
# real headless browser (tests/it/coverage.rs). `install` is a no-op when one is already there.
#
#   scripts/browser.sh install   install Debian's chromium package if no Chromium is on PATH
#   scripts/browser.sh path      print the browser's path (exit 1 if none)
set -euo pipefail

find_browser() {
  command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || command -v google-chrome 2>/dev/null
}

case "${1:-install}" in
  install)
    if find_browser >/dev/null; then exit 0; fi
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "browser: installing chromium from the OS packages" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
    find_browser >/dev/null || { echo "browser: chromium did not install" >&2; exit 1; }
    ;;
  path)
    find_browser || { echo "browser: no Chromium on PATH (run scripts/browser.sh install)" >&2; exit 1; }
    ;;
  *)
    echo "usage: scripts/browser.sh install|path" >&2
    exit 2
    ;;
esac
