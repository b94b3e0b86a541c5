# dbchat: `make run` starts a local server with a demo tenant, `make test`
# runs every check CI runs. `make help` lists the rest.
GO      ?= go
SQLC    := $(GO) tool sqlc
BIN     := bin/dbchat
# Provision pgvector locally only when no external database was named.
LOCAL_PG := $(if $(TEST_DATABASE_URL)$(DBCHAT_ADMIN_DATABASE_URL)$(DATABASE_URL),,pgvector)
# Likewise PgBouncer, which `make test` runs the service behind.
# How long `make test` fuzzes the SQL sandbox; `make fuzz` runs longer.
FUZZTIME ?= 30s
# The private cluster `make bench` runs on (one `cluster exec` per directory at a time).
BENCH_CLUSTER ?= .dbchat/bench
# Its shared_buffers (a size, or a share of memory such as 25%): PostgreSQL's
# 128MB by default; the vector parts' large graphs want more (see docs/NLSQL.md).
BENCH_SHARED_BUFFERS ?= 128MB
# The API document and the clients generated from it: Go (committed) and
# TypeScript (type-checked by `make verify`, with its tools pinned in TSCHECK).
OPENAPI   := internal/server/openapi.yaml
APICLIENT := internal/server/apiclient
TSCHECK   := $(APICLIENT)/testdata/ts
# Lighthouse, pinned, for make lighthouse.
LIGHTHOUSE := internal/web/lighthouse

.DEFAULT_GOAL := help
.PHONY: help run test build generate verify lint bench pgvector pgbouncer chromium tools web-vendor screenshots lighthouse fuzz clean chart-schema

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: $(LOCAL_PG) build ## start a private PostgreSQL, migrate, create the demo tenant and serve on :8080
	./$(BIN) dev

# go test stops a package after 10m by default; internal/server's integration
# tests (crashes, outages, PgBouncer restarts) under -race took longer than
# that on a 2-core machine busy with other work. A hang still ends the run.
TESTTIMEOUT ?= 30m

test: $(LOCAL_PG) pgbouncer chromium tools build verify ## vet, sqlc checks, go test -race (the web app's in headless Chromium) and a bounded sandbox fuzz run, against a private cluster
	./$(BIN) cluster exec --dir .dbchat/test -- sh -c '$(GO) test -race -count=1 -timeout $(TESTTIMEOUT) ./... && \
		$(GO) test -run "^$$" -fuzz FuzzSandbox -fuzztime $(FUZZTIME) ./internal/sandbox/'

fuzz: $(LOCAL_PG) build ## fuzz the SQL sandbox for FUZZTIME (default here 10m)
	./$(BIN) cluster exec --dir .dbchat/test -- $(GO) test -run '^$$' -fuzz FuzzSandbox -fuzztime $(if $(filter 30s,$(FUZZTIME)),10m,$(FUZZTIME)) ./internal/sandbox/

build: ## build bin/dbchat
	$(GO) build -o $(BIN) ./cmd/dbchat

generate: ## regenerate internal/dbsqlc (sqlc) and the Go API client internal/server/apiclient (oapi-codegen)
	$(SQLC) generate
	$(GO) generate ./$(APICLIENT)

verify: $(TSCHECK)/node_modules/.package-lock.json ## fail on stale generated code, sqlc vet findings, go vet, staticcheck or gofmt issues, or an API document a client generator rejects
	$(SQLC) diff
	$(SQLC) vet
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@test -z "$$(gofmt -l cmd internal db)" || { gofmt -l cmd internal db; echo "gofmt needed"; exit 1; }
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && set -e && \
	  echo "oapi-codegen: $(OPENAPI) -> $(APICLIENT)/apiclient.gen.go" && \
	  $(GO) tool oapi-codegen -config $(APICLIENT)/oapi-codegen.yaml -o "$$tmp/apiclient.gen.go" $(OPENAPI) && \
	  { diff -u $(APICLIENT)/apiclient.gen.go "$$tmp/apiclient.gen.go" || { echo "$(APICLIENT) is stale: run make generate"; exit 1; }; }
	cd $(TSCHECK) && node_modules/.bin/openapi-typescript ../../../openapi.yaml --output schema.gen.ts && node_modules/.bin/tsc --noEmit -p .
	./internal/web/vendor-src/vendor.sh --check

# The TypeScript check's tools, exactly as locked; reinstalled when the lock changes.
$(TSCHECK)/node_modules/.package-lock.json: $(TSCHECK)/package.json $(TSCHECK)/package-lock.json
	cd $(TSCHECK) && npm ci --ignore-scripts --no-audit --no-fund

lint: verify ## alias of verify

web-vendor: ## re-vendor the web app's JavaScript (vega, vega-lite, vega-embed, vega-interpreter, axe-core) from internal/web/vendor-src's lockfile
	./internal/web/vendor-src/vendor.sh

screenshots: $(LOCAL_PG) chromium build ## refresh the README's screenshots of the web app (docs/img) from its browser test
	./$(BIN) cluster exec --dir .dbchat/test -- env DBCHAT_SCREENSHOTS=docs/img $(GO) test -count=1 -run TestWebScenario ./internal/web/

lighthouse: $(LOCAL_PG) chromium build $(LIGHTHOUSE)/node_modules/.package-lock.json ## score the web app's chat screen with Lighthouse in the system's chromium; writes the scores to docs/BENCHMARKS.md
	./$(LIGHTHOUSE)/run.sh

$(LIGHTHOUSE)/node_modules/.package-lock.json: $(LIGHTHOUSE)/package.json $(LIGHTHOUSE)/package-lock.json
	cd $(LIGHTHOUSE) && npm ci --ignore-scripts --no-audit --no-fund

chart-schema: ## re-vendor the Vega-Lite v5 schema the chart tests validate against, from its pinned npm package
	./internal/chart/testdata/vendor-schema.sh

bench: $(LOCAL_PG) build ## benchmarks on a private cluster (BENCH_CLUSTER), writes docs/BENCHMARKS.md (BENCH=rls|http|vector|vector10k|import|ask|noisy|soak|replica|catalog, BENCH_SCALE=full, BENCH_SOAK=10m, BENCH_SHARED_BUFFERS=25% for the vector parts (default 128MB); BENCH_EXPLAIN=1: query plans to .dbchat/bench/work/explain)
	$(GO) build -o bin/dbchat-bench ./cmd/dbchat-bench
	./$(BIN) cluster exec --dir $(BENCH_CLUSTER) --fast=false --shared-buffers=$(BENCH_SHARED_BUFFERS) -- ./bin/dbchat-bench -out docs/BENCHMARKS.md

pgvector: ## install the pgvector extension for the local PostgreSQL if missing
	@./db/scripts/install-pgvector.sh

pgbouncer: ## install PgBouncer (the tests run the service behind it) if missing
	@./db/scripts/install-pgbouncer.sh

chromium: ## install Debian's chromium (the web app's end-to-end tests drive it headless) if missing
	@./db/scripts/install-chromium.sh

tools: ## install curl and jq (the README's walkthroughs, which make test runs) if missing
	@./db/scripts/install-walkthrough-tools.sh

clean: ## remove build output, the private clusters and the TypeScript check's node_modules
	rm -rf bin .dbchat $(TSCHECK)/node_modules $(TSCHECK)/schema.gen.ts internal/web/vendor-src/node_modules $(LIGHTHOUSE)/node_modules
