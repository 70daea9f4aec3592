# cardwright — build, test, demo.
# `make test` installs what is missing, runs `make lint`, starts the real test
# stack (pcscd with virtual readers, vicc, the project's own virtual card,
# SoftHSM2), runs every test with the race detector, and stops the stack even
# when tests fail.

GO        ?= go
BIN       := bin
PKGS      := ./...
TESTFLAGS ?= -race -count=1 -timeout 60m
FUZZTIME  ?= 5s
export CARDWRIGHT_STACK_DIR ?= /tmp/cardwright-stack

.PHONY: all build deps test unit lint lint-static fuzz demo stack-start stack-stop bench clean $(BIN)/staticcheck

all: build

deps:
	scripts/install-deps

build:
	CGO_ENABLED=1 $(GO) build -o $(BIN)/cardwright ./cmd/cardwright
	CGO_ENABLED=0 $(GO) build -o $(BIN)/vcard ./cmd/vcard

# Unit tests only (no stack): integration tests skip under -short.
unit:
	$(GO) test -short $(PKGS)

test: deps build lint
	scripts/teststack start
	$(GO) test $(TESTFLAGS) $(PKGS); rc=$$?; scripts/teststack stop; exit $$rc

# The hygiene gate: the static checks, then every fuzz target for $(FUZZTIME).
lint: lint-static fuzz

# gofmt, go vet (also of the nogui server build), staticcheck, tidy go.mod
# files, and the Windows build with the desktop app (cgo with mingw, as the
# installer ships it; about 10 minutes cold on 2 cores, most of it Fyne).
lint-static: deps $(BIN)/staticcheck
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags nogui ./cmd/cardwright
	$(BIN)/staticcheck $(PKGS)
	$(GO) mod tidy -diff
	$(GO) -C tools mod tidy -diff
	GOOS=windows GOARCH=amd64 CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc \
		$(GO) build -o $(BIN)/windows-amd64/cardwright.exe ./cmd/cardwright

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
	rm -rf $(BIN)
