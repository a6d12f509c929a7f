# Example image for running `watchsim check` campaigns on Kubernetes (see deploy/campaign-job.yaml
# and the README's "Campaigns on Kubernetes"). Not built in CI.
#   docker build -t watchsim:0.1.0 .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin watchsim

FROM debian:bookworm-slim
COPY --from=build /src/target/release/watchsim /usr/local/bin/watchsim
COPY sim-scenarios /scenarios
WORKDIR /work
ENTRYPOINT ["watchsim"]
CMD ["--help"]
