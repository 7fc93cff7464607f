# RawFlow build and test entry points. `make test` is the one command CI runs (.ci/run).

GO ?= go
# Debian packages the tests drive for real: redis-server, ffmpeg (origin and players).
TEST_PACKAGES := redis-server ffmpeg

.PHONY: test deps demo build vet fuzz

## test: install what the tests need (when missing), vet, run every test with -race, then
## each fuzz target for a short bounded time (FUZZTIME, 5s here) on top of its committed
## seed corpus (testdata/fuzz).
test: deps vet
	$(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=5s

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
FUZZ_TARGETS := playlist:FuzzParseOrigin playlist:FuzzParseGateway playlist:FuzzParseMultivariant \
	playlist:FuzzParseAttrs playlist:FuzzHoldBack swarm:FuzzTrackerRequests \
	gateway/tsingest:FuzzSegmenter internal/srt:FuzzParsePacket internal/srt:FuzzConnPackets
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $${t#*:} for $(FUZZTIME)"; \
	  $(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZTIME) ./$${t%%:*}/; \
	done
