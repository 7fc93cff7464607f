# RawFlow build and test entry points. `make test` is the one command CI runs (.ci/run).

GO ?= go
# npm ci, when node_modules holds no install (npm writes node_modules/.package-lock.json
# last) or one older than package-lock.json.
NPM_CI = if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
	  npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.package-lock.json; fi

# golangci-lint, pinned: `make deps` installs this version into TOOLBIN (GOPATH/bin unless
# set) when the one there is missing or another version. On a cold Go build cache the
# install takes about five minutes; after that make deps only checks the version.
GOLANGCI_LINT_VERSION = 2.15.0
TOOLBIN ?= $(shell $(GO) env GOPATH)/bin
GOLANGCI_LINT = $(TOOLBIN)/golangci-lint

.PHONY: test deps golangci-lint demo build vet lint fuzz web bench-edge bench-memory bench-sites

## test: install what the tests need (when missing), vet, lint, run every test with -race —
## the unit tests and the end-to-end ones (build tag e2e: real ffmpeg origins and players,
## Redis, Chromium), PARALLEL end-to-end tests at a time — then each fuzz target for a short
## bounded number of inputs (FUZZTIME, 50000x here) on top of its committed seed corpus
## (testdata/fuzz).
## Unit tests alone: go test ./... (or -short, which also skips the slower ffmpeg ones).
PARALLEL ?= 4
test: deps web vet lint
	RAWFLOW_ARTIFACTS=$(CURDIR)/artifacts $(GO) test -race -count=1 -tags e2e -parallel $(PARALLEL) -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=50000x

## deps: apt-get install the Debian packages the tests need, only those missing: gcc (go test
## -race needs cgo), redis-server and redis-tools (redis-cli builds the test Redis Cluster),
## ffmpeg (origins and players), nodejs, npm and chromium (the dashboard's browser tests),
## nginx-light (deploy: `nginx -t` on the load balancer's configuration; bench/edge.sh),
## systemd (deploy: systemd-analyze verify and security on the units), iproute2 and iptables
## (TestNATSites: network namespaces and NAT routers; it skips without them), nftables and
## miniupnpd-nftables (TestPortMappedSite: a home router's NAT-PMP and UPnP IGD); then npm ci (hls.js,
## playwright-core) when node_modules is missing or stale, and the pinned golangci-lint.
deps:
	@missing=""; \
	command -v gcc >/dev/null || missing="$$missing gcc"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-cli >/dev/null || missing="$$missing redis-tools"; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v nginx >/dev/null || missing="$$missing nginx-light"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v iptables >/dev/null || missing="$$missing iptables"; \
	command -v nft >/dev/null || missing="$$missing nftables"; \
	command -v miniupnpd >/dev/null || missing="$$missing miniupnpd-nftables"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@$(NPM_CI)
	@$(MAKE) --no-print-directory golangci-lint

## golangci-lint: go install golangci-lint v$(GOLANGCI_LINT_VERSION) into TOOLBIN unless that
## version is there already (its `version --short` is compared, so a stale one is replaced).
golangci-lint:
	@if [ "$$($(GOLANGCI_LINT) version --short 2>/dev/null)" != "$(GOLANGCI_LINT_VERSION)" ]; then \
	  echo "installing golangci-lint v$(GOLANGCI_LINT_VERSION) into $(TOOLBIN)"; rm -f "$(GOLANGCI_LINT)"; \
	  GOBIN="$(TOOLBIN)" $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v$(GOLANGCI_LINT_VERSION); \
	fi

## web: copy hls.js from node_modules into web/static/vendor/ (not committed), which the Go
## build embeds for the preview page. Without npm it says so and goes on: the binary then
## lacks hls.js and the preview page falls back to the browser's native HLS.
web:
	@set -e; if ! command -v npm >/dev/null; then echo "web: npm missing (make deps): building without hls.js"; exit 0; fi; \
	$(NPM_CI); \
	mkdir -p web/static/vendor && cp node_modules/hls.js/dist/hls.min.js web/static/vendor/hls.min.js

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet -tags e2e ./...

## lint: golangci-lint (the pinned version) with .golangci.yml, which lists the linters and
## says why each exclusion is there.
lint: golangci-lint
	$(GOLANGCI_LINT) run ./...

## demo: the built-in live source, a gateway and two proxies (no Redis, no ffmpeg).
demo: web
	$(GO) run ./cmd/rawflow demo

build: web
	CGO_ENABLED=0 $(GO) build -o bin/rawflow ./cmd/rawflow

## bench-edge: the gateway against nginx with wrk, same bytes, same load (bench/edge.sh).
bench-edge:
	bench/edge.sh

## bench-sites: two sites of assisted viewers and a gateway in network namespaces, with
## constrained WAN links and a capped gateway uplink (tc); needs root (bench/sites.sh; about
## 5 min). DURATION per scenario (default 60s), VIEWERS per site (default 10).
bench-sites:
	bench/sites.sh $(or $(DURATION),60s) $(or $(VIEWERS),10)

## bench-memory: gateway RSS per channel and with 1,000 slow players, proxy RSS per cache size,
## tracker throughput on a real Redis (bench/memory; a few minutes). The table goes to
## bench/results/memory-DATE/memory.txt, every number to memory.json there; MEMORY_ARGS adds flags.
MEMORY_ARGS ?=
bench-memory:
	@d=bench/results/memory-$$(date -u +%Y%m%dT%H%M%SZ); mkdir -p "$$d"; \
	{ $(GO) run ./bench/memory --json "$$d/memory.json" $(MEMORY_ARGS); echo $$? >"$$d/.status"; } | tee "$$d/memory.txt"; \
	s=$$(cat "$$d/.status"); rm -f "$$d/.status"; exit $$s

## fuzz: run each fuzz target for FUZZTIME (default 1000000x). A count of inputs, not a
## duration: a -fuzztime duration's deadline races the workers in Go 1.26's fuzz coordinator
## and fails runs that found nothing with "context deadline exceeded" (golang/go#75804,
## fixed in Go 1.27); a count has no deadline. A duration (e.g. 20s) still works.
FUZZTIME ?= 1000000x
FUZZ_TARGETS := playlist:FuzzParseOrigin playlist:FuzzParseGateway playlist:FuzzParseMultivariant \
	playlist:FuzzParseAttrs playlist:FuzzHoldBack swarm:FuzzTrackerRequests \
	gateway/tsingest:FuzzSegmenter gateway/tsingest/internal/srt:FuzzParsePacket \
	gateway/tsingest/internal/srt:FuzzConnPackets
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $${t#*:} for $(FUZZTIME)"; \
	  $(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZTIME) ./$${t%%:*}/; \
	done
