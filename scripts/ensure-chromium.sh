#!/usr/bin/env bash
# Makes sure Debian's chromium is installed (/usr/bin/chromium), for the dashboard's browser test and screenshot.
# Never downloads a browser of its own (no `npx playwright install`): apt only. Exits 0 when chromium is there.
set -u
if [ -x /usr/bin/chromium ]; then exit 0; fi
if ! command -v apt-get >/dev/null; then echo "ensure-chromium: no apt-get; install chromium by hand" >&2; exit 1; fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then sudo="sudo -n"; else echo "ensure-chromium: not root and no sudo" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq chromium >/dev/null
if [ -x /usr/bin/chromium ]; then echo "ensure-chromium: installed $(/usr/bin/chromium --version 2>/dev/null)"; exit 0; fi
echo "ensure-chromium: could not install chromium" >&2
exit 1
