# socketd: build the daemon and its plugins into bin/, run, test, benchmark.
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Every folder under plugins/ is a plugin named after it.
PLUGINS := $(notdir $(patsubst %/,%,$(dir $(wildcard plugins/*/main.go))))

.PHONY: build run test vet bench proto clean install

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
# vtprotobuf's generator, at the version go.mod holds for its runtime:
# plain-Go marshal/unmarshal/size methods (sdk/proto/codec.go uses them).
PROTOC_GEN_VTPROTO := github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@v0.6.1-0.20240319094008-0393e58bdf10
# Heads whose headers decode into Header messages made ready beforehand
# (sdk/proto/arena.go): marked so, vtprotobuf's decoder fills the ones a
# repeated field already holds instead of allocating each.
VTPROTO_REUSE := ,pool=github.com/socketd/socketd/sdk/proto.HTTPRequest,pool=github.com/socketd/socketd/sdk/proto.HTTPResponse

proto:
	GOBIN=$(CURDIR)/.tools $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(CURDIR)/.tools $(GO) install $(PROTOC_GEN_GO_GRPC)
	GOBIN=$(CURDIR)/.tools $(GO) install $(PROTOC_GEN_VTPROTO)
	cd sdk/proto && PATH="$(CURDIR)/.tools:$$PATH" protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative \
		--go-vtproto_out=. --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+unmarshal_unsafe+size$(VTPROTO_REUSE) socketd.proto

clean:
	rm -rf $(BIN) .tools

# Install the daemon, the plugins, the tutorial's www/, the systemd units
# and an example config (kept if one is already there). Paths in the units
# and the config follow PREFIX; DESTDIR stages the tree for a package:
#   sudo make install && sudo systemctl daemon-reload
#   make install DESTDIR=/tmp/pkg PREFIX=/usr
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
PLUGINDIR  ?= $(PREFIX)/lib/socketd/plugins
DATADIR    ?= $(PREFIX)/share/socketd
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
INSTALL    ?= install
SUBST := sed -e 's|/usr/local/bin/socketd|$(BINDIR)/socketd|g' \
	-e 's|/usr/local/lib/socketd/plugins|$(PLUGINDIR)|g' \
	-e 's|/usr/local/share/socketd|$(DATADIR)|g' \
	-e 's|/etc/socketd/|$(SYSCONFDIR)/socketd/|g'
install: build
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(DATADIR)/www \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/socketd
	$(INSTALL) -m 0755 $(BIN)/socketd $(DESTDIR)$(BINDIR)/socketd
	@for p in $(PLUGINS); do \
		echo "$(INSTALL) -m 0755 $(BIN)/socketd-plugin-$$p $(DESTDIR)$(PLUGINDIR)/"; \
		$(INSTALL) -m 0755 $(BIN)/socketd-plugin-$$p $(DESTDIR)$(PLUGINDIR)/ || exit 1; \
	done
	$(INSTALL) -m 0644 www/* $(DESTDIR)$(DATADIR)/www/
	$(SUBST) deploy/systemd/socketd.service > $(DESTDIR)$(UNITDIR)/socketd.service
	$(SUBST) deploy/systemd/socketd.socket > $(DESTDIR)$(UNITDIR)/socketd.socket
	chmod 0644 $(DESTDIR)$(UNITDIR)/socketd.service $(DESTDIR)$(UNITDIR)/socketd.socket
	$(SUBST) deploy/systemd/config.hcl > $(DESTDIR)$(SYSCONFDIR)/socketd/config.hcl.example
	chmod 0644 $(DESTDIR)$(SYSCONFDIR)/socketd/config.hcl.example
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/socketd/config.hcl ]; then \
		echo "cp config.hcl.example $(DESTDIR)$(SYSCONFDIR)/socketd/config.hcl"; \
		cp $(DESTDIR)$(SYSCONFDIR)/socketd/config.hcl.example $(DESTDIR)$(SYSCONFDIR)/socketd/config.hcl; \
	else \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/socketd/config.hcl (the new example is config.hcl.example)"; \
	fi
