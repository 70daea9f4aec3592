#!/usr/bin/env bash
# installer/build.sh TARGET...: build cardwright's installers into dist/.
#
#   bin       bin/cardwright, built as the package builds it (make build)
#   deb       dist/cardwright_<version>-1_amd64.deb (nfpm, installer/linux/)
#   msi       the signed x64 and x86 MSIs (installer/windows/build-msi.sh)
#   sums      dist/SHA256SUMS of the deb and the MSIs
#   version   print the version the artefacts get
#
# The version comes from git (see version below); VERSION=... overrides it
# (e.g. a newer build for an upgrade test). MAINTAINER overrides the
# package's maintainer. Each target is a function build_<target>; add new
# ones (msi-x64, msi-x86, sign) beside build_deb.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
DIST=${DIST:-dist}
MAINTAINER=${MAINTAINER:-cardwright authors <cardwright@users.noreply.github.com>}
export MAINTAINER

# version prints a version valid for Debian and usable on Windows builds:
#   a tagged commit v1.2.3            -> 1.2.3
#   commits after it                  -> 1.2.3+git<YYYYMMDDhhmmss>.<hash>
#   no tag                            -> 0.0~git<YYYYMMDDhhmmss>.<hash>
# with ".dirty" added when the work tree has changes (git describe --dirty).
# The commit time (UTC) keeps later commits sorting after earlier ones.
version() {
	if [ -n "${VERSION:-}" ]; then
		echo "$VERSION"
		return
	fi
	local desc when hash tag v
	desc=$(git describe --tags --always --dirty)
	when=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)
	hash=$(git rev-parse --short=7 HEAD)
	if tag=$(git describe --tags --abbrev=0 2>/dev/null); then
		v=${tag#v}
		if [ "$(git rev-list --count "$tag"..HEAD)" -gt 0 ]; then
			v="$v+git$when.$hash"
		fi
	else
		v="0.0~git$when.$hash"
	fi
	case $desc in *-dirty) v="$v.dirty" ;; esac
	echo "$v"
}

# nfpm, pinned in tools/go.mod; go build is a no-op when it is up to date.
nfpm() {
	"$GO" build -C tools -o ../bin/ github.com/goreleaser/nfpm/v2/cmd/nfpm
	bin/nfpm "$@"
}

# go_build OUT VERSION builds the Linux binary as Debian builds Go with cgo:
# PIE, the hardening flags of dpkg-buildflags, -trimpath, stripped. make
# build uses it too, so the package's build finds everything compiled (a
# second set of C flags would compile Fyne's C code again: minutes).
go_build() {
	(
		eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
		CGO_ENABLED=1 CGO_CFLAGS="$CFLAGS" CGO_CPPFLAGS="$CPPFLAGS" \
			CGO_CXXFLAGS="$CXXFLAGS" CGO_LDFLAGS="$LDFLAGS" \
			"$GO" build -trimpath -buildmode=pie -ldflags "-s -w -X main.version=$2" \
			-o "$1" ./cmd/cardwright
	)
}

build_bin() {
	mkdir -p bin
	go_build bin/cardwright "$(version)"
}

# build_msi: the Windows installers (both architectures) into $DIST.
build_msi() {
	rm -f "$DIST"/cardwright-*-x64.msi "$DIST"/cardwright-*-x86.msi
	VERSION=$(version) installer/windows/build-msi.sh -o "$DIST" x64 x86
}

# build_sums writes $DIST/SHA256SUMS over the packages there now.
build_sums() {
	(cd "$DIST" && sha256sum cardwright_*_amd64.deb cardwright-*.msi >SHA256SUMS)
	cat "$DIST/SHA256SUMS"
}

# build_deb builds the binary as Debian builds Go with cgo (PIE, the
# hardening flags of dpkg-buildflags, stripped), generates the man page,
# the bash completion and the icon from it, and packages everything with
# nfpm (installer/linux/nfpm.yaml).
build_deb() {
	local v stage epoch
	v=$(version)
	stage=$DIST/deb-build
	rm -rf "$stage"
	mkdir -p "$stage"
	epoch=$(git log -1 --format=%ct)
	export SOURCE_DATE_EPOCH=$epoch

	go_build "$stage/cardwright" "$v"

	"$stage/cardwright" gendoc --version "$v" --date "$(date -u -d "@$epoch" +%F)" \
		--man "$stage/cardwright.1" --bash "$stage/cardwright.bash" --icon "$stage/cardwright.png"
	gzip -9n "$stage/cardwright.1"

	# One changelog entry for this build: the project's history is git's.
	cat >"$stage/changelog.Debian" <<-EOF
	cardwright ($v-1) unstable; urgency=medium

	  * Build of commit $(git rev-parse --short=12 HEAD) ($(git describe --tags --always --dirty)).

	 -- $MAINTAINER  $(LC_ALL=C date -u -R -d "@$epoch")
	EOF
	gzip -9n "$stage/changelog.Debian"

	rm -f "$DIST"/cardwright_*_amd64.deb
	VERSION=$v nfpm pkg --packager deb --config installer/linux/nfpm.yaml --target "$DIST/"
	ls "$DIST"/cardwright_*_amd64.deb
}

usage() {
	echo "usage: installer/build.sh bin|deb|msi|sums|version..." >&2
	exit 2
}

[ $# -gt 0 ] || usage
for target in "$@"; do
	case $target in
	bin) build_bin ;;
	deb) build_deb ;;
	msi) build_msi ;;
	sums) build_sums ;;
	version) version ;;
	*) usage ;;
	esac
done
