# RawFlow build and test entry points. `make test` is the one command CI runs (.ci/run).

GO ?= go
# Debian packages the tests drive for real: redis-server, ffmpeg (origin and players).
TEST_PACKAGES := redis-server ffmpeg

.PHONY: test deps demo build vet fuzz

## test: install what the tests need (when missing), vet, and run every test with -race.
test: deps vet
	$(GO) test -race -count=1 -timeout 15m ./...

## deps: apt-get install the Debian packages the tests need, only those missing.
deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

## demo: the built-in live source, a gateway and two proxies (no Redis, no ffmpeg).
demo:
	$(GO) run ./cmd/rawflow demo

build:
	CGO_ENABLED=0 $(GO) build -o bin/rawflow ./cmd/rawflow

## fuzz: run each fuzz target for FUZZTIME (default 20s).
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParseOrigin -fuzztime=$(FUZZTIME) ./playlist/
	$(GO) test -run='^$$' -fuzz=FuzzParseGateway -fuzztime=$(FUZZTIME) ./playlist/
