#!/usr/bin/env bash
# Smoke test of the installed Linux package, as a user would get it:
#   build the .deb (or take the one given), install it, check its files and libraries, run the
#   installed `pixcrawler self-test` headless with no redis-server on PATH (the bundled server
#   must be used) and nothing unexpected on stderr, time the first window and a worker start,
#   then purge the package and check that nothing is left in /opt or /usr.
#
#   packaging/smoke_test.sh [path/to/pixcrawler_X_arch.deb]
#
# Needs root (or sudo) for dpkg. Refuses to run when pixcrawler is already installed, so it
# never replaces someone's installation. Exit 0 when every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "SMOKE FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
SUDO=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || fail "run as root or install sudo"
  SUDO=(sudo)
fi
if dpkg -s pixcrawler >/dev/null 2>&1; then
  fail "pixcrawler is already installed here; remove it first (dpkg -r pixcrawler)"
fi

DEB="${1:-}"
if [ -z "$DEB" ]; then
  step "building"
  uv run python packaging/build.py
  DEB="$(ls -t dist/pixcrawler_*.deb | head -n 1)"
fi
[ -f "$DEB" ] || fail "no package at $DEB"
DEB="$(readlink -f "$DEB")"

WORK="$(mktemp -d -t pixcrawler-smoke-XXXXXX)"
INSTALLED=0
cleanup() {
  if [ "$INSTALLED" = 1 ]; then "${SUDO[@]}" dpkg --purge pixcrawler >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step "installing $(basename "$DEB") ($(du -h "$DEB" | cut -f1))"
opt_before="$(ls -A /opt 2>/dev/null || true)"
# apt resolves the Depends line (and fails clearly if one is missing); dpkg -i would not.
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
  "$DEB" >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "installation failed"; }
INSTALLED=1
installed_kib="$(dpkg-query -W -f='${Installed-Size}' pixcrawler)"

step "checking the installed files"
[ "$(readlink /usr/bin/pixcrawler)" = /opt/pixcrawler/pixcrawler ] || fail "/usr/bin/pixcrawler"
for f in /usr/bin/pixcrawler-gui /usr/share/applications/pixcrawler.desktop \
  /usr/share/icons/hicolor/scalable/apps/pixcrawler.svg \
  /usr/share/icons/hicolor/256x256/apps/pixcrawler.png \
  /opt/pixcrawler/_internal/redis/valkey-server /opt/pixcrawler/_internal/redis/LICENSE-valkey.txt; do
  [ -e "$f" ] || fail "missing $f"
done
[ -x /opt/pixcrawler/_internal/redis/valkey-server ] || fail "the bundled server is not executable"
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate /usr/share/applications/pixcrawler.desktop || fail "desktop entry"
fi
# Every shared library the programs and plugins link to resolves on this system (Wayland's are
# only recommended: without them Qt uses xcb).
missing="$(find /opt/pixcrawler -type f \( -name '*.so*' -o -name pixcrawler -o -name valkey-server \) \
  -exec env LD_LIBRARY_PATH=/opt/pixcrawler/_internal ldd {} \; 2>/dev/null \
  | grep 'not found' | grep -v 'libwayland-' | sort -u || true)"
[ -z "$missing" ] || fail "unresolved libraries:
$missing"

# A user account with nothing set up: empty home, no Redis on PATH, a local broker URL where
# nothing listens, so the self-test must start the server shipped in the package.
HOME_DIR="$WORK/home"
EMPTY_BIN="$WORK/bin"
mkdir -p "$HOME_DIR" "$EMPTY_BIN"
FREE_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
user_env=(env -i "HOME=$HOME_DIR" "PATH=$EMPTY_BIN" LANG=C.UTF-8
  "PIXCRAWLER_CELERY_BROKER_URL=redis://127.0.0.1:$FREE_PORT/0"
  "PIXCRAWLER_CELERY_RESULT_BACKEND=redis://127.0.0.1:$FREE_PORT/1")
if "${user_env[@]}" /bin/sh -c 'command -v redis-server || command -v valkey-server' >/dev/null; then
  fail "a Redis server is on the test PATH"
fi

step "running the installed self-test"
rc=0
"${user_env[@]}" /usr/bin/pixcrawler self-test >"$WORK/selftest.out" 2>"$WORK/selftest.err" || rc=$?
cat "$WORK/selftest.out"
if [ -s "$WORK/selftest.err" ]; then
  echo "--- stderr:"; cat "$WORK/selftest.err"
  fail "the self-test wrote to stderr"
fi
[ "$rc" = 0 ] || fail "the self-test exited with $rc"
grep -q '^PASS  redis .*(/opt/pixcrawler/_internal/redis/valkey-server)' "$WORK/selftest.out" \
  || fail "the self-test did not use the bundled server"
grep -q '^PASS  image decoders .*WebP scaled by libwebp;' "$WORK/selftest.out" \
  || fail "the package decodes WebP without the libwebp it ships"
grep -q '^PASS  image decoders .*PNG inflated by zlib-ng' "$WORK/selftest.out" \
  || fail "the package inflates PNG data without zlib-ng"
! grep -q '^FAIL' "$WORK/selftest.out" || fail "a step failed"
worker_ready="$(sed -n 's/^PASS  worker .* answered \([0-9.]*\) s after its launch$/\1/p' "$WORK/selftest.out")"
[ -n "$worker_ready" ] || fail "no worker start time in the self-test output"
# Helpers (the pool's semaphore tracker) end when they see the self-test gone: allow them 10 s.
for _ in $(seq 50); do pgrep -f /opt/pixcrawler/ >/dev/null || break; sleep 0.2; done
if pgrep -f /opt/pixcrawler/ >/dev/null; then
  pgrep -af /opt/pixcrawler/ || true
  fail "processes of the package still run after the self-test"
fi

step "timing the first window (offscreen)"
gui_cmd="env -i HOME=$HOME_DIR PATH=$EMPTY_BIN LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen \
PIXCRAWLER_CELERY_BROKER_URL=redis://127.0.0.1:$FREE_PORT/0 \
/usr/bin/pixcrawler gui --screenshot $WORK/window.png"
timing="$(python3 - "$gui_cmd" <<'EOF'
import re, shlex, subprocess, sys, time
started = time.monotonic()
run = subprocess.run(shlex.split(sys.argv[1]), capture_output=True, text=True, timeout=60)
if run.returncode != 0:
    sys.exit(f"the app exited with {run.returncode}:\n{run.stderr}")
drawn = re.search(r"first drawn ([0-9.]+) s after the program started", run.stdout)
print(f"{time.monotonic() - started:.2f} {drawn.group(1) if drawn else 'n/a'}")
EOF
)"
read -r start_s drawn_s <<<"$timing"
[ -s "$WORK/window.png" ] || fail "no screenshot of the main window"
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 1 --runs 5 --export-json "$WORK/gui.json" "$gui_cmd" >/dev/null 2>"$WORK/hyperfine.err"
  start_mean="$(python3 -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))["results"][0]["mean"])' "$WORK/gui.json")"
else
  start_mean="n/a (hyperfine not installed)"
fi

step "timing a double-click to a worker ready (first run, offscreen)"
# The app's first run starts one worker by re-running itself; measured until it answers a ping.
uv run --frozen python -m bench.app_start --exe /usr/bin/pixcrawler --runs 3 \
  --redis-server /opt/pixcrawler/_internal/redis/valkey-server >"$WORK/app_start.json" \
  || { cat "$WORK/app_start.json"; fail "the installed app's worker did not come up"; }
app_ready="$(python3 - "$WORK/app_start.json" <<'EOF'
import json, sys
ready = json.load(open(sys.argv[1]))["worker_ready_s"]
print(f"{ready['first']} s first run, {ready['median']} s median of 3")
EOF
)"
for _ in $(seq 50); do pgrep -f /opt/pixcrawler/ >/dev/null || break; sleep 0.2; done
if pgrep -f /opt/pixcrawler/ >/dev/null; then
  pgrep -af /opt/pixcrawler/ || true
  fail "processes of the package still run after the app closed"
fi

step "removing the package"
"${SUDO[@]}" dpkg --purge pixcrawler >"$WORK/remove.log" 2>&1 || { cat "$WORK/remove.log"; fail "dpkg --purge"; }
INSTALLED=0
[ ! -e /opt/pixcrawler ] || fail "/opt/pixcrawler is left behind"
[ "$(ls -A /opt 2>/dev/null || true)" = "$opt_before" ] || fail "/opt differs from before the installation"
for f in /usr/bin/pixcrawler /usr/bin/pixcrawler-gui /usr/share/applications/pixcrawler.desktop \
  /usr/share/icons/hicolor/scalable/apps/pixcrawler.svg; do
  [ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f is left behind"
done

echo "== figures"
echo "package:            $(basename "$DEB") $(python3 -c "import os,sys; print(f'{os.path.getsize(sys.argv[1])/1e6:.1f} MB')" "$DEB")"
echo "installed size:     $installed_kib KiB ($(python3 -c "print(f'{$installed_kib*1024/1e6:.1f} MB')"))"
echo "first window:       drawn ${drawn_s} s after start on the first run; whole --screenshot run ${start_s} s first, ${start_mean} s mean of 5 (offscreen)"
echo "worker ready:       ${worker_ready} s after its launch (self-test)"
echo "app to worker:      ${app_ready} (launch of the app to its first worker answering)"
echo "SMOKE PASS"
