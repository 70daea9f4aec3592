#!/usr/bin/env bash
# installer/test/lint-deb.sh [DEB]: checks the Debian package that
# installer/build.sh deb made (default: the one dist/cardwright_*_amd64.deb).
#
#   - lintian --fail-on error,warning (the package's own overrides apply;
#     installer/README.md lists each with its reason)
#   - systemd-analyze verify of the system and the user unit
#   - desktop-file-validate of the desktop entries
#   - conffiles, Depends against the binary's NEEDED libraries, the
#     copyright file against the Go modules linked in, the binary's version
#     against the package's, the packaged configuration loads with the
#     packaged binary, the man page renders without groff warnings
#
# Needs: lintian, desktop-file-utils, systemd, man-db, binutils, go.
# Prints one line per check and exits non-zero if any failed.
set -euo pipefail
cd "$(dirname "$0")/../.."

deb=${1:-}
if [ -z "$deb" ]; then
	set -- dist/cardwright_*_amd64.deb
	[ $# -eq 1 ] && [ -f "$1" ] || {
		echo "lint-deb: want one dist/cardwright_*_amd64.deb, found: $*; run installer/build.sh deb" >&2
		exit 2
	}
	deb=$1
fi
for tool in lintian desktop-file-validate systemd-analyze dpkg-deb objdump man go; do
	command -v "$tool" >/dev/null || {
		echo "lint-deb: $tool not found (scripts/install-deps installs it)" >&2
		exit 2
	}
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$tmp/control"
failed=0
ok() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failed=1
}
field() { sed -n "s/^$1: //p" "$tmp/control/control"; }

# lintian: errors and warnings fail; info tags are shown.
if lintian --fail-on error,warning --display-info --tag-display-limit 0 "$deb" >"$tmp/lintian" 2>&1; then
	ok "lintian (E/W: none)"
else
	fail "lintian"
fi
sed 's/^/     /' "$tmp/lintian"

# The units, against the packaged binary (verify checks that ExecStart's
# binary exists, so the path is pointed into the extracted tree).
mkdir -p "$tmp/units/system" "$tmp/units/user"
sed "s|/usr/bin/cardwright|$root/usr/bin/cardwright|g" "$root/lib/systemd/system/cardwright.service" >"$tmp/units/system/cardwright.service"
sed "s|/usr/bin/cardwright|$root/usr/bin/cardwright|g" "$root/usr/lib/systemd/user/cardwright.service" >"$tmp/units/user/cardwright.service"
if out=$(systemd-analyze verify --man=no "$tmp/units/system/cardwright.service" 2>&1) && [ -z "$out" ]; then
	ok "systemd-analyze verify cardwright.service (system)"
else
	fail "systemd-analyze verify cardwright.service (system): $out"
fi
mkdir -m 0700 "$tmp/xdg"
if out=$(XDG_RUNTIME_DIR=$tmp/xdg systemd-analyze --user verify --man=no "$tmp/units/user/cardwright.service" 2>&1) && [ -z "$out" ]; then
	ok "systemd-analyze --user verify cardwright.service (user)"
else
	fail "systemd-analyze --user verify cardwright.service (user): $out"
fi

for f in etc/xdg/autostart/cardwright.desktop usr/share/applications/cardwright-url.desktop usr/share/applications/cardwright-init.desktop; do
	if [ ! -f "$root/$f" ]; then
		fail "desktop entry /$f missing"
	elif out=$(desktop-file-validate "$root/$f" 2>&1 | grep -v ': hint: ') && [ -n "$out" ]; then
		fail "desktop-file-validate /$f: $out"
	else
		ok "desktop-file-validate /$f"
	fi
done
grep -qx 'MimeType=x-scheme-handler/cardwright;' "$root/usr/share/applications/cardwright-url.desktop" &&
	grep -qx 'Exec=cardwright open %u' "$root/usr/share/applications/cardwright-url.desktop" &&
	ok "URI handler: x-scheme-handler/cardwright, cardwright open %u" || fail "URI handler entry"

want_conffiles=$'/etc/cardwright/cardwright.cfg\n/etc/xdg/autostart/cardwright.desktop'
if [ "$(sort "$tmp/control/conffiles")" = "$want_conffiles" ]; then
	ok "conffiles: $(echo $want_conffiles)"
else
	fail "conffiles: $(cat "$tmp/control/conffiles"), want $want_conffiles"
fi

# Every library the binary needs is in Depends, by its Debian package.
depends=$(field Depends)
bin=$root/usr/bin/cardwright
for lib in $(objdump -p "$bin" | awk '$1 == "NEEDED" { print $2 }'); do
	pkg=$(dpkg -S "*/$lib" 2>/dev/null | grep -v ':i386' | head -1 | cut -d: -f1)
	if [ -z "$pkg" ]; then
		fail "NEEDED $lib: no installed package has it"
	elif [[ ", $depends," == *", $pkg"[\ ,]* ]]; then
		ok "NEEDED $lib: $pkg in Depends"
	else
		fail "NEEDED $lib: $pkg not in Depends ($depends)"
	fi
done
[[ ", $depends," == *", pcscd,"* ]] && ok "Depends: pcscd" || fail "Depends lacks pcscd"

# Every Go module linked in has a paragraph in the copyright file.
copyright=$root/usr/share/doc/cardwright/copyright
missing=$(go version -m "$bin" | awk '$1 == "dep" { print $2 }' | while read -r mod; do
	grep -Eq "^(Files:| ) *$mod/\*" "$copyright" || echo "$mod"
done)
[ -z "$missing" ] && ok "copyright: every linked Go module listed" || fail "copyright lacks: $missing"

# The binary reports the package's version (without the Debian revision).
pkgver=$(field Version)
if out=$("$bin" version) && [[ $out == "cardwright ${pkgver%-*} "* ]]; then
	ok "cardwright version: ${pkgver%-*}"
else
	fail "cardwright version: $out, want ${pkgver%-*}"
fi

# The packaged configuration loads with the packaged binary.
if out=$("$bin" check --config "$root/etc/cardwright/cardwright.cfg" testdata/demo/demo.dsc 2>&1); then
	ok "packaged cardwright.cfg loads (cardwright check --config)"
else
	fail "packaged cardwright.cfg: $out"
fi

if out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$root/usr/share/man/man1/cardwright.1.gz" 2>&1 >/dev/null) && [ -z "$out" ]; then
	ok "man page renders without warnings"
else
	fail "man page: $out"
fi

echo "package: $deb, $(stat -c %s "$deb") bytes, Installed-Size $(field Installed-Size) KiB"
exit $failed
