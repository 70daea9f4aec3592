#!/usr/bin/env bash
# installer/test/wine-smoke.sh — the Windows executable runs (issue 15, "Must
# show"): under wine64 in a private, throw-away prefix, the x64 cardwright.exe
# the MSI ships
#   1. prints its version, built for windows/amd64;
#   2. checks the demo description (testdata/demo/demo.dsc): exit 0;
#   3. serves headless on a free loopback port: GET /v1/health answers 200 with
#      the health JSON; a WebSocket upgrade on /v1/ws from the foreign origin
#      https://evil.example gets 403 (docs/protocol.md, "Origin") and is logged;
#      Ctrl-C (SIGINT) stops it cleanly (exit 0, "agent stopped");
#   4. writes the browser policies the MSI's BROWSER_POLICY_ORIGINS writes
#      (browser-policy install --origin "https://cms.example.com
#      https://other.example", as the MSI's custom action passes the property)
#      into the prefix's registry, for a Chrome and an Edge that are there
#      (empty chrome.exe, msedge.exe in Program Files): `wine reg query` shows
#      the origins under HKLM\SOFTWARE\Policies\{Google\Chrome,Microsoft\Edge}\
#      LoopbackNetworkAllowedForUrls beside an administrator's value, which is
#      numbered around and kept; show reports them; a second install changes
#      nothing; an install with a refused origin writes nothing (exit 2: the
#      MSI's install fails before any list is touched); uninstall leaves the
#      administrator's value alone and deletes Edge's key, which held ours only.
#
#   installer/test/wine-smoke.sh [EXE]
#
# EXE defaults to bin/msi/x64/cardwright.exe, the signed build installer/windows/
# build-msi.sh leaves (make msi). Needs wine64 (Debian 12: apt-get install
# --no-install-recommends wine64; /usr/lib/wine/wine64 is used when wine64 is
# not on PATH), curl and python3. No display is used (DISPLAY is unset) and no
# card or PC/SC service: serve's real runner starts, but no job is run.
#
# Wine 8.0 (Debian 12) has no bcryptprimitives.dll, and the Go runtime (Go 1.24
# and later) stops at start without it ("fatal error: bcryptprimitives.dll not
# found"; Windows 10 and later have it). When the new prefix lacks it, the test
# builds a stand-in with x86_64-w64-mingw32-gcc (scripts/install-deps installs
# it for the Windows builds) whose only export, ProcessPrng, fills the buffer
# from BCryptGenRandom, and puts it in the prefix's system32. Wine 9 and later
# ship the DLL, and the stand-in is then not made.
#
# Environment:
#   WINE           the wine64 loader (default: wine64 on PATH, else /usr/lib/wine/wine64)
#   WINESERVER     its wineserver (default: wineserver on PATH, else /usr/lib/wine/wineserver)
#
# Prints PASS or FAIL per check and the time of each phase; exit status 0 when
# every check passed, 1 when one failed, 2 on usage errors or a missing tool.
# The prefix, the journal, HOME for wine and every process started (wineserver
# -k) are removed on every exit; serve's log is printed when a check failed.
set -euo pipefail

usage() { echo "usage: installer/test/wine-smoke.sh [EXE]" >&2; exit 2; }
[ $# -le 1 ] || usage
case "${1:-}" in -h|--help) usage ;; esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
exe=${1:-$repo/bin/msi/x64/cardwright.exe}
if [ ! -f "$exe" ]; then
  echo "wine-smoke: $exe not found (make msi builds it)" >&2
  exit 2
fi
exe=$(realpath "$exe")
dsc=$repo/testdata/demo/demo.dsc

pick() { # pick VAR-value NAME FALLBACK
  if [ -n "$1" ]; then echo "$1"
  elif command -v "$2" >/dev/null 2>&1; then command -v "$2"
  else echo "$3"
  fi
}
WINE=$(pick "${WINE:-}" wine64 /usr/lib/wine/wine64)
WINESERVER=$(pick "${WINESERVER:-}" wineserver /usr/lib/wine/wineserver)
for t in "$WINE" "$WINESERVER"; do
  [ -x "$t" ] || { echo "wine-smoke: $t missing (apt-get install --no-install-recommends wine64)" >&2; exit 2; }
done
for t in curl python3; do
  command -v "$t" >/dev/null || { echo "wine-smoke: $t missing" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/cardwright-wine.XXXXXX)
serve_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -KILL "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  # Every process of the prefix, then the server itself (-w waits for it).
  if [ -d "$tmp/prefix" ]; then
    WINEPREFIX=$tmp/prefix "$WINESERVER" -k >/dev/null 2>&1 || true
    WINEPREFIX=$tmp/prefix "$WINESERVER" -w >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A private prefix, HOME and TMPDIR: nothing reaches the caller's ~/.wine, menus
# or MIME database, and wineserver's socket directory (TMPDIR/wine-XXXXXX) goes
# with the rest. No display, no Mono/Gecko installers, no menu entries.
export WINEPREFIX=$tmp/prefix HOME=$tmp/home TMPDIR=$tmp/tmp WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml,winemenubuilder.exe=d"
unset DISPLAY WAYLAND_DISPLAY XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME XDG_RUNTIME_DIR
mkdir -p "$HOME" "$TMPDIR"

failed=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failed=1; }
indent() { sed 's/^/  /'; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}s')" "$1" "$(now)"; }
# winpath PATH: the Windows path of an absolute Unix path (drive Z: is / in
# every prefix wineboot makes).
winpath() { local p=$1; echo "Z:${p//\//\\}"; }

echo "wine-smoke: $exe under $("$WINE" --version 2>/dev/null || echo "$WINE")"
t_all=$(now)

# --- the prefix --------------------------------------------------------------
# One persistent wineserver, and the system processes wineboot starts (services,
# winedevice, plugplay), serve every run below; cleanup's wineserver -k ends
# them. Wine's processes inherit their starter's output, so every run writes
# to a file, never to a pipe a $(…) would wait on for EOF, and runs under
# timeout: a hang fails the check instead of the test.
t=$(now)
mkdir -p "$WINEPREFIX"
"$WINESERVER" -p
if timeout 300 "$WINE" wineboot --init </dev/null >"$tmp/wineboot.log" 2>&1; then
  pass "prefix created ($(since "$t"))"
else
  fail "prefix: wine64 wineboot --init failed:"; indent <"$tmp/wineboot.log"
  exit 1
fi
sys32=$WINEPREFIX/drive_c/windows/system32
if [ ! -e "$sys32/bcryptprimitives.dll" ]; then
  t=$(now)
  if ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
    fail "bcryptprimitives.dll: this wine has none and x86_64-w64-mingw32-gcc is missing to make the stand-in (scripts/install-deps)"
    exit 1
  fi
  cat >"$tmp/bcryptprimitives.c" <<'EOF'
/* Stand-in for Windows' bcryptprimitives.dll, which Wine 8 lacks: the Go
   runtime needs its ProcessPrng. */
#include <windows.h>
#include <bcrypt.h>
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
    if (BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
      return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}
EOF
  if x86_64-w64-mingw32-gcc -shared -O2 -s -o "$sys32/bcryptprimitives.dll" \
      "$tmp/bcryptprimitives.c" -lbcrypt 2>"$tmp/cc.log"; then
    echo "NOTE wine has no bcryptprimitives.dll: stand-in (ProcessPrng over BCryptGenRandom) put in the prefix ($(since "$t"))"
  else
    fail "bcryptprimitives.dll stand-in did not build:"; indent <"$tmp/cc.log"
    exit 1
  fi
fi

# --- version -----------------------------------------------------------------
t=$(now)
if timeout 60 "$WINE" "$exe" version </dev/null >"$tmp/out" 2>&1; then rc=0; else rc=$?; fi
out=$(cat "$tmp/out")
if [ "$rc" -eq 0 ] && grep -Eq '^cardwright [^ ]+ windows/amd64( |$)' <<<"$out"; then
  pass "version: $out ($(since "$t"))"
else
  fail "version: exit $rc, want 'cardwright VERSION windows/amd64 …':"; indent <<<"$out"
fi

# --- check the demo description ----------------------------------------------
t=$(now)
if timeout 60 "$WINE" "$exe" check "$(winpath "$dsc")" </dev/null >"$tmp/out" 2>&1; then rc=0; else rc=$?; fi
out=$(cat "$tmp/out")
if [ "$rc" -eq 0 ]; then
  pass "check testdata/demo/demo.dsc: exit 0 ($(since "$t"))"
else
  fail "check testdata/demo/demo.dsc: exit $rc"
fi
[ -z "$out" ] || indent <<<"$out"

# --- browser-policy (the MSI's BROWSER_POLICY_ORIGINS) --------------------------
# Targets() counts a browser as installed when its exe is in Program Files.
mkdir -p "$WINEPREFIX/drive_c/Program Files/Google/Chrome/Application" \
  "$WINEPREFIX/drive_c/Program Files (x86)/Microsoft/Edge/Application"
: >"$WINEPREFIX/drive_c/Program Files/Google/Chrome/Application/chrome.exe"
: >"$WINEPREFIX/drive_c/Program Files (x86)/Microsoft/Edge/Application/msedge.exe"
chrome_key='HKLM\SOFTWARE\Policies\Google\Chrome\LoopbackNetworkAllowedForUrls'
edge_key='HKLM\SOFTWARE\Policies\Microsoft\Edge\LoopbackNetworkAllowedForUrls'
# reg_list KEY: the key's values as sorted name=data words, or "absent".
reg_list() {
  if timeout 60 "$WINE" reg query "$1" </dev/null >"$tmp/reg" 2>&1; then
    tr -d '\r' <"$tmp/reg" | awk '$2 ~ /^REG_/ { print $1 "=" $3 }' | sort | tr '\n' ' ' | sed 's/ $//'
  else
    echo absent
  fi
}
# policy ARG...: runs browser-policy ARG...; rc and out are set.
policy() {
  if timeout 60 "$WINE" "$exe" browser-policy "$@" </dev/null >"$tmp/out" 2>&1; then rc=0; else rc=$?; fi
  out=$(tr -d '\r' <"$tmp/out")
}
# want_lists WHAT CHROME EDGE: both keys hold exactly these values.
want_lists() {
  local c e
  c=$(reg_list "$chrome_key") e=$(reg_list "$edge_key")
  if [ "$c" = "$2" ] && [ "$e" = "$3" ]; then
    pass "$1: Chrome's list '$c', Edge's '$e'"
  else
    fail "$1: Chrome's list '$c', want '$2'; Edge's '$e', want '$3'"
  fi
}
t=$(now)
admin='1=https://admin.example'
if timeout 60 "$WINE" reg add "$chrome_key" /v 1 /d https://admin.example /f </dev/null >"$tmp/reg" 2>&1; then
  policy install --origin "https://cms.example.com https://other.example"
  if [ "$rc" -eq 0 ] && grep -q '^Google Chrome: installed' <<<"$out" && grep -q '^Microsoft Edge: installed' <<<"$out"; then
    pass "browser-policy install --origin \"https://cms.example.com https://other.example\": exit 0 ($(since "$t"))"
  else
    fail "browser-policy install: exit $rc, want 0 and Chrome and Edge installed:"; indent <<<"$out"
  fi
  want_lists "after install (reg query)" "$admin 2=https://cms.example.com 3=https://other.example" \
    "1=https://cms.example.com 2=https://other.example"

  policy show --origin https://cms.example.com
  if [ "$rc" -eq 0 ] && [ "$(grep -c '^  https://cms.example.com: connects without asking (LoopbackNetworkAllowedForUrls' <<<"$out")" = 2 ] &&
     grep -q 'also set by an administrator: .*https://admin.example' <<<"$out"; then
    pass "browser-policy show: Chrome and Edge connect without asking, the administrator's value named"
  else
    fail "browser-policy show: exit $rc:"; indent <<<"$out"
  fi

  policy install --origin https://cms.example.com,https://other.example
  if [ "$rc" -eq 0 ] && [ "$(grep -c ': unchanged (' <<<"$out")" = 2 ]; then
    pass "browser-policy install again: unchanged"
  else
    fail "browser-policy install again: exit $rc, want both unchanged:"; indent <<<"$out"
  fi

  policy install --origin "https://cms.example.com https://New.example"
  if [ "$rc" -eq 2 ] && grep -q 'write it in lower case' <<<"$out"; then
    pass "browser-policy install with a refused origin: exit 2 ($(head -1 <<<"$out"))"
  else
    fail "browser-policy install with a refused origin: exit $rc, want 2:"; indent <<<"$out"
  fi
  want_lists "after the refused install" "$admin 2=https://cms.example.com 3=https://other.example" \
    "1=https://cms.example.com 2=https://other.example"

  policy uninstall
  if [ "$rc" -eq 0 ] && [ "$(grep -c ': uninstalled (' <<<"$out")" = 2 ]; then
    pass "browser-policy uninstall: exit 0"
  else
    fail "browser-policy uninstall: exit $rc:"; indent <<<"$out"
  fi
  want_lists "after uninstall" "$admin" absent
  echo "NOTE browser-policy: $(since "$t") in all"
else
  fail "wine reg add $chrome_key:"; indent <"$tmp/reg"
fi

# --- serve ---------------------------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
mkdir -p "$tmp/journal"
t=$(now)
"$WINE" "$exe" serve --listen "127.0.0.1:$port" --journal "$(winpath "$tmp/journal")" \
  </dev/null >"$tmp/serve.log" 2>&1 &
serve_pid=$!
up=0
for _ in $(seq 1 120); do
  if curl -s -o /dev/null --max-time 2 "$base/v1/health"; then up=1; break; fi
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.25
done
if [ "$up" -eq 1 ]; then
  pass "serve: listening on 127.0.0.1:$port ($(since "$t"))"

  code=$(curl -s -o "$tmp/health.json" -w '%{http_code} %{content_type}' --max-time 10 "$base/v1/health" || true)
  if [ "${code%% *}" = 200 ] && [[ "${code#* }" == application/json* ]] &&
     python3 -c 'import json, sys; h = json.load(open(sys.argv[1])); sys.exit(not (h.get("status") == "ok" and 1 in h.get("protocol", [])))' "$tmp/health.json" 2>/dev/null; then
    pass "GET /v1/health: 200 $(cat "$tmp/health.json")"
  else
    fail "GET /v1/health: want 200 application/json {\"status\":\"ok\",\"protocol\":[1],…}, got '$code' $(cat "$tmp/health.json" 2>/dev/null)"
  fi

  code=$(curl -s -o "$tmp/ws.body" -w '%{http_code}' --max-time 10 \
    -H 'Origin: https://evil.example' -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
    -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
    "$base/v1/ws" || true)
  if [ "$code" = 403 ]; then
    pass "GET /v1/ws upgrade from Origin https://evil.example: 403 $(tr -d '\n' <"$tmp/ws.body")"
  else
    fail "GET /v1/ws upgrade from Origin https://evil.example: want 403, got $code $(tr -d '\n' <"$tmp/ws.body" 2>/dev/null)"
  fi
  if grep -q '"msg":"request refused: origin not allowed".*"origin":"https://evil.example"' "$tmp/serve.log"; then
    pass "serve logged the refused origin"
  else
    fail "serve did not log 'request refused: origin not allowed' for https://evil.example"
  fi

  # Ctrl-C in a console: wine turns SIGINT into CTRL_C_EVENT (it installs its
  # handler even when the shell started the job with SIGINT ignored).
  t=$(now)
  kill -INT "$serve_pid"
  for _ in $(seq 1 40); do
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$serve_pid" 2>/dev/null; then
    fail "serve: still running 10s after SIGINT"
  else
    if wait "$serve_pid"; then rc=0; else rc=$?; fi
    serve_pid=""
    if [ "$rc" -eq 0 ] && grep -q '"msg":"agent stopped"' "$tmp/serve.log"; then
      pass "serve: stopped on SIGINT, exit 0 ($(since "$t"))"
    else
      fail "serve: after SIGINT exit $rc, 'agent stopped' $(grep -q '"msg":"agent stopped"' "$tmp/serve.log" && echo logged || echo not logged)"
    fi
  fi
else
  if kill -0 "$serve_pid" 2>/dev/null; then
    fail "serve: no answer on $base/v1/health within 30s"
  else
    if wait "$serve_pid"; then rc=0; else rc=$?; fi
    serve_pid=""
    fail "serve: exited (status $rc) before answering on $base/v1/health"
  fi
fi
if [ "$failed" -ne 0 ] && [ -s "$tmp/serve.log" ]; then
  echo "serve's log:"; indent <"$tmp/serve.log"
fi

echo "wine-smoke: $([ "$failed" -eq 0 ] && echo PASS || echo FAIL) ($(since "$t_all") in all)"
exit "$failed"
