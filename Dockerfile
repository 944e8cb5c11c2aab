# One image with the four services and the migrate command (production shape; used by docker-compose.yml).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# release builds are whole-program optimised (fat LTO, Cargo.toml): slower to build, faster to run
RUN cargo build --release --bins -p ingest -p normalizer -p aggregator -p api

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ingest /src/target/release/normalizer /src/target/release/aggregator /src/target/release/api /usr/local/bin/
USER nobody
