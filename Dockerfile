# syntax=docker/dockerfile:1
# Multi-stage: build a static (musl) binary with the locked dependency set, then ship it alone
# on a distroless static base as a non-root numeric user.

FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY config ./config
COPY src ./src
COPY benches ./benches
COPY tools ./tools
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin isvc-ingress \
 && cp target/x86_64-unknown-linux-musl/release/isvc-ingress /isvc-ingress

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /isvc-ingress /usr/local/bin/isvc-ingress
# distroless "nonroot": uid/gid 65532, matching the Deployment's securityContext.
USER 65532:65532
EXPOSE 8443 8081
ENTRYPOINT ["isvc-ingress"]
CMD ["serve"]
