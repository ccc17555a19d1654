# spirt images, all from this one Dockerfile (see docs/deploy.md).
#
#   target      image                                  contents
#   function    dev.local/spirt-<step>:<version>       one step binary + the shared
#                                                      libraries it needs, on scratch
#   function-data  (same name, for steps that read     function + Fashion-MNIST
#                  the dataset, e.g. init)
#   driver      dev.local/spirt-driver:<version>       `spirt` CLI, spirt-job, runtime libs, dataset, curl
#   redis       dev.local/spirt-redis:<version>        redis-server + /usr/lib/spirt/spirt_redis.so
#   nats        dev.local/spirt-nats:<version>         nats-server with JetStream
#
#   docker build --network host --target function --build-arg FUNCTION=gradient \
#     -t dev.local/spirt-gradient:0.1.0 .
#
# deploy/images.sh builds all of them (one per step of src/steps/steps.def).
# Stage order matters for the classic builder, which builds every stage that
# precedes the target: the shared stages come first, the per-function ones last.

ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------- builder ---
FROM ${BASE_IMAGE} AS builder
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config lld libmicrohttpd-dev libhiredis-dev libcjson-dev \
      libopenblas-dev libnats-dev zlib1g-dev libcurl4-openssl-dev libssl-dev libcmocka-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the build reads, so edits to docs, charts or scripts keep the cache.
# (tests/CMakeLists.txt is read by the top CMakeLists; no test is compiled.)
COPY CMakeLists.txt ./
COPY tests/CMakeLists.txt tests/
COPY tests/fixtures/ tests/fixtures/
COPY redis-module/ redis-module/
COPY src/ src/
COPY functions/ functions/
ARG JOBS=2
# Build only shipped targets: the CLI, every function binary (spirt_functions:
# one per step of src/steps/steps.def) and the Redis module when it has sources.
RUN set -eu; \
    cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DSPIRT_BENCH=OFF >/dev/null; \
    targets="spirt spirt_functions"; \
    if ls redis-module/*.c >/dev/null 2>&1; then targets="$targets spirt_redis"; fi; \
    echo "building: $targets"; \
    cmake --build /build -j"$JOBS" --target $targets
# Lay out binaries, the Redis module and the minimal function roots (see the script).
COPY deploy/container/collect-runtime.sh /usr/local/bin/
RUN collect-runtime.sh /build /out

# ----------------------------------------------------------------- driver ---
FROM ${BASE_IMAGE} AS driver
# Runtime libraries by Debian package name, CA certificates for https
# function URLs, the dataset the driver samples from, and curl for the
# `helm test` pod and for debugging inside the cluster.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libhiredis0.14 libcjson1 libopenblas0-pthread libnats3.4 zlib1g \
      libcurl4 libssl3 ca-certificates dataset-fashion-mnist curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd -g 65532 spirt && useradd -u 65532 -g 65532 -M -d /var/lib/spirt -s /usr/sbin/nologin spirt \
 && install -d -o 65532 -g 65532 /var/lib/spirt
COPY --from=builder /out/bin/spirt /usr/bin/spirt
RUN if ldd /usr/bin/spirt | grep 'not found'; then exit 1; fi
# What a Kubernetes training Job runs: credentials from files, the report
# printed and stored in a ConfigMap (deploy/container/spirt-job.sh).
COPY deploy/container/spirt-job.sh /usr/local/bin/spirt-job
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="spirt-driver" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="spirt training driver (spirt train ...)"
ENV SPIRT_DATA_DIR=/usr/share/datasets/fashion-mnist
WORKDIR /var/lib/spirt
USER 65532:65532
ENTRYPOINT ["/usr/bin/spirt"]
CMD ["--help"]

# ------------------------------------------------------------------ redis ---
FROM ${BASE_IMAGE} AS redis
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* /etc/redis/redis.conf \
 && install -d -o 65532 -g 65532 /data \
 && install -d /usr/lib/spirt
COPY --from=builder /out/lib/ /usr/lib/spirt/
COPY deploy/container/redis-entrypoint.sh /usr/local/bin/spirt-redis
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="spirt-redis" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="redis-server with the spirt tensor module"
WORKDIR /data
USER 65532:65532
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/spirt-redis"]

# ------------------------------------------------------------------- nats ---
FROM ${BASE_IMAGE} AS nats
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nats-server \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o 65532 -g 65532 /data
COPY deploy/container/nats-entrypoint.sh /usr/local/bin/spirt-nats
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="spirt-nats" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="nats-server with JetStream for spirt"
WORKDIR /data
USER 65532:65532
EXPOSE 4222 8222
# nats-server exits 0 on SIGINT (1 on SIGTERM): stop it the clean way.
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/spirt-nats"]

# --------------------------------------------------------------- function ---
FROM scratch AS function
COPY --from=builder /out/rootfs/ /
ARG FUNCTION
COPY --from=builder /out/fn/${FUNCTION}/ /
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="spirt-fn-${FUNCTION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="spirt step function ${FUNCTION}"
# OPENBLAS_NUM_THREADS=1 as the local runner sets it: a function runs its
# requests on its own threads, and OpenBLAS's pool (a thread per core of the
# node, whatever the pod's CPU limit) started at load would only fight them.
ENV PORT=8080 \
    SPIRT_DATA_DIR=/usr/share/datasets/fashion-mnist \
    OPENBLAS_NUM_THREADS=1
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/bin/spirt-fn"]

# ---------------------------------------------------------- function-data ---
# A function that reads the dataset from disk (init): same, plus Fashion-MNIST.
FROM function AS function-data
COPY --from=driver /usr/share/datasets/fashion-mnist/ /usr/share/datasets/fashion-mnist/
