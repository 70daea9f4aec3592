#!/usr/bin/env bash
# installer/windows/build-msi.sh — builds the signed Windows installers
#
#   installer/windows/build-msi.sh [-o DIST] [--builddir DIR] [--bindir DIR] [x64] [x86]
#
# For each architecture (default: both) it cross-builds the payload with
# mingw-w64 into bin/msi/<arch>/ (--builddir DIR: DIR/<arch>/), unless
# --bindir names prebuilt, already signed executables for a single
# architecture; checks the executables'
# DLL imports, signs them (installer/sign.sh), packages them with wixl
# (cardwright.wxs), gives the rollback custom action the type wixl 0.101
# cannot write (msibuild), signs the MSI and records it in DIST/SHA256SUMS:
#
#   DIST/cardwright-<msi version>-x64.msi, DIST/cardwright-<msi version>-x86.msi
#
# The payload, from one cgo build each (the second and third links reuse the
# compile cache):
#   cardwright.exe          the CLI with the desktop app (Fyne), console
#   cardwright-tray.exe     the same program linked -H=windowsgui (no console
#                           window): Run key, Start menu, cardwright: links
#   cardwright-service.exe  -tags nogui (no Fyne): the Windows service
# mingw's runtime is linked statically (-extldflags -static) so no
# libgcc/libwinpthread DLL is needed; installer/test/msi-check.sh --imports
# holds the allow-list of DLLs an executable may import.
#
# Versions (override with VERSION and MSI_VERSION in the environment):
#   MSI_VERSION  major.minor.build, numeric as Windows Installer wants it:
#                major.minor from the newest tag vX.Y[.Z] (0.1 without one),
#                build = the number of commits in HEAD (git rev-list --count),
#                so every commit on the main line makes a higher version.
#                Windows Installer ignores a fourth field and the Upgrade rows
#                exclude the current version: two builds of one commit cannot
#                upgrade each other (set MSI_VERSION to force).
#   VERSION      the program's version (-X main.version): git describe --tags
#                --dirty without the leading v; without a tag
#                <MSI_VERSION>-g<hash>[-dirty].
#
# Needs: go, gcc-mingw-w64-x86-64, gcc-mingw-w64-i686, wixl, msitools (msiinfo, msibuild),
# osslsigncode, openssl (throwaway certificate), binutils-mingw-w64.
# Signing: see installer/sign.sh (CARDWRIGHT_SIGN_*; a throwaway certificate
# when unset).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
GO=${GO:-go}
dist=dist
builddir=bin/msi
bindir_given=""
arches=()
while [ $# -gt 0 ]; do
	case $1 in
	-o) dist=$2; shift 2 ;;
	--builddir) builddir=$2; shift 2 ;;
	--bindir) bindir_given=$2; shift 2 ;;
	x64 | x86) arches+=("$1"); shift ;;
	-h | --help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "build-msi.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ ${#arches[@]} -gt 0 ] || arches=(x64 x86)
if [ -n "$bindir_given" ] && [ ${#arches[@]} -ne 1 ]; then
	echo "build-msi.sh: --bindir needs exactly one architecture" >&2
	exit 2
fi

die() { echo "build-msi.sh: $*" >&2; exit 1; }
for t in wixl msiinfo msibuild osslsigncode openssl; do
	command -v $t >/dev/null || die "$t not found (apt-get install wixl msitools osslsigncode)"
done

# msi_version prints major.minor.build from git.
msi_version() {
	local tag mm count
	tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null || true)
	mm=0.1
	if [ -n "$tag" ]; then
		mm=$(printf '%s\n' "${tag#v}" | sed -n 's/^\([0-9]\{1,3\}\)\.\([0-9]\{1,3\}\).*/\1.\2/p')
		[ -n "$mm" ] || mm=0.1
	fi
	count=$(git rev-list --count HEAD)
	[ "$count" -le 65535 ] || die "$count commits: the MSI build field stops at 65535; set MSI_VERSION"
	echo "$mm.$count"
}

MSI_VERSION=${MSI_VERSION:-$(msi_version)}
printf '%s\n' "$MSI_VERSION" | grep -Eq '^([0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])\.([0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])\.[0-9]{1,5}$' \
	|| die "MSI_VERSION=$MSI_VERSION is not major.minor.build (0-255.0-255.0-65535)"
[ "${MSI_VERSION##*.}" -le 65535 ] || die "MSI_VERSION=$MSI_VERSION: build above 65535"
if [ -z "${VERSION:-}" ]; then
	if d=$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null); then
		VERSION=${d#v}
	else
		VERSION=$MSI_VERSION-g$(git rev-parse --short HEAD)
		git diff --quiet HEAD -- 2>/dev/null || VERSION=$VERSION-dirty
	fi
fi
echo "build-msi.sh: cardwright $VERSION, MSI version $MSI_VERSION" >&2

# build ARCH OUTDIR — the three executables, unsigned, into OUTDIR.
build() {
	local arch=$1 out=$2 goarch cc
	case $arch in
	x64) goarch=amd64 cc=x86_64-w64-mingw32-gcc ;;
	x86) goarch=386 cc=i686-w64-mingw32-gcc ;;
	esac
	command -v $cc >/dev/null || die "$cc not found (apt-get install gcc-mingw-w64-$([ $arch = x64 ] && echo x86-64 || echo i686))"
	local ld="-s -w -X main.version=$VERSION -extldflags=-static"
	local env=(GOOS=windows GOARCH=$goarch CGO_ENABLED=1 CC=$cc)
	mkdir -p "$out"
	echo "build-msi.sh: go build $arch (cardwright.exe, cardwright-tray.exe, cardwright-service.exe)" >&2
	env "${env[@]}" "$GO" build -trimpath -ldflags "$ld" -o "$out/cardwright.exe" ./cmd/cardwright
	env "${env[@]}" "$GO" build -trimpath -ldflags "$ld -H=windowsgui" -o "$out/cardwright-tray.exe" ./cmd/cardwright
	env "${env[@]}" "$GO" build -trimpath -tags nogui -ldflags "$ld" -o "$out/cardwright-service.exe" ./cmd/cardwright
}

# sums DIST FILE... — replaces FILEs' lines in DIST/SHA256SUMS and drops
# lines of files no longer there (the deb's build may add its own the same way).
sums() {
	local d=$1 f
	shift
	(
		cd "$d"
		touch SHA256SUMS
		{
			while read -r h n; do
				n=${n#\*}
				[ -f "$n" ] || continue
				for f in "$@"; do [ "$n" = "$f" ] && continue 2; done
				printf '%s  %s\n' "$h" "$n"
			done <SHA256SUMS
			sha256sum -- "$@"
		} | sort -k2 >SHA256SUMS.tmp
		mv SHA256SUMS.tmp SHA256SUMS
	)
}

mkdir -p "$dist"
built=()
for arch in "${arches[@]}"; do
	if [ -n "$bindir_given" ]; then
		bindir=$bindir_given
	else
		bindir=$builddir/$arch
		build "$arch" "$bindir/unsigned"
		cp "$bindir"/unsigned/*.exe "$bindir/"
		installer/sign.sh "$bindir/cardwright.exe" "$bindir/cardwright-tray.exe" "$bindir/cardwright-service.exe"
	fi
	for f in cardwright.exe cardwright-tray.exe cardwright-service.exe; do
		[ -f "$bindir/$f" ] || die "$bindir/$f missing"
	done
	installer/test/msi-check.sh --imports "$bindir"/cardwright.exe "$bindir"/cardwright-tray.exe "$bindir"/cardwright-service.exe \
		|| die "$arch: an executable imports a DLL that is not on the allow-list"

	# wixl resolves File/@Source relative to the current directory and
	# refuses absolute paths.
	relbin=$(realpath --relative-to=. "$bindir")
	msi=cardwright-$MSI_VERSION-$arch.msi
	tmpmsi=$(mktemp --suffix=.msi "$dist/.$msi.XXXXXX")
	echo "build-msi.sh: wixl $dist/$msi" >&2
	wixl -a "$arch" -D Arch="$arch" -D Version="$MSI_VERSION" -D BinDir="$relbin" -D SrcDir=installer/windows \
		-o "$tmpmsi" installer/windows/cardwright.wxs
	# wixl 0.101 ignores Execute="rollback" (it writes the plain type 2130):
	# BrowserPolicyRollback gets its rollback type 3410 here, before signing.
	rbtype=$(msiinfo export "$tmpmsi" CustomAction | awk -F'\t' '$1 == "BrowserPolicyRollback" { print $2 }')
	case $rbtype in
	2130 | 3410) msibuild "$tmpmsi" -q "UPDATE CustomAction SET Type = 3410 WHERE Action = 'BrowserPolicyRollback'" ;;
	*) rm -f "$tmpmsi"; die "$arch: BrowserPolicyRollback has type '$rbtype', want 2130 from wixl 0.101 (or 3410)" ;;
	esac
	installer/sign.sh "$tmpmsi"
	mv "$tmpmsi" "$dist/$msi"
	built+=("$msi")
done
sums "$dist" "${built[@]}"
for m in "${built[@]}"; do
	echo "build-msi.sh: $dist/$m ($(du -h "$dist/$m" | cut -f1))" >&2
done
