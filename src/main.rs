use std::process::ExitCode;

/// The process's allocator: jemalloc, not the C library's. Under glibc, memory freed after the
/// initial lists of 10,000 ISVCs stayed resident in per-thread arenas (87 MiB where jemalloc
/// holds 53 MiB, `docs/performance.md`, "Scale on the real control plane"); and the shipped
/// image, a static musl binary, gets the same allocator as the build that was measured. Its
/// options (one arena, no thread caches, freed pages returned within a second) are compiled in
/// from `.cargo/config.toml`; `_RJEM_MALLOC_CONF` overrides them at run time.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // One TLS crypto provider for the whole process: ring (never aws-lc-rs).
    let _ = rustls::crypto::ring::default_provider().install_default();
    isvc_ingress::cli::main()
}
