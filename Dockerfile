# syntax=docker/dockerfile:1
# Multi-stage: build a static (musl) binary with the locked dependency set, then ship it alone
# on a distroless static base as a non-root numeric user.

FROM rust:1.95-bookworm AS build
# The musl target of the machine that builds (x86_64 or aarch64, e.g. kind on an arm64 Mac):
# the runtime stage is pulled for the same platform, so the binary must match it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# .cargo/: jemalloc's options (src/main.rs). config/: the binary embeds KServe's shipped
# config (include_str!). benches/ and tools/: Cargo.toml
# declares those targets, and cargo refuses a manifest whose target files are missing.
COPY .cargo ./.cargo
COPY config ./config
COPY src ./src
COPY benches ./benches
COPY tools ./tools
RUN target="$(uname -m)-unknown-linux-musl" \
 && cargo build --release --locked --target "$target" --bin isvc-ingress \
 && cp "target/$target/release/isvc-ingress" /isvc-ingress

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /isvc-ingress /usr/local/bin/isvc-ingress
# distroless "nonroot": uid/gid 65532, matching the Deployment's securityContext.
USER 65532:65532
EXPOSE 8443 8081
ENTRYPOINT ["isvc-ingress"]
CMD ["serve"]
