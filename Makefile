# Cairn — build, lint and test. `make help` lists the targets.
#
# CI runs .ci/run, which installs what is missing and then runs `make test`.

SHELL       := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO     ?= go
GOPATH := $(shell $(GO) env GOPATH)
GOBIN  := $(GOPATH)/bin

# Pinned tools, installed by `make tools` into $(GOBIN).
# staticcheck 2026.2.2 is built for and supports Go 1.26 (it needs go >= 1.26.0).
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := $(GOBIN)/staticcheck

PKGS     ?= ./...
FUZZTIME ?= 10s
BENCH    ?= .
# -benchtime of `make bench`. At 1s the whole run takes about two minutes
# on an idle 2-core machine (2m49s measured at a load average of 12);
# store/ takes half of it, as BenchmarkRestart/keys=1000000 and
# BenchmarkMemoryPerKey build their stores outside the timer, and
# BenchmarkMemberRoundTrip starts its clusters (1 and 3 members) once
# each. BENCHTIME=100x or BENCH=regexp shortens a run.
BENCHTIME ?= 1s
COVEROUT ?= cover.out
SEEDS    ?= 200

.PHONY: help build image test lint tools bench fuzz cover clean sim sim-bugs

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build the static binary bin/cairn
	CGO_ENABLED=0 $(GO) build -o bin/cairn .

image: build ## the FROM scratch Docker image cairn:dev around bin/cairn
	docker build -t cairn:dev .

test: lint ## the whole suite: lint, every test with the race detector, then 500 simulator seeds without it
	$(GO) test -race -count=1 $(PKGS)
	@$(MAKE) --no-print-directory sim SEEDS=500

lint: tools ## gofmt, go vet and staticcheck (checks chosen in staticcheck.conf)
	@echo '>> gofmt -l .'
	@unformatted="$$(gofmt -l .)"; \
	if [[ -n "$$unformatted" ]]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; \
		echo "$$unformatted"; \
		exit 1; \
	fi
	@echo '>> go vet $(PKGS)'
	@$(GO) vet $(PKGS)
	@echo '>> staticcheck $(PKGS)'
	@$(STATICCHECK) $(PKGS)

tools: ## install the pinned tools into $(go env GOPATH)/bin
	@if ! "$(STATICCHECK)" -version 2>/dev/null | grep -qF '($(STATICCHECK_VERSION:v%=%))'; then \
		echo ">> go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)"; \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); \
	fi

# The hot paths, each with allocations per operation (-benchmem):
#   httpapi  BenchmarkHTTPSet, BenchmarkHTTPGet (the handlers alone),
#            BenchmarkAppendEvent (JSON event encoding),
#            BenchmarkMemberRoundTrip (a whole request: loopback HTTP,
#            handler, 1 or 3 real members)
#   server   BenchmarkMemberSetParallel (the member's set path)
#   store    BenchmarkSet, BenchmarkGet (apply and get),
#            BenchmarkRequestMarshal, BenchmarkRequestUnmarshal
#   wal      BenchmarkSaveWriters (WAL save with group commit)
#   peer     BenchmarkEncodeFrame, BenchmarkDecodeFrames (peer messages)
#   consensus BenchmarkProposeThreeMembers, BenchmarkProposeBatch64
bench: ## run every benchmark once with -benchmem (BENCH=regexp, BENCHTIME=1s)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime '$(BENCHTIME)' -benchmem $(PKGS)

# go test -fuzz takes one package and one target at a time, so list the
# Fuzz targets per package first and run each for FUZZTIME.
# `go test -list` prints the names, then "ok <package> <time>".
fuzz: ## run each Fuzz target for FUZZTIME (default 10s)
	@targets="$$($(GO) test -list '^Fuzz' $(PKGS) | \
		awk '/^Fuzz/ { f[n++] = $$1; next } \
		     /^ok/   { for (i = 0; i < n; i++) print $$2, f[i]; n = 0 }')"; \
	if [[ -z "$$targets" ]]; then echo "no Fuzz targets found"; exit 0; fi; \
	while read -r pkg target; do \
		echo ">> $$pkg $$target (fuzztime $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime '$(FUZZTIME)' "$$pkg" </dev/null; \
	done <<< "$$targets"

cover: ## test with coverage of every package; writes $(COVEROUT)
	$(GO) test -count=1 -covermode=atomic -coverpkg=./... -coverprofile='$(COVEROUT)' $(PKGS)
	@$(GO) tool cover -func='$(COVEROUT)' | tail -n 1
	@echo "per line: go tool cover -html=$(COVEROUT)"

# The whole-cluster simulator (server/sim_test.go). Each ends with its
# verdict line: "N seeds, 0 failures" (or the failing seeds, each with
# the command that replays it), and "K of K bugs caught".
sim: ## run SEEDS (default 200) seeds of the whole-cluster simulator
	@$(GO) test ./server -count=1 -v -timeout 60m -run '^TestWholeClusterSimulation$$' -sim.seeds='$(SEEDS)' | grep -v '^=== RUN'

sim-bugs: ## switch on each deliberate bug in the simulator; each must be caught
	@$(GO) test ./server -count=1 -v -timeout 30m -run '^TestWholeClusterSimulatorCatchesBugs$$' | grep -v '^=== RUN'

clean: ## remove build and coverage output
	rm -rf bin '$(COVEROUT)'
