use std::process::ExitCode;

fn main() -> ExitCode {
    // One TLS crypto provider for the whole process: ring (never aws-lc-rs).
    let _ = rustls::crypto::ring::default_provider().install_default();
    isvc_ingress::cli::main()
}
