# cardwright — build, test, demo, packages.
# `make test` installs what is missing, runs `make lint`, builds the packages
# (`make dist`) and checks them (lintian, units, desktop files, MSI tables,
# payloads and signatures), starts the real test stack (pcscd with virtual
# readers, vicc, the project's own virtual card, SoftHSM2, Xvfb), runs every
# test with the race detector and the Debian package's install round trip in
# a clean Debian 12 root, and stops the stack even when tests fail.

GO        ?= go
BIN       := bin
PKGS      := ./...
TESTFLAGS ?= -race -count=1 -timeout 60m
FUZZTIME  ?= 5s
export CARDWRIGHT_STACK_DIR ?= /tmp/cardwright-stack

.PHONY: all build deps test unit lint lint-static fuzz demo stack-start stack-stop bench clean dist deb msi check-dist $(BIN)/staticcheck

all: build

deps:
	scripts/install-deps

# bin/cardwright is built as the Debian package builds it (installer/build.sh:
# PIE, dpkg-buildflags hardening, -trimpath), so `make dist` reuses the cache.
build:
	installer/build.sh bin
	CGO_ENABLED=0 $(GO) build -o $(BIN)/vcard ./cmd/vcard

# Unit tests only (no stack): integration tests skip under -short.
unit:
	$(GO) test -short $(PKGS)

# The desktop tests run bin/cardwright (CARDWRIGHT_BIN) instead of building
# their own; the round trip needs the stack (the installed binary runs the
# demo job on it).
test: deps build lint check-dist
	scripts/teststack start
	CARDWRIGHT_BIN=$(CURDIR)/$(BIN)/cardwright $(GO) test $(TESTFLAGS) $(PKGS); rc=$$?; \
	if [ $$rc -eq 0 ]; then installer/test/deb-roundtrip.sh dist/cardwright_*_amd64.deb; rc=$$?; fi; \
	scripts/teststack stop; exit $$rc

# The packages (installer/README.md): the Debian package, the signed x64 and
# x86 MSIs (mingw cross builds with Fyne: the longest step of a cold build),
# SHA256SUMS. The version comes from git describe.
dist: deb msi
	installer/build.sh sums
deb: deps
	installer/build.sh deb
msi: deps
	installer/build.sh msi

# What the packages are checked for without installing them: lintian, the
# units, the desktop files; the MSIs' tables, sequence, payload, signatures
# and DLL imports (and that the check catches each kind of fault); the x64
# cardwright.exe under wine64 (version, check, serve's health and its 403 to a
# foreign origin).
check-dist: dist
	installer/test/lint-deb.sh
	installer/test/msi-check.sh dist
	installer/test/msi-check.sh --self-test dist
	installer/test/wine-smoke.sh bin/msi/x64/cardwright.exe

# The hygiene gate: the static checks, then every fuzz target for $(FUZZTIME).
lint: lint-static fuzz

# gofmt, go vet (also of the nogui server build and of the Windows service),
# staticcheck, tidy go.mod files. The Windows builds are `make msi`'s.
lint-static: deps $(BIN)/staticcheck
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags nogui ./cmd/cardwright
	$(BIN)/staticcheck $(PKGS)
	$(GO) mod tidy -diff
	$(GO) -C tools mod tidy -diff
	GOOS=windows $(GO) vet ./winsvc

# Every fuzz target (grep ^func Fuzz), each for $(FUZZTIME); fails on a crash.
fuzz: deps
	GO=$(GO) FUZZTIME=$(FUZZTIME) scripts/fuzz

# Pinned in tools/go.mod; go build is a no-op when it is up to date.
$(BIN)/staticcheck:
	$(GO) build -C tools -o ../$(BIN)/ honnef.co/go/tools/cmd/staticcheck

demo: deps build
	scripts/demo

stack-start: deps build
	scripts/teststack start

stack-stop:
	scripts/teststack stop

bench: deps build
	scripts/teststack start
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS); rc=$$?; scripts/teststack stop; exit $$rc

clean:
	rm -rf $(BIN) dist
