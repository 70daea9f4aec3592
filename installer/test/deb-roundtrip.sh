#!/usr/bin/env bash
# installer/test/deb-roundtrip.sh — the Debian package's install round trip
# (spec/installer.md, "Tested here"): in a clean Debian 12 root, install the
# package (it pulls pcscd), check the service user, the files, the conffile and
# the unit's enable state, run the demo job with the installed binary against
# the running test stack, upgrade to a newer build keeping an edited conffile,
# remove (configuration stays), purge (nothing of the package stays).
#
#   installer/test/deb-roundtrip.sh DEB_OLD [DEB_NEW]
#
# DEB_NEW: a newer build of the package. Without it, DEB_OLD is re-packed with
# the version DEB_OLD's+roundtrip1 (same files): that tests dpkg's upgrade path
# (maintainer scripts called with the old version, conffile kept) but not a
# changed binary. Needs root, mmdebstrap, the Debian mirror, and the test stack
# (scripts/teststack start; its lock is taken while the card is used).
#
# Environment:
#   CARDWRIGHT_CACHE        cache dir (default /var/cache/cardwright-test): the base root
#                           tarball bookworm-minbase.tar, remade when older than
#                           CARDWRIGHT_RT_CACHE_DAYS (7) or made with other options, and
#                           archives/, the packages apt downloaded
#   CARDWRIGHT_STACK_DIR    the test stack (default /tmp/cardwright-stack)
#   CARDWRIGHT_RT_READER    reader for the demo job (default: the stack's READER_OWN_1)
#   CARDWRIGHT_RT_KEEP=1    keep the root (unmounted) for a look afterwards
#   CARDWRIGHT_RT_MIRROR    Debian mirror (default http://deb.debian.org/debian; security
#                           updates always from deb.debian.org/debian-security)
#
# Prints PASS or FAIL per check and the time of each phase; exit status 0 when
# every check passed, 1 when one failed, 2 on usage errors. The root and its
# mounts are removed on every exit; the work files (logs, listings) are kept
# in /tmp/cardwright-rt.work.* when something failed.
#
# The base root: mmdebstrap --variant=minbase with systemd (systemd-sysusers and
# deb-systemd-helper, as on a real system), softhsm2 (the PKCS#11 module the
# demo job loads; no dependency of the package) and a policy-rc.d that denies
# starting services: pcscd's postinst would otherwise start a second pcscd from
# its init script inside the root (one pcscd per machine). There is no PID 1
# systemd in the root, so nothing of cardwright is started either (the
# maintainer scripts skip start without /run/systemd/system).
#
# The baseline is the root with the package's dependencies installed: the
# dependency set is what "apt-get install -s DEB_OLD" would install on the clean
# root (it must include pcscd); those packages are installed first, the
# listing taken, and then "apt-get install DEB_OLD" must install cardwright
# alone. The figure "apt-get install to the first job answered" is the time of
# that dependency install plus the time from the start of "apt-get install
# DEB_OLD" to the demo job's result: what one "apt-get install
# ./cardwright.deb" on a fresh station followed by a job would take.
#
# "Nothing of the package on disk" after purge means, compared with the
# baseline:
#   1. dpkg has no record of cardwright (status not-installed, no
#      /var/lib/dpkg/info/cardwright.*);
#   2. the file-system listing — type, mode, owner, group and symlink target of
#      every path on the root's file system, without /proc /sys /dev /run /tmp,
#      apt's lists and package cache and /var/log — is equal: no path added,
#      removed or changed (the bookkeeping files apt and dpkg make on a first
#      run exist in the baseline already); this covers /etc/cardwright, /var/lib/cardwright,
#      the unit and sysusers files, the enable symlinks in /etc/systemd (the
#      test enables the system service as an admin would) and
#      deb-systemd-helper's state under /var/lib/systemd/deb-systemd-*;
#   3. every regular file under /etc has the baseline's content, except the
#      user and group databases, which may differ by the cardwright user and
#      group lines only (below);
#   4. no path in the listing names cardwright, and no file is owned by the
#      cardwright uid or gid;
#   5. no process runs inside the root.
# The system user and group cardwright may stay after purge: Debian does not
# remove system users on purge (debhelper's dh_installsysusers adds no removal;
# files the uid owns elsewhere would pass to the next account given that uid),
# so a kept user is reported, not failed; a removed one passes as well.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PKG=cardwright
CONFFILE=/etc/cardwright/cardwright.cfg
SUITE=bookworm
CACHE=${CARDWRIGHT_CACHE:-/var/cache/cardwright-test}
CACHE_DAYS=${CARDWRIGHT_RT_CACHE_DAYS:-7}
BASE_TAR=$CACHE/$SUITE-minbase.tar
BASE_INCLUDE=systemd,softhsm2
STACK=${CARDWRIGHT_STACK_DIR:-/tmp/cardwright-stack}
ENVFILE=$STACK/stack.env
APT_OPTS=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
case $1 in -h|--help) usage ;; esac
[ "$(id -u)" = 0 ] || { echo "deb-roundtrip: needs root (chroot, mounts, dpkg in the root)" >&2; exit 2; }
DEB_OLD=$(realpath "$1")
DEB_NEW=${2:+$(realpath "$2")}

# Everything runs in a private mount namespace: the root's mounts disappear
# with this process whatever happens (the trap unmounts them first anyway).
if [ -z "${CARDWRIGHT_RT_NS:-}" ]; then
  command -v unshare >/dev/null || { echo "deb-roundtrip: unshare (util-linux) missing" >&2; exit 2; }
  CARDWRIGHT_RT_NS=1 exec unshare --mount --propagation private -- "$0" "$@"
fi

# ---- reporting -------------------------------------------------------------

FAILED=0
RESULTS=()
PHASES=()
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
pass() { RESULTS+=("PASS  $*"); printf '  PASS  %s\n' "$*"; }
fail() { RESULTS+=("FAIL  $*"); printf '  FAIL  %s\n' "$*"; FAILED=1; }
info() { printf '  info  %s\n' "$*"; }
check() { # check WHAT CMD...: PASS when CMD succeeds
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi
}
PHASE_NAME="" PHASE_T0=""
phase() { # phase NAME: ends the running phase (prints its time), starts NAME
  local t
  t=$(now)
  if [ -n "$PHASE_NAME" ]; then
    PHASES+=("$(printf '%7ss  %s' "$(secs "$PHASE_T0" "$t")" "$PHASE_NAME")")
  fi
  PHASE_NAME=$1 PHASE_T0=$t
  [ -n "$1" ] && printf '\n== %s\n' "$1"
  true
}
die() { fail "$*"; exit 1; }

# ---- the root and its mounts ------------------------------------------------

R=""         # the root
MOUNTS=()    # mounted paths, in mount order
mnt() { # mnt TARGET MOUNT-ARGS...
  local t=$1; shift
  mkdir -p "$t"
  mount "$@" "$t"
  MOUNTS+=("$t")
}
unmount_all() {
  local i t
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    t=${MOUNTS[$i]}
    umount "$t" 2>/dev/null || umount -l "$t" 2>/dev/null || echo "deb-roundtrip: cannot unmount $t" >&2
  done
  MOUNTS=()
}
root_pids() { # processes whose root directory is the test root
  local p l
  for p in /proc/[0-9]*; do
    l=$(readlink "$p/root" 2>/dev/null) || continue
    [ "$l" = "$R" ] && echo "${p#/proc/}"
  done
  true
}
DONE=0
exec 6>&2 7>&1 # the trap may run inside a redirected check: it prints here
cleanup() {
  local rc=$? p
  set +e
  exec 1>&7 2>&6
  if [ $rc != 0 ] && [ $DONE = 0 ]; then
    echo "FAIL deb-roundtrip: stopped (exit $rc) in phase '$PHASE_NAME'${WORK:+; work files kept in $WORK}"
  fi
  [ -n "$R" ] || exit $rc
  for p in $(root_pids); do kill -9 "$p" 2>/dev/null; done
  unmount_all
  if findmnt -rn -o TARGET | grep -q "^$R\(/\|$\)"; then
    echo "deb-roundtrip: something is still mounted under $R; not removing it" >&2
  elif [ "${CARDWRIGHT_RT_KEEP:-}" = 1 ]; then
    echo "deb-roundtrip: root kept in $R" >&2
  else
    rm -rf --one-file-system "$R"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

inroot() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
# apt_root ARGS...: apt-get in the root, its output in $APT_LOG (the tail shown on failure)
APT_N=0 APT_LOG=""
apt_root() {
  APT_N=$((APT_N + 1)) APT_LOG=$WORK/apt-$APT_N-$1.log
  if inroot apt-get "${APT_OPTS[@]}" "$@" >"$APT_LOG" 2>&1; then return 0; fi
  tail -30 "$APT_LOG" | sed 's/^/    | /'
  return 1
}
status_abbrev() { inroot dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null | tr -d ' ' || true; }

# listing NAME: the file-system listing of the root (see the header), sorted,
# and the content hashes of /etc, into $WORK/NAME.list and $WORK/NAME.etc.
listing() {
  inroot find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
    -o -path /var/lib/apt/lists -o -path /var/cache/apt -o -path /var/log \) -prune \
    -o -printf '%y %#m %u %g %p -> %l\n' | sed 's/ -> $//' |
    LC_ALL=C sort >"$WORK/$1.list"
  (cd "$R" && find etc -xdev -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) >"$WORK/$1.etc"
}

# ---- checks of the arguments ------------------------------------------------

WORK=$(mktemp -d /tmp/cardwright-rt.work.XXXXXX)
mkdir -p "$CACHE"
T_START=$(now)
echo "deb-roundtrip: $DEB_OLD -> ${DEB_NEW:-(re-packed)}; work files in $WORK"
for d in "$DEB_OLD" ${DEB_NEW:+"$DEB_NEW"}; do
  [ -f "$d" ] || die "no such package: $d"
  [ "$(dpkg-deb -f "$d" Package)" = "$PKG" ] || die "$d is not the $PKG package"
done
V_OLD=$(dpkg-deb -f "$DEB_OLD" Version)
if [ -z "$DEB_NEW" ]; then
  V_NEW=$V_OLD+roundtrip1
  DEB_NEW=$WORK/${PKG}_${V_NEW}_amd64.deb
  dpkg-deb -R "$DEB_OLD" "$WORK/repack"
  sed -i "s/^Version: .*/Version: $V_NEW/" "$WORK/repack/DEBIAN/control"
  dpkg-deb -b "$WORK/repack" "$DEB_NEW" >/dev/null
  rm -rf "$WORK/repack"
  info "DEB_NEW: $DEB_OLD re-packed as version $V_NEW (same files)"
fi
V_NEW=$(dpkg-deb -f "$DEB_NEW" Version)
dpkg --compare-versions "$V_NEW" gt "$V_OLD" || die "DEB_NEW's version $V_NEW is not newer than DEB_OLD's $V_OLD"

# ---- phase: base root ------------------------------------------------------

phase "base root: Debian 12 minbase ($BASE_TAR)"
mirror_lines() {
  if [ -n "${CARDWRIGHT_RT_MIRROR:-}" ]; then
    printf '%s\n' "deb $CARDWRIGHT_RT_MIRROR $SUITE main" "deb $CARDWRIGHT_RT_MIRROR $SUITE-updates main"
  else
    printf '%s\n' "deb http://deb.debian.org/debian $SUITE main" "deb http://deb.debian.org/debian $SUITE-updates main"
  fi
  echo "deb http://deb.debian.org/debian-security $SUITE-security main"
}
SPEC="mmdebstrap --variant=minbase --include=$BASE_INCLUDE $SUITE; policy-rc.d 101; $(mirror_lines | tr '\n' ';')"
exec 8>"$CACHE/.lock"
flock -w 1200 8 || die "another run holds $CACHE/.lock for 20 minutes"
if [ -s "$BASE_TAR" ] && [ "$(cat "$BASE_TAR.spec" 2>/dev/null)" = "$SPEC" ] &&
  [ -z "$(find "$BASE_TAR" -mtime "+$CACHE_DAYS")" ]; then
  info "cached (made $(date -r "$BASE_TAR" -u +%FT%TZ))"
else
  command -v mmdebstrap >/dev/null || die "mmdebstrap missing (apt-get install mmdebstrap)"
  info "making it (a few minutes; cached afterwards)"
  # mmdebstrap hands apt the first free descriptor number for its hooks,
  # which dash cannot use above 9: it inherits none of ours (the cache lock
  # on 8 stays held by this shell).
  mapfile -t mirrors < <(mirror_lines)
  if ! mmdebstrap --format=tar --variant=minbase --include="$BASE_INCLUDE" --skip=cleanup/apt/lists \
    --customize-hook='printf "#!/bin/sh\n# deb-roundtrip.sh: start no service in this root\nexit 101\n" >"$1/usr/sbin/policy-rc.d"; chmod 755 "$1/usr/sbin/policy-rc.d"' \
    "$SUITE" "$BASE_TAR.tmp" "${mirrors[@]}" >"$WORK/mmdebstrap.log" 2>&1 6>&- 7>&- 8>&-; then
    tail -20 "$WORK/mmdebstrap.log" | sed 's/^/    | /'
    rm -f "$BASE_TAR.tmp"
    die "mmdebstrap failed (log: $WORK/mmdebstrap.log)"
  fi
  mv -f "$BASE_TAR.tmp" "$BASE_TAR"
  printf '%s' "$SPEC" >"$BASE_TAR.spec"
fi
R=$(mktemp -d /tmp/cardwright-rt.root.XXXXXX)
chmod 755 "$R"
tar -C "$R" --numeric-owner -xpf "$BASE_TAR"
flock -u 8
exec 8>&-
cp -f /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true
mnt "$R/proc" -t proc proc
mnt "$R/run" -t tmpfs -o mode=755 tmpfs
# Downloaded packages are kept between runs ($CACHE/archives; not part of the
# listing): a warm run downloads nothing but changed packages.
mkdir -p "$CACHE/archives/partial"
mnt "$R/var/cache/apt/archives" --bind "$CACHE/archives"
mkdir -p "$R/tmp/cwrt"
chmod 755 "$R/tmp/cwrt"
cp "$DEB_OLD" "$R/tmp/cwrt/old.deb"
cp "$DEB_NEW" "$R/tmp/cwrt/new.deb"
chmod 644 "$R/tmp/cwrt/"*.deb
check "root unpacked, /proc and /run mounted, apt lists up to date" apt_root update

# ---- phase: dependencies and baseline ----------------------------------------

phase "dependencies of $PKG $V_OLD, then the baseline listing"
inroot apt-get -s "${APT_OPTS[@]}" install /tmp/cwrt/old.deb >"$WORK/simulate.log" 2>&1 || { tail -20 "$WORK/simulate.log"; die "apt-get cannot install $DEB_OLD in a clean $SUITE root"; }
mapfile -t DEPS < <(sed -nE 's/^Inst ([^ ]+) .*/\1/p' "$WORK/simulate.log" | grep -vx "$PKG")
info "apt-get install $DEB_OLD on the clean root installs: ${DEPS[*]} $PKG"
printf '%s\n' "${DEPS[@]}" | grep -qx pcscd && pass "installing the package pulls pcscd" || fail "installing the package pulls pcscd"
T_DEPS0=$(now)
APT_LOG=/dev/null
if [ ${#DEPS[@]} -gt 0 ]; then apt_root install "${DEPS[@]}" || die "installing the dependencies"; fi
T_DEPS1=$(now)
FETCHED=$(sed -n 's/^Fetched \([^ ]* [kMG]*B\) in .*/\1/p' "$APT_LOG")
DEPS_KB=$(inroot dpkg-query -W -f='${Installed-Size}\n' "${DEPS[@]}" | awk '{ s += $1 } END { print s + 0 }')
info "dependencies installed in $(secs "$T_DEPS0" "$T_DEPS1") s (downloaded ${FETCHED:-nothing: all in $CACHE/archives}; $((DEPS_KB / 1024)) MiB installed)"
inroot dpkg-query -W -f='${Package}\n' | LC_ALL=C sort >"$WORK/pkgs-baseline"
listing baseline
for f in passwd group shadow gshadow; do cp "$R/etc/$f" "$WORK/baseline.$f"; done
grep -q "^$PKG:" "$WORK/baseline.passwd" "$WORK/baseline.group" && die "the baseline root already has a user or group $PKG"
info "baseline: $(wc -l <"$WORK/baseline.list") paths"

# ---- phase: install ----------------------------------------------------------

phase "install $PKG $V_OLD"
T_INSTALL=$(now)
apt_root install /tmp/cwrt/old.deb && pass "apt-get install ./$(basename "$DEB_OLD")" || die "apt-get install ./$(basename "$DEB_OLD")"
T_INSTALLED=$(now)
info "apt-get install took $(secs "$T_INSTALL" "$T_INSTALLED") s"
inroot dpkg-query -W -f='${Package}\n' | LC_ALL=C sort >"$WORK/pkgs-installed"
check "it installed $PKG and nothing else" [ "$(comm -13 "$WORK/pkgs-baseline" "$WORK/pkgs-installed" | tr '\n' ' ')" = "$PKG " ]
check "dpkg status: installed (ii), version $V_OLD" [ "$(status_abbrev)/$(inroot dpkg-query -W -f='${Version}' $PKG)" = "ii/$V_OLD" ]
inroot dpkg -L "$PKG" | LC_ALL=C sort >"$WORK/files-old"
PW=$(inroot getent passwd "$PKG" || true)
if [ -n "$PW" ]; then
  IFS=: read -r _ _ UID_CW GID_CW _ HOME_CW SHELL_CW <<<"$PW"
  pass "getent passwd $PKG: uid $UID_CW, home $HOME_CW, shell $SHELL_CW (systemd-sysusers ran)"
  check "  a system uid (< 1000) and group $PKG" test "$UID_CW" -lt 1000 -a "$(inroot getent group "$PKG" | cut -d: -f3)" = "$GID_CW"
  check "  home /var/lib/$PKG, login shell nologin" test "$HOME_CW" = "/var/lib/$PKG" -a "${SHELL_CW##*/}" = nologin
else
  UID_CW="" GID_CW=""
  fail "getent passwd $PKG: no user (systemd-sysusers did not run)"
fi
# The paths installer/README.md promises.
for f in /usr/bin/cardwright "$CONFFILE" /usr/lib/sysusers.d/cardwright.conf \
  /lib/systemd/system/cardwright.service /usr/lib/systemd/user/cardwright.service \
  /etc/xdg/autostart/cardwright.desktop /usr/share/applications/cardwright-url.desktop \
  /usr/share/applications/cardwright-init.desktop /usr/share/man/man1/cardwright.1.gz \
  /usr/share/bash-completion/completions/cardwright /usr/share/doc/cardwright/copyright \
  /usr/share/doc/cardwright/changelog.Debian.gz; do
  if [ -f "$R$f" ] && grep -qx "$f" "$WORK/files-old"; then pass "file $f"; else fail "file $f (shipped by the package and present)"; fi
done
check "dpkg --verify: every file as packaged (md5sums)" test -z "$(inroot dpkg --verify "$PKG")"
CONFS=$(inroot dpkg-query -W -f='${Conffiles}\n' "$PKG" | awk 'NF { print $1 }')
check "conffile $CONFFILE listed in dpkg-query \${Conffiles}" grep -qx "$CONFFILE" <<<"$CONFS"
ETC_NOT_CONF=$(inroot sh -c 'for f in $(dpkg -L '"$PKG"' | grep ^/etc/); do [ -d "$f" ] || echo "$f"; done' | grep -vxF -f <(printf '%s\n' "$CONFS") || true)
check "every file the package ships under /etc is a conffile (Policy 10.7.2)${ETC_NOT_CONF:+; not: $(echo $ETC_NOT_CONF)}" test -z "$ETC_NOT_CONF"
# The system service is installed, not enabled (it would take the desktop
# app's port; installer/linux/postinst); the user unit is not enabled either.
check "system unit not enabled (no /etc/systemd/system/*.wants/cardwright.service)" \
  test -z "$(find "$R/etc/systemd/system" -name 'cardwright*' 2>/dev/null)"
check "deb-systemd-helper state for cardwright.service recorded (so purge can remove an admin's enable symlinks)" \
  test -e "$R/var/lib/systemd/deb-systemd-helper-enabled/cardwright.service.dsh-also"
check "user unit not enabled for every user (no /etc/systemd/user/*.wants/cardwright.service)" \
  test -z "$(find "$R/etc/systemd/user" -name 'cardwright*' 2>/dev/null)"
VER_OLD=$(inroot /usr/bin/cardwright version 2>&1) && pass "/usr/bin/cardwright version runs in the root: $VER_OLD" || fail "/usr/bin/cardwright version runs in the root: $VER_OLD"
if [ -n "$UID_CW" ]; then
  check "  and as the service user $PKG" inroot setpriv --reuid="$PKG" --regid="$PKG" --init-groups /usr/bin/cardwright version
fi
check "no process left running in the root" test -z "$(root_pids)"

# ---- phase: the demo job ---------------------------------------------------------

phase "the installed binary runs the demo job on the test stack"
[ -r "$ENVFILE" ] || die "no test stack ($ENVFILE missing): run scripts/teststack start"
stackvar() { local v; v=$(sed -n "s/^$1=//p" "$ENVFILE" | tail -1); v=${v#\"}; v=${v%\"}; printf '%s' "$v"; }
OWN=${CARDWRIGHT_RT_READER:-$(stackvar READER_OWN_1)}
TESTSTACK=$(stackvar TESTSTACK)
[ -n "$OWN" ] || die "no READER_OWN_1 in $ENVFILE (the stack runs without the project's own card: make build; scripts/teststack start)"
[ -S /run/pcscd/pcscd.comm ] || die "the host's pcscd socket /run/pcscd/pcscd.comm is missing (scripts/teststack status)"
mnt "$R/run/pcscd" --bind /run/pcscd
mount -o remount,bind,ro "$R/run/pcscd" 2>/dev/null || true
# The job's files, the SoftHSM2 token directory, the CA and HOME in the root's
# /tmp/cwrt, owned by the service user: the job runs as the user the system
# unit runs as.
J=/tmp/cwrt/job
mkdir -p "$R$J/tokens" "$R$J/home" "$R$J/ca"
cp "$ROOT/testdata/demo/demo.dsc" "$ROOT/testdata/demo/demo.cpf" "$R$J/"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$J" >"$R$J/softhsm2.conf"
MODULE=/usr/lib/softhsm/libsofthsm2.so
RE=$(printf '%s' "$OWN" | sed 's/[][\.*^$()+?{}|]/\\&/g')
printf '# deb-roundtrip.sh: as scripts/demo writes it\n[pkcs11]\nmodule = %s\n[readers]\nskip = Virtual PCD vicc .*\n[tokens]\n%s = %s, cardwright demo 1\n' \
  "$MODULE" "$RE" "$MODULE" >"$R$J/cardwright.cfg"
RUNAS=() JOB_USER=root
if [ -n "$UID_CW" ]; then
  chown -R "$UID_CW:$GID_CW" "$R$J"
  RUNAS=(setpriv --reuid="$PKG" --regid="$PKG" --init-groups) JOB_USER=$PKG
fi
# jobenv CMD...: run CMD in the root as the service user with the job's environment.
jobenv() {
  chroot "$R" /usr/bin/env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME=$J/home SOFTHSM2_CONF=$J/softhsm2.conf \
    DEMO_PIN=472913 DEMO_PUK=83920174 CARDWRIGHT_PIN=472913 "${RUNAS[@]}" "$@"
}
HOLDER='Erika Mustermann'
job() {
  set +e
  jobenv /usr/bin/cardwright encode --config $J/cardwright.cfg --dsc $J/demo.dsc --reader "$OWN" \
    --issuer-ca $J/ca --timing --field-env PIN_FIELD=DEMO_PIN --field-env PUK_FIELD=DEMO_PUK \
    --field "HOLDER=$(printf '%s' "$HOLDER" | base64)" \
    --field CARD_SERIAL=CW-0042 --field "TOKEN_LABEL=cardwright demo 1" >"$WORK/encode.out" 2>"$WORK/encode.err"
  JOB_RC=$?
  set -e
}
exec 9>"$STACK/lock"
T_LOCK=$(now)
if ! flock -n 9; then
  info "waiting for the test stack (a test holds $STACK/lock)"
  flock -w 900 9 || die "the test stack stayed busy for 15 minutes"
fi
T_LOCKED=$(now)
job
if [ "$JOB_RC" -ne 0 ] && grep -q '^error: .*(DeleteProfile' "$WORK/encode.out"; then
  # A profile another test left, which the demo's PUK cannot erase: a fresh
  # virtual card, as scripts/demo does.
  info "the card holds a profile the demo cannot erase: a fresh virtual card into '$OWN'"
  "$TESTSTACK" card-stop "$OWN" >/dev/null && "$TESTSTACK" card-start "$OWN" >/dev/null
  for _ in $(seq 50); do
    jobenv /usr/bin/cardwright apdu --reader "$OWN" 00CA005A00 >/dev/null 2>&1 && break
    sleep 0.2
  done
  job
fi
T_JOB=$(now)
sed 's/^/    | /' "$WORK/encode.err" "$WORK/encode.out"
# The shipped configuration loads, and the service user reaches the readers.
jobenv /usr/bin/cardwright readers --config "$CONFFILE" >"$WORK/readers.out" 2>&1 || true
check "cardwright readers --config $CONFFILE (the shipped default) lists '$OWN'" grep -qF "$OWN" "$WORK/readers.out"
RESULT=$(sed -n 's/^ProductionResult=//p' "$WORK/encode.out")
check "cardwright encode (as user $JOB_USER) exit 0, ProductionResult=ok" [ "$JOB_RC" = 0 -a "$RESULT" = ok ]
jobenv /usr/bin/cardwright apdu --reader "$OWN" 00A4080C0450155032 00B0000000 0020008100 00CA005A00 >"$WORK/card.out" 2>&1 || true
jobenv /usr/bin/cardwright token find --login --module "$MODULE" --token "cardwright demo 1" >"$WORK/objects.out" 2>&1 || true
jobenv /usr/bin/cardwright certs --config $J/cardwright.cfg >"$WORK/certs.out" 2>&1 || true
flock -u 9
exec 9>&-
sed 's/^/    | /' "$WORK/card.out"
holderhex=$(printf '%s' "$HOLDER" | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
iccsn=$(sed -n 's/^ICCSN=//p' "$WORK/encode.out")
serial=$(awk '/^> 00CA005A00/{getline; print $2}' "$WORK/card.out")
tries=$(awk '/^> 0020008100/{getline; print $2}' "$WORK/card.out")
npriv=$(grep -c 'CKO_PRIVATE_KEY' "$WORK/objects.out" || true)
ncert=$(grep -c '^token "cardwright demo 1" .* certificate' "$WORK/certs.out" || true)
check "card read back (cardwright apdu): holder file holds '$HOLDER'" grep -q "^< $holderhex" "$WORK/card.out"
check "card read back: PIN 81 set (VERIFY without data: ${tries:-no answer})" [ "${tries:0:3}" = 63C ]
check "card read back: ICCSN $iccsn reported = chip serial ${serial:-none} (GET DATA)" [ -n "$iccsn" -a "$iccsn" = "$serial" ]
check "token read back (cardwright token find, certs): $npriv key pairs, $ncert certificates" [ "$npriv" = 2 -a "$ncert" = 2 ]
check "no PIN or PUK in the job's output" eval '! grep -q -e 472913 -e 83920174 "$WORK/encode.out" "$WORK/encode.err"'
umount "$R/run/pcscd" && unset 'MOUNTS[-1]'
check "no process left running in the root" test -z "$(root_pids)"
# What a fresh station spends: apt-get install ./cardwright.deb (here in two
# parts: dependencies, then the package) and the job; the checks between and
# the wait for the stack's lock are not counted.
T_DEPS=$(secs "$T_DEPS0" "$T_DEPS1") T_PKG=$(secs "$T_INSTALL" "$T_INSTALLED") T_RUN=$(secs "$T_LOCKED" "$T_JOB")
FIRST_JOB=$(awk -v a="$T_DEPS" -v b="$T_PKG" -v c="$T_RUN" 'BEGIN { printf "%.1f", a + b + c }')
info "apt-get install to the first job answered: $FIRST_JOB s = dependencies $T_DEPS s + package $T_PKG s + the job $T_RUN s (checks between and $(secs "$T_LOCK" "$T_LOCKED") s waiting for the stack's lock not counted)"

# ---- phase: upgrade ------------------------------------------------------------------

phase "upgrade to $V_NEW with an edited conffile and the system service enabled"
# What an admin of a production station does (installer/README.md): enable
# the system service (systemctl works offline in the root: symlinks only) and
# edit the configuration. The upgrade keeps both; purge must remove both.
WANTS=/etc/systemd/system/multi-user.target.wants/cardwright.service
check "admin: systemctl enable cardwright.service (offline): $WANTS" \
  eval 'inroot systemctl enable cardwright.service && [ -L "$R$WANTS" ]'
EDIT="# edited by deb-roundtrip.sh $(date -u +%FT%TZ)"
echo "$EDIT" >>"$R$CONFFILE"
apt_root install /tmp/cwrt/new.deb && pass "apt-get install ./$(basename "$DEB_NEW")" || die "apt-get install ./$(basename "$DEB_NEW")"
check "dpkg status: installed (ii), version $V_NEW" [ "$(status_abbrev)/$(inroot dpkg-query -W -f='${Version}' $PKG)" = "ii/$V_NEW" ]
check "the edited conffile kept its edit" grep -qxF "$EDIT" "$R$CONFFILE"
if [ -e "$R$CONFFILE.dpkg-dist" ]; then info "the new package's conffile differs: it is in $CONFFILE.dpkg-dist (--force-confold kept the edit)"; fi
VER_NEW=$(inroot /usr/bin/cardwright version 2>&1) && pass "/usr/bin/cardwright version runs: $VER_NEW" || fail "/usr/bin/cardwright version runs: $VER_NEW"
binsum() { dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/bin/cardwright | sha256sum; }
if [ "$(binsum "$DEB_OLD")" = "$(binsum "$DEB_NEW")" ]; then
  info "DEB_NEW ships the same binary: its version output is not compared"
else
  check "the binary's version changed ($VER_OLD -> $VER_NEW)" [ "$VER_OLD" != "$VER_NEW" ]
fi
check "dpkg --verify: every file but the edited conffile as packaged" test -z "$(inroot dpkg --verify "$PKG" | grep -v " c $CONFFILE\$")"
check "user $PKG still there" inroot getent passwd "$PKG"
check "system unit still enabled" test -L "$R$WANTS"
inroot dpkg -L "$PKG" | LC_ALL=C sort >"$WORK/files-new"
CONFS_NEW=$(inroot dpkg-query -W -f='${Conffiles}\n' "$PKG" | awk 'NF { print $1 }')

# ---- phase: remove ------------------------------------------------------------------

phase "apt-get remove: the configuration stays"
apt_root remove "$PKG" && pass "apt-get remove $PKG" || die "apt-get remove $PKG"
check "dpkg status: rc (removed, configuration files remain)" [ "$(status_abbrev)" = rc ]
check "$CONFFILE still there, with the edit" grep -qxF "$EDIT" "$R$CONFFILE"
LEFT=$(while read -r f; do
  grep -qxF "$f" <<<"$CONFS_NEW" && continue # conffiles stay until purge
  [ -e "$R$f" ] || [ -L "$R$f" ] || continue
  [ -d "$R$f" ] && continue # directories may be shared (and /lib is /usr/lib)
  echo "$f"
done <"$WORK/files-new")
check "every file of the package but its conffiles removed${LEFT:+; left: $(echo $LEFT)}" test -z "$LEFT"
# Conffiles stay until purge. One that starts a program (an XDG autostart
# entry) must not start the removed binary at every login: the desktop entry
# spec's TryExec makes the session skip it when the program is missing.
for f in $(grep '^/etc/xdg/autostart/' <<<"$CONFS_NEW" || true); do
  [ -f "$R$f" ] || continue
  te=$(sed -n 's/^TryExec=//p' "$R$f" | head -1)
  check "kept conffile $f is skipped now the program is gone (TryExec=${te:-missing})" \
    eval '[ -n "$te" ] && ! inroot sh -c "command -v \"$te\"" >/dev/null'
done
check "no process left running in the root" test -z "$(root_pids)"

# ---- phase: purge --------------------------------------------------------------------

phase "apt-get purge: nothing of the package stays"
apt_root purge "$PKG" && pass "apt-get purge $PKG" || die "apt-get purge $PKG"
ST=$(status_abbrev)
INFO_LEFT=$(ls "$R/var/lib/dpkg/info/$PKG".* "$R/var/lib/dpkg/info/$PKG:"* 2>/dev/null || true)
check "1. dpkg has no record of $PKG (status '${ST:-none}', no /var/lib/dpkg/info/$PKG.*)" \
  test -z "$INFO_LEFT" -a \( "${ST:-un}" = un -o "${ST:-un}" = pn \)
listing purged
diff "$WORK/baseline.list" "$WORK/purged.list" >"$WORK/listing.diff" || true
if [ -s "$WORK/listing.diff" ]; then
  fail "2. the listing equals the baseline's ($(grep -c '^[<>]' "$WORK/listing.diff") lines differ):"
  grep '^[<>]' "$WORK/listing.diff" | head -40 | sed 's/^/    | /'
else
  pass "2. the listing ($(wc -l <"$WORK/purged.list") paths) equals the baseline's"
fi
# /etc content: the user databases may differ by the cardwright lines only.
ETC_DIFF=$(diff <(grep -vE ' etc/(passwd|group|shadow|gshadow)-?$' "$WORK/baseline.etc") \
  <(grep -vE ' etc/(passwd|group|shadow|gshadow)-?$' "$WORK/purged.etc") | grep '^[<>]' || true)
ACCT_DIFF=""
for f in passwd group shadow gshadow; do
  cmp -s <(grep -v "^$PKG:" "$R/etc/$f" || true) <(grep -v "^$PKG:" "$WORK/baseline.$f" || true) || ACCT_DIFF+=" /etc/$f"
done
check "3. every file under /etc as in the baseline${ETC_DIFF:+ (differs: $(echo "$ETC_DIFF" | awk '{print $3}' | sort -u | tr '\n' ' '))}" test -z "$ETC_DIFF"
check "3. /etc/passwd, group, shadow, gshadow as in the baseline but for $PKG's lines${ACCT_DIFF:+ (differ:$ACCT_DIFF)}" test -z "$ACCT_DIFF"
NAMED=$(grep -i cardwright "$WORK/purged.list" || true)
check "4. no path names cardwright${NAMED:+: $(echo "$NAMED" | awk '{print $5}' | head -5 | tr '\n' ' ')}" test -z "$NAMED"
if [ -n "$UID_CW" ]; then
  OWNED=$(inroot find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \) -prune -o \( -uid "$UID_CW" -o -gid "$GID_CW" \) -print | head -5)
  check "4. no file owned by uid $UID_CW or gid $GID_CW${OWNED:+: $(echo $OWNED)}" test -z "$OWNED"
fi
check "5. no process left running in the root" test -z "$(root_pids)"
if inroot getent passwd "$PKG" >/dev/null; then
  info "the system user and group $PKG stay after purge (Debian keeps system users; see the header)"
else
  info "purge removed the user $PKG"
fi

# ---- summary -------------------------------------------------------------------------

phase ""
DONE=1
T_END=$(now)
printf '\n== times\n'
printf '%s\n' "${PHASES[@]}"
printf '%7ss  total\n' "$(secs "$T_START" "$T_END")"
printf '%7ss  apt-get install to the first job answered (%s + %s + %s)\n' "$FIRST_JOB" "$T_DEPS" "$T_PKG" "$T_RUN"
printf '\n== result: %s checks, %s failed\n' "${#RESULTS[@]}" "$(printf '%s\n' "${RESULTS[@]}" | grep -c '^FAIL' || true)"
if [ $FAILED = 0 ]; then
  echo "PASS deb-roundtrip $PKG $V_OLD -> $V_NEW"
  rm -rf "$WORK"
else
  printf '%s\n' "${RESULTS[@]}" | grep '^FAIL' | sed 's/^/  /'
  echo "FAIL deb-roundtrip $PKG $V_OLD -> $V_NEW (work files kept in $WORK)"
  exit 1
fi
