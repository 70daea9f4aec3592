# cardwright — build, test, demo.
# `make test` installs what is missing, starts the real test stack (pcscd with
# virtual readers, vicc, the project's own virtual card, SoftHSM2), runs every
# test with the race detector, and stops the stack even when tests fail.

GO        ?= go
BIN       := bin
PKGS      := ./...
TESTFLAGS ?= -race -count=1 -timeout 60m
export CARDWRIGHT_STACK_DIR ?= /tmp/cardwright-stack

.PHONY: all build deps test unit demo stack-start stack-stop fuzz bench clean

all: build

deps:
	scripts/install-deps

build:
	CGO_ENABLED=1 $(GO) build -o $(BIN)/cardwright ./cmd/cardwright
	CGO_ENABLED=0 $(GO) build -o $(BIN)/vcard ./cmd/vcard

# Unit tests only (no stack): integration tests skip under -short.
unit:
	$(GO) test -short $(PKGS)

test: deps build
	scripts/teststack start
	$(GO) vet $(PKGS) && $(GO) test $(TESTFLAGS) $(PKGS); rc=$$?; scripts/teststack stop; exit $$rc

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
