# Sesame2MQTT: the Home Assistant add-on image, also run as is with plain Docker and
# environment variables. Built by the Supervisor on the device (config.yaml has no
# `image`, nothing publishes one yet), by `docker build -t sesame2mqtt .`, or by CI
# (.ci/image: buildah, no Docker engine, local base images).
#
# Plain Dockerfile syntax on purpose: no BuildKit-only features (no --platform=$BUILDPLATFORM,
# no FROM with TARGETARCH, no RUN --mount), so Docker's legacy builder, which Supervisors
# before 2025.07 build with (docker-py), BuildKit (2025.07 and later: `docker buildx build
# --platform linux/<arch>`) and buildah all build it the same way.
#
# What the Supervisor passes (home-assistant/supervisor, supervisor/apps/build.py, formerly
# supervisor/addons/build.py), and what this file does with it:
#   --build-arg BUILD_VERSION=<config.yaml version>   stamped into the binary and a label
#   --build-arg BUILD_ARCH=amd64|aarch64               drives the build stage, checked by the runtime
#       (before 2026.03 the machine's main architecture, which for amd64 and aarch64 is the same)
#   --build-arg BUILD_FROM=ghcr.io/home-assistant/<arch>-base:latest
#       only before 2026.04.0 (or with a build.yaml): Home Assistant's Alpine base. Ignored:
#       both stages name their Debian base themselves (below).
#   --label io.hass.version/arch/type/name/description/url   the same labels as below; the
#       Supervisor's take precedence. The labels here are for images built without one.
#
# Base images. The binary links libnfc through cgo, and CI builds and tests it against
# Debian bookworm's libnfc 1.8.0 and glibc (.ci/run, and .ci/cross for aarch64).
# A glibc binary does not run on musl, so Home Assistant's Alpine base
# (ghcr.io/home-assistant/base) would mean a second, untested toolchain (Alpine's musl
# libnfc). The binary needs nothing from that base either: no bashio, no S6 — it reads
# /data/options.json and asks the Supervisor for the MQTT login itself. So both stages
# are Debian bookworm, like CI; the add-on keeps Supervisor's default `init: true`
# (Docker's tini as PID 1, which forwards SIGTERM to the bridge).
# GO_VERSION follows go.mod; the suites of the two FROM lines move together.
ARG GO_VERSION=1.26.8
# Declared so that an old Supervisor's BUILD_FROM has an ARG to land on (no "build-arg
# not consumed" warning); deliberately used by no FROM.
ARG BUILD_FROM

# ---- build: `make build`, natively, or cross-compiled when BUILD_ARCH names another architecture ----
FROM golang:${GO_VERSION}-bookworm AS build
# Empty (a plain `docker build`): the architecture this stage runs on.
ARG BUILD_ARCH
ARG BUILD_VERSION=dev
# libnfc-dev for the target architecture. On the device (and under `docker buildx
# --platform`, emulated or not) the target is the stage's own architecture. CI cross-builds
# the aarch64 binary on amd64 with BUILD_ARCH=aarch64: then Debian's cross compiler with its
# C library, and the target's multiarch libnfc-dev (this throwaway stage needs no native
# libnfc-dev, so the two cannot collide); pkg-config then reads the target's libnfc.pc,
# and the cross compiler finds nfc/nfc.h in /usr/include and the libraries in
# /usr/lib/<triplet>, which it searches. (.ci/cross links bookworm's arm64 libnfc too,
# statically, on a CI machine where the native libnfc-dev must stay.)
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    native=$(dpkg --print-architecture); \
    case "${BUILD_ARCH:-}" in \
      "") target=$native ;; \
      amd64) target=amd64 ;; \
      aarch64) target=arm64 ;; \
      *) echo "BUILD_ARCH=$BUILD_ARCH: the add-on ships amd64 and aarch64" >&2; exit 1 ;; \
    esac; \
    case "$target" in \
      amd64) triplet=x86_64-linux-gnu; cross="gcc-x86-64-linux-gnu libc6-dev-amd64-cross" ;; \
      arm64) triplet=aarch64-linux-gnu; cross="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;; \
      *) echo "unsupported architecture $target (the add-on ships amd64 and aarch64)" >&2; exit 1 ;; \
    esac; \
    if [ "$target" = "$native" ]; then \
      apt-get update; \
      apt-get install -y --no-install-recommends libnfc-dev; \
      printf 'export GOARCH=%s\n' "$target" > /tmp/target.env; \
    else \
      dpkg --add-architecture "$target"; \
      apt-get update; \
      apt-get install -y --no-install-recommends $cross "libnfc-dev:$target"; \
      printf 'export GOARCH=%s CC=%s-gcc PKG_CONFIG_LIBDIR=/usr/lib/%s/pkgconfig:/usr/share/pkgconfig\n' \
        "$target" "$triplet" "$triplet" > /tmp/target.env; \
    fi; \
    rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The same target CI runs (make build: go build -trimpath -ldflags "-s -w -X main.version=...").
RUN set -eux; \
    . /tmp/target.env; \
    CGO_ENABLED=1 GOOS=linux make build VERSION="$BUILD_VERSION"

# ---- runtime ----
FROM debian:bookworm-slim
ARG BUILD_ARCH
ARG BUILD_VERSION=dev
# libnfc6 (pulls libusb-0.1-4) for the reader, CA certificates for the Sesame cloud's
# HTTPS, tzdata for local times in the log. /data is where the add-on's options and the
# request count live; created here so a plain `docker run -v NAME:/data` uses it too.
# A BUILD_ARCH other than this stage's architecture is refused here rather than labelled
# wrongly (a cross-built binary needs a runtime stage of its own architecture).
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    native=$(dpkg --print-architecture); \
    case "$native" in arm64) hass=aarch64 ;; *) hass=$native ;; esac; \
    if [ -n "${BUILD_ARCH:-}" ] && [ "$BUILD_ARCH" != "$hass" ]; then \
      echo "BUILD_ARCH=$BUILD_ARCH, but this runtime stage is $hass: build on (or with --platform for) $BUILD_ARCH" >&2; \
      exit 1; \
    fi; \
    apt-get update; \
    apt-get install -y --no-install-recommends libnfc6 ca-certificates tzdata; \
    rm -rf /var/lib/apt/lists/*; \
    mkdir -p /data
COPY --from=build /src/bin/sesame2mqtt /usr/bin/sesame2mqtt
# The binary starts on this base: the libraries it links are here, and it is of this
# architecture.
RUN /usr/bin/sesame2mqtt -version

# io.hass.arch is the Supervisor's BUILD_ARCH (empty in a plain `docker build` without
# --build-arg BUILD_ARCH=..., where nothing reads it).
LABEL \
    io.hass.type="app" \
    io.hass.version="${BUILD_VERSION}" \
    io.hass.arch="${BUILD_ARCH}" \
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
