# sesame2mqtt — `make help` lists the targets.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 10s
GOFLAGS_BUILD = -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

.PHONY: help test vet fmt build cross image e2e demo bench fuzz

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

# cgo (and so the race detector and the libnfc reader) needs a C compiler;
# the reader also needs libnfc-dev. Without them the targets below say so
# and do what still works.
CGO := $(shell go env CGO_ENABLED 2>/dev/null)
LIBNFC := $(shell pkg-config --exists libnfc 2>/dev/null && echo yes)

test: vet ## gofmt check, go vet, and every test with the race detector
ifeq ($(CGO),1)
	go test -race -count=1 ./...
else
	@echo "make test: no C compiler, so no race detector and no libnfc reader tests (apt-get install gcc libc6-dev pkg-config libnfc-dev); running the rest without -race" >&2
	go test -count=1 ./...
endif

vet: ## gofmt check and go vet
	@unformatted=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	go vet ./...

fmt: ## format the code
	gofmt -w cmd pkg

build: ## build bin/sesame2mqtt (stripped, version stamped from git)
	go build $(GOFLAGS_BUILD) -o bin/sesame2mqtt ./cmd/sesame2mqtt

cross: ## static binaries with the reader for the Pi Zero (ARMv6) and arm64, run under qemu
	VERSION=$(VERSION) .ci/cross

image: ## build the add-on image with buildah on local Debian base images, and run it once
	.ci/image

e2e: ## the contract test against a real Home Assistant (cached venv) and Mosquitto
	.ci/e2e

demo: ## run against a simulated lock and an embedded broker (with the simulated reader when cgo and libnfc are there)
ifeq ($(CGO)$(LIBNFC),1yes)
	go run ./cmd/sesame2mqtt -demo
else
	@echo "make demo: no C compiler or no libnfc-dev, so no simulated card reader (apt-get install gcc libc6-dev pkg-config libnfc-dev for it)" >&2
	CGO_ENABLED=0 go run ./cmd/sesame2mqtt -demo
endif

bench: ## HA command / card tap -> signed POST latency, push document -> MQTT, requests a month, the binary's idle RSS
	go test -run='^$$' -bench=CommandToSignedPOST -benchtime=300x -count=2 ./pkg/bridge
	go test -run='^$$' -bench=PushDocumentToMQTT -benchtime=300x -count=2 ./pkg/bridge
	go test -run='^TestRequestsPerMonth$$' -count=1 -v ./pkg/bridge | grep -E 'requests a month|^(ok|FAIL|---)'
	go test -run='^$$' -bench=ReconnectAfterBrokerRestart -benchtime=5x ./pkg/mqtt
	go test -run='^$$' -bench=DocumentToOnDocument -benchtime=2000x ./pkg/push
	go test -run='^$$' -bench=CardToSignedPOST -benchtime=64x -count=2 ./cmd/sesame2mqtt
	go test -run='^$$' -bench=CardToPoll -benchtime=20x ./pkg/nfc/libnfc
	go test -run='^$$' -bench=CardToSignedPOSTRCS380 -benchtime=64x ./cmd/sesame2mqtt
	go test -run='^$$' -bench=IdleCPU -benchtime=1x ./pkg/nfc/rcs380
	go test -run='^$$' -bench=IdleRSS -benchtime=1x ./cmd/sesame2mqtt
	go test -run='^$$' -bench=CardsPage1000 -benchtime=20x ./pkg/web
	go test -run='^$$' -bench=PageRSS -benchtime=2x ./cmd/sesame2mqtt

fuzz: ## run each fuzz target for FUZZTIME
	go test -run='^$$' -fuzz='^FuzzParseCommand$$' -fuzztime=$(FUZZTIME) ./pkg/hass
	go test -run='^$$' -fuzz='^FuzzDecodeStatus$$' -fuzztime=$(FUZZTIME) ./pkg/sesame
	go test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./pkg/push
	go test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./pkg/nfc/rcs380/port100
	go test -run='^$$' -fuzz='^FuzzDriverAnswers$$' -fuzztime=$(FUZZTIME) ./pkg/nfc/rcs380
