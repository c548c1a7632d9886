# Sesame2MQTT: the Home Assistant add-on image, also run as is with plain Docker and
# environment variables. Built by the Supervisor on the device (when config.yaml has no
# `image`) or by CI for both architectures:
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg BUILD_VERSION=0.1.0 .
#
# Base images. The binary links libnfc through cgo, and CI builds and tests it against
# Debian bookworm's libnfc 1.8.0 and glibc (.ci/run, and .ci/cross for aarch64).
# A glibc binary does not run on musl, so Home Assistant's Alpine base
# (ghcr.io/home-assistant/base) would mean a second, untested toolchain (Alpine's musl
# libnfc). The binary needs nothing from that base either: no bashio, no S6 — it reads
# /data/options.json and asks the Supervisor for the MQTT login itself. So both stages
# are Debian bookworm, like CI; the add-on keeps Supervisor's default `init: true`
# (Docker's tini as PID 1, which forwards SIGTERM to the bridge).
# GO_VERSION follows go.mod; the suite of the build stage and BUILD_FROM move together.
ARG GO_VERSION=1.26.8
ARG BUILD_FROM=debian:bookworm-slim

# ---- build: cross-compiles on the builder's own platform (no emulated compiler) ----
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETARCH
ARG BUILDARCH
ARG BUILD_VERSION=dev
# libnfc-dev for the target architecture. For a foreign target: Debian's cross compiler
# with its C library, and the target's multiarch libnfc-dev (this throwaway stage needs
# no native libnfc-dev, so the two cannot collide); pkg-config then reads the target's
# libnfc.pc, and the cross compiler finds nfc/nfc.h in /usr/include and the libraries in
# /usr/lib/<triplet>, which it searches. (.ci/cross links bookworm's arm64 libnfc too,
# statically, on a CI machine where the native libnfc-dev must stay.)
RUN set -eux; \
    case "$TARGETARCH" in \
      amd64) triplet=x86_64-linux-gnu; cross="gcc-x86-64-linux-gnu libc6-dev-amd64-cross" ;; \
      arm64) triplet=aarch64-linux-gnu; cross="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;; \
      *) echo "unsupported architecture $TARGETARCH (the add-on ships amd64 and aarch64)" >&2; exit 1 ;; \
    esac; \
    if [ "$TARGETARCH" = "$BUILDARCH" ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends libnfc-dev; \
      : > /tmp/cross.env; \
    else \
      dpkg --add-architecture "$TARGETARCH"; \
      apt-get update; \
      apt-get install -y --no-install-recommends $cross "libnfc-dev:$TARGETARCH"; \
      printf 'export CC=%s-gcc PKG_CONFIG_LIBDIR=/usr/lib/%s/pkgconfig:/usr/share/pkgconfig\n' \
        "$triplet" "$triplet" > /tmp/cross.env; \
    fi; \
    rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The same target CI runs (make build: go build -trimpath -ldflags "-s -w -X main.version=...").
RUN set -eux; \
    . /tmp/cross.env; \
    CGO_ENABLED=1 GOOS=linux GOARCH="$TARGETARCH" make build VERSION="$BUILD_VERSION"

# ---- runtime ----
# The io.hass.arch label per architecture: the Supervisor reads it from the image.
FROM ${BUILD_FROM} AS runtime-amd64
LABEL io.hass.arch="amd64"
FROM ${BUILD_FROM} AS runtime-arm64
LABEL io.hass.arch="aarch64"

FROM runtime-${TARGETARCH}
ARG BUILD_VERSION=dev
# libnfc6 (pulls libusb-0.1-4) for the reader, CA certificates for the Sesame cloud's
# HTTPS, tzdata for local times in the log. /data is where the add-on's options and the
# request count live; created here so a plain `docker run -v NAME:/data` uses it too.
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends libnfc6 ca-certificates tzdata; \
    rm -rf /var/lib/apt/lists/*; \
    mkdir -p /data
COPY --from=build /src/bin/sesame2mqtt /usr/bin/sesame2mqtt

LABEL \
    io.hass.type="app" \
    io.hass.version="${BUILD_VERSION}" \
    io.hass.name="Sesame2MQTT" \
    io.hass.description="CANDY HOUSE Sesame smart locks as Home Assistant locks over MQTT, with an optional NFC card reader and LED feedback" \
    io.hass.url="https://github.com/sesame2mqtt/sesame2mqtt" \
    org.opencontainers.image.title="Sesame2MQTT" \
    org.opencontainers.image.description="CANDY HOUSE Sesame smart locks as Home Assistant locks over MQTT" \
    org.opencontainers.image.source="https://github.com/sesame2mqtt/sesame2mqtt" \
    org.opencontainers.image.version="${BUILD_VERSION}"

# Runs as root, which in an add-on is root of an unprivileged container with Docker's
# default capabilities. The reader and GPIO nodes (/dev/ttyAMA0, /dev/bus/usb/*,
# /dev/i2c-1, /dev/gpiochip*) reach the container with the host's owners and groups
# (root, or dialout/gpio/i2c by the host's numbering, which this image does not share),
# so a non-root user would be refused by the very devices the add-on is for.
# No HEALTHCHECK, on purpose. What the process could answer cheaply is either "alive"
# (Docker already knows: the bridge exits on every fatal error, and the Supervisor
# restarts it) or "connected" (MQTT, the Sesame cloud). Marking the container unhealthy
# while the broker or the cloud is down gets it restarted, which cures neither and costs
# one Web API status read per lock at every start, from a budget of 3,000 a month.
# Reconnecting is the bridge's own job; the bridge's availability topic and the
# "Reader" and hub entities show the state in Home Assistant.
ENTRYPOINT ["/usr/bin/sesame2mqtt"]
