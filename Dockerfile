# Build stage: the same toolchain as CI, dependencies cached in their own layer.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY config ./config
# The OpenAPI document is compiled in.
COPY docs/openapi.json ./docs/openapi.json
RUN cargo build --release --locked && strip target/release/tocsin

# Runtime: Debian slim, no compiler, a non-root user, data on a volume.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data tocsin
COPY --from=build /src/target/release/tocsin /usr/local/bin/tocsin
COPY config /etc/tocsin
COPY runbooks /etc/tocsin/runbooks
WORKDIR /data
# Listening on every address, serve refuses the development tokens: run the image
# with -e TOCSIN_ADMIN_TOKEN=… -e TOCSIN_INGEST_TOKEN=… (SECURITY.md).
ENV TOCSIN_LISTEN=0.0.0.0:8080 \
    TOCSIN_RUNBOOKS_DIR=/etc/tocsin/runbooks
VOLUME ["/data"]
USER tocsin
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["tocsin"]
CMD ["serve", "--config", "/etc/tocsin/tocsin.toml"]
