# socketd: build the daemon and its plugins into bin/, run, test, benchmark.
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Every folder under plugins/ is a plugin named after it.
PLUGINS := $(notdir $(patsubst %/,%,$(dir $(wildcard plugins/*/main.go))))

.PHONY: build run test vet bench proto clean

build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/socketd ./daemon
	@for p in $(PLUGINS); do \
		echo "$(GO) build -o $(BIN)/socketd-plugin-$$p ./plugins/$$p"; \
		$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/socketd-plugin-$$p ./plugins/$$p || exit 1; \
	done

run: build
	$(BIN)/socketd run -config config.hcl

# vet, then every test with the race detector. The end-to-end tests
# (daemon/e2e) build the real binaries, start the daemon with real plugin
# processes on ephemeral loopback ports and use real clients (net/http,
# curl, headless Chromium).
test: vet
	$(GO) test -race -timeout 15m ./...

vet:
	$(GO) vet ./...

# socketd next to nginx, Caddy, nginx→Go and Python's http.server, driven
# by wrk (bench/main.go; installs wrk, nginx and caddy when run as root).
# A few minutes; results also in bench/results/latest.json.
bench: build
	$(GO) run ./bench

# Regenerate the plugin protocol's Go code (committed). Needs protoc
# (Debian: protobuf-compiler); the Go generators are pinned here.
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
proto:
	GOBIN=$(CURDIR)/.tools $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(CURDIR)/.tools $(GO) install $(PROTOC_GEN_GO_GRPC)
	cd sdk/proto && PATH="$(CURDIR)/.tools:$$PATH" protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative socketd.proto

clean:
	rm -rf $(BIN) .tools
