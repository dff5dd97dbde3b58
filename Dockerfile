# Kith server image: build with the Rust toolchain, run on a slim Debian.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/kith --create-home kith
COPY --from=build /src/target/release/kith /usr/local/bin/kith
USER kith
WORKDIR /var/lib/kith
ENV KITH_ADDR=0.0.0.0:8080 KITH_DATA_DIR=/var/lib/kith/data KITH_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/ready || exit 1
CMD ["kith", "serve"]
