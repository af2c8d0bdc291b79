//! The `isvc-ingress` command line: `render` and `check-config` work offline on files.
//!
//! Exit codes follow docs/design.md: 0 when everything is valid, 1 when an InferenceService or the
//! config breaks a rule (the output says which), 2 when the input cannot be used at all.

use crate::config::{ConfigError, KserveConfig};
use crate::isvc::InferenceService;
use crate::plan::{self, Policy, RoutePlan, objects};
use crate::serve::{KnativeArgs, PolicyArgs};
use crate::violation::Violation;
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::Value;
use std::io::{Read, Write};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "isvc-ingress",
    version,
    about = "Routing for KServe InferenceServices"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan InferenceServices from a file (YAML or JSON, several documents allowed) and print
    /// each plan: hosts, URLs, annotations and the route objects.
    Render(RenderArgs),
    /// Validate a KServe config: the inferenceservice-config ConfigMap YAML, or the bare JSON of
    /// its `ingress` key.
    CheckConfig(CheckConfigArgs),
    /// Run the TLS admission webhook (and, with a cluster, the ConfigMap watch).
    Serve(Box<crate::serve::ServeArgs>),
    /// Write a CA and a serving certificate for the webhook Service; print the caBundle.
    Certs(crate::certs::CertsArgs),
    /// Say why an InferenceService's URL does not answer, and how to fix it: walk every link
    /// from the config to the gateway to the model, in the cluster (read-only) or in
    /// `kubectl get -o yaml` dumps (-f).
    Analyze(AnalyzeArgs),
}

#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Analyse the InferenceServices of this namespace (default: the kubeconfig's namespace;
    /// with -f, every namespace).
    #[arg(
        short = 'n',
        long,
        value_name = "NAMESPACE",
        conflicts_with = "all_namespaces"
    )]
    pub namespace: Option<String>,
    /// Analyse the InferenceServices of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Read the objects from `kubectl get -o yaml` dumps (a List or a multi-document stream;
    /// `-` for standard input) instead of the cluster. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub files: Vec<String>,
    /// KServe config to assume (ConfigMap YAML or ingress JSON) instead of the
    /// inferenceservice-config read from the cluster or the dumps.
    #[arg(long, value_name = "FILE")]
    pub config: Option<String>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Namespace of KServe's inferenceservice-config ConfigMap (live mode).
    #[arg(long, value_name = "NAMESPACE", default_value = "kserve")]
    pub kserve_namespace: String,
    /// Namespace of Knative Serving's config-network ConfigMap (live mode).
    #[arg(long, value_name = "NAMESPACE", default_value = "knative-serving")]
    pub knative_namespace: String,
    /// `table`: grouped by InferenceService, for people; `json`: for tools.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: AnalyzeOutput,
    /// InferenceServices to analyse (default: every one in the namespace scope).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnalyzeOutput {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// KServe config (ConfigMap YAML or ingress JSON); default: the configuration KServe ships.
    #[arg(long, env = "ISVC_INGRESS_CONFIG", value_name = "FILE")]
    pub config: Option<String>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub knative: KnativeArgs,
    /// `json`: one plan object per ISVC; `yaml`: the route manifests, ready for `kubectl apply -f -`.
    #[arg(short = 'o', long = "output", value_enum, default_value = "json")]
    pub output: OutputFormat,
    /// InferenceService file, or `-` for standard input.
    #[arg(value_name = "FILE|-")]
    pub file: String,
}

#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// ConfigMap YAML or ingress JSON, or `-` for standard input.
    #[arg(value_name = "FILE|-")]
    pub file: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Yaml,
}

/// Input that cannot be used: exit 2.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Unusable { path: String, message: String },
    #[error("the config {path} is invalid: {source}")]
    Config { path: String, source: ConfigError },
    #[error("{0}")]
    Cluster(String),
}

pub const EXIT_INVALID: u8 = 1;
pub const EXIT_UNUSABLE: u8 = 2;

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Serve(args) = &cli.command
        && let Err(error) = serve_certificate_given(args)
    {
        error.exit();
    }
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    let mut stderr = std::io::stderr();
    let result = match &cli.command {
        Command::Render(args) => render(args, &mut stdout, &mut stderr),
        Command::CheckConfig(args) => check_config(args, &mut stdout, &mut stderr),
        Command::Serve(args) => return serve(args),
        Command::Analyze(args) => {
            let colour = std::io::IsTerminal::is_terminal(&std::io::stdout())
                && std::env::var_os("NO_COLOR").is_none();
            analyze(args, colour, &mut stdout, &mut stderr)
        }
        Command::Certs(args) => match crate::certs::run_certs(args) {
            Ok(ca_bundle) => {
                let _ = writeln!(stdout, "{ca_bundle}");
                Ok(0)
            }
            Err(error) => {
                let _ = writeln!(stderr, "error: {error}");
                Ok(1)
            }
        },
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let _ = writeln!(stderr, "error: {error}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

/// `serve` needs a serving certificate, or `--self-signed`. Checked here rather than by clap's
/// `required_unless_present`, whose message lists only `--tls-cert` and `--tls-key`: a first
/// try on a laptop has no certificate, and the error should say what to do instead (exit 2,
/// clap's usage error).
fn serve_certificate_given(args: &crate::serve::ServeArgs) -> Result<(), clap::Error> {
    if args.server.tls_cert.is_some() || args.server.self_signed {
        return Ok(());
    }
    let mut command = <Cli as clap::CommandFactory>::command();
    let serve = command
        .find_subcommand_mut("serve")
        .expect("serve is a subcommand")
        .clone();
    Err(serve.bin_name("isvc-ingress serve").error(
        clap::error::ErrorKind::MissingRequiredArgument,
        "serve needs a serving certificate: --tls-cert FILE --tls-key FILE (or \
         ISVC_INGRESS_TLS_CERT and ISVC_INGRESS_TLS_KEY).\n\
         For a local trial without certificates, run: isvc-ingress serve --self-signed > ca.pem\n\
         (an in-memory CA and certificate; the CA PEM goes to stdout, see README.md)",
    ))
}

/// Most threads the blocking pool (where admission handlers run) may have per core.
const BLOCKING_THREADS_PER_CORE: usize = 4;

/// tokio's multi-threaded runtime, with a blocking pool sized to the machine. The default
/// allows 512 threads and keeps idle ones for 10 s, so bursts of microsecond-long handlers
/// leave dozens of threads behind (47 at concurrency 16 on 2 cores), each with its own
/// allocator arena: resident memory then crept up by about 1 MiB in 3 minutes of steady load,
/// where the same load with handlers run inline stayed flat. The handlers are pure CPU, so
/// more threads than a few per core add memory, not throughput; requests beyond the limit wait
/// in tokio's queue, within their deadline.
fn serve_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS_PER_CORE * cores)
        .build()
}

/// The reconciler's own runtime: one worker thread, `reconciler`, for the API client, the
/// watches, the caches and the reconciles, apart from the webhook's runtime. Its work comes in
/// bursts of CPU (a re-plan of 10,000 ISVCs after a config change is about 1 s,
/// `benches/reconcile_scale.rs`; decoding their initial list a few seconds) that would
/// otherwise hold the worker threads admission requests need; on its own thread it uses at
/// most one core, and the webhook's threads stay free to answer the API server.
fn reconciler_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("reconciler")
        .enable_all()
        .build()
}

/// How long the reconciler's runtime may take to stop its last tasks once `serve` has
/// returned (the reconciler itself has stopped by then, or given up, see `serve::run`).
const RECONCILER_RUNTIME_STOP: std::time::Duration = std::time::Duration::from_secs(1);

/// `serve` exits 0 after a graceful shutdown, 1 when the server fails, 2 for an unusable config.
fn serve(args: &crate::serve::ServeArgs) -> ExitCode {
    if let Err(error) = crate::telemetry::init(args.log_format) {
        eprintln!("error: {error}");
        return ExitCode::from(EXIT_UNUSABLE);
    }
    let (runtime, reconciler) = match serve_runtime()
        .and_then(|runtime| reconciler_runtime().map(|reconciler| (runtime, reconciler)))
    {
        Ok(runtimes) => runtimes,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(crate::serve::run(args, reconciler.handle()));
    reconciler.shutdown_timeout(RECONCILER_RUNTIME_STOP);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(
            error @ (crate::serve::ServeError::Config { .. }
            | crate::serve::ServeError::ReadConfig { .. }),
        ) => {
            tracing::error!(%error, "cannot start");
            ExitCode::from(EXIT_UNUSABLE)
        }
        Err(error) => {
            tracing::error!(%error, "the server failed");
            ExitCode::FAILURE
        }
    }
}

fn read_input(path: &str) -> Result<String, UsageError> {
    let mut text = String::new();
    let result = if path == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|content| text = content)
    };
    result.map_err(|source| UsageError::Read {
        path: path.to_string(),
        source,
    })?;
    Ok(text)
}

/// The config of `--config`, or the shipped one; its warnings go to stderr.
pub fn load_config(path: Option<&str>, stderr: &mut dyn Write) -> Result<KserveConfig, UsageError> {
    let config = match path {
        None => KserveConfig::shipped(),
        Some(path) => {
            KserveConfig::from_text(&read_input(path)?).map_err(|source| UsageError::Config {
                path: path.to_string(),
                source,
            })?
        }
    };
    for warning in &config.warnings {
        let _ = writeln!(stderr, "warning: config: {warning}");
    }
    Ok(config)
}

/// Splits a YAML/JSON stream into InferenceService objects; `List` documents are expanded and
/// other kinds are skipped with a note.
pub fn read_inference_services(
    text: &str,
    path: &str,
    stderr: &mut dyn Write,
) -> Result<Vec<Value>, UsageError> {
    let mut objects = Vec::new();
    for (index, value) in documents(text, path)?.into_iter().enumerate() {
        collect_objects(value, index + 1, &mut objects, stderr);
    }
    if objects.is_empty() {
        return Err(UsageError::Unusable {
            path: path.to_string(),
            message: "holds no InferenceService".to_string(),
        });
    }
    Ok(objects)
}

/// The documents of a YAML/JSON stream.
fn documents(text: &str, path: &str) -> Result<Vec<Value>, UsageError> {
    serde_yaml_ng::Deserializer::from_str(text)
        .enumerate()
        .map(|(index, document)| {
            serde::Deserialize::deserialize(document).map_err(|error: serde_yaml_ng::Error| {
                UsageError::Unusable {
                    path: path.to_string(),
                    message: format!("document {} is not YAML or JSON: {error}", index + 1),
                }
            })
        })
        .collect()
}

/// What a document of a `render` input is.
#[derive(Debug, PartialEq, Eq)]
pub enum DocumentKind {
    /// `serving.kserve.io/v1beta1` InferenceService: planned.
    InferenceService,
    /// A list (`kind: List`, `InferenceServiceList`, any `<Kind>List`): its items are read.
    List,
    /// Anything else, with the reason it is skipped.
    Other(String),
}

/// Classifies one document by its `apiVersion` and `kind`, as the API server would route it:
/// both are required (kubectl refuses a document without them), and an InferenceService is
/// only the `serving.kserve.io/v1beta1` one (the CRD serves no other version, and a kind of
/// the same name in another group is another resource).
pub fn document_kind(value: &Value) -> DocumentKind {
    let Some(object) = value.as_object() else {
        return DocumentKind::Other(format!(
            "is not an object (a YAML {})",
            match value {
                Value::Array(_) => "sequence",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "boolean",
                _ => "null",
            }
        ));
    };
    let text = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
    };
    let (api_version, kind) = match (text("apiVersion"), text("kind")) {
        (Some(api_version), Some(kind)) => (api_version, kind),
        (None, None) => {
            return DocumentKind::Other("has no apiVersion and no kind".to_string());
        }
        (None, Some(kind)) => {
            return DocumentKind::Other(format!("is a {kind} without apiVersion"));
        }
        (Some(api_version), None) => {
            return DocumentKind::Other(format!("has apiVersion {api_version} but no kind"));
        }
    };
    if kind.ends_with("List") && object.contains_key("items") {
        return DocumentKind::List;
    }
    if kind != crate::isvc::KIND {
        return DocumentKind::Other(format!(
            "is a {kind} ({api_version}), not an InferenceService"
        ));
    }
    if api_version != crate::isvc::API_VERSION {
        return DocumentKind::Other(format!(
            "is an InferenceService of apiVersion {api_version} (isvc-ingress reads {})",
            crate::isvc::API_VERSION
        ));
    }
    DocumentKind::InferenceService
}

fn collect_objects(
    value: Value,
    document: usize,
    objects: &mut Vec<Value>,
    stderr: &mut dyn Write,
) {
    if value.is_null() {
        return;
    }
    match document_kind(&value) {
        DocumentKind::InferenceService => objects.push(value),
        DocumentKind::List => {
            // The API server's own InferenceServiceList leaves kind and apiVersion off its items.
            let of_inference_services = value.get("kind").and_then(Value::as_str)
                == Some("InferenceServiceList")
                && value.get("apiVersion").and_then(Value::as_str)
                    == Some(crate::isvc::API_VERSION);
            if let Some(Value::Array(items)) = value.get("items") {
                for mut item in items.clone() {
                    if let (true, Some(fields)) = (of_inference_services, item.as_object_mut()) {
                        for (key, implied) in [
                            ("apiVersion", crate::isvc::API_VERSION),
                            ("kind", crate::isvc::KIND),
                        ] {
                            fields
                                .entry(key)
                                .or_insert_with(|| Value::String(implied.to_string()));
                        }
                    }
                    collect_objects(item, document, objects, stderr);
                }
            }
        }
        DocumentKind::Other(reason) => {
            let _ = writeln!(stderr, "note: document {document} {reason}: skipped");
        }
    }
}

fn render(
    args: &RenderArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, UsageError> {
    let config = load_config(args.config.as_deref(), stderr)?;
    let config = args
        .knative
        .apply(config)
        .map_err(|source| UsageError::Config {
            path: "--knative-domain-template".to_string(),
            source,
        })?;
    let policy = args.policy.policy();
    let text = read_input(&args.file)?;
    let objects = read_inference_services(&text, &args.file, stderr)?;
    let results: Vec<Rendered> = objects
        .iter()
        .map(|object| render_one(object, &config, &policy))
        .collect();
    let all_valid = results.iter().all(Rendered::is_ok);
    match args.output {
        OutputFormat::Json => {
            let text = serde_json::to_string_pretty(&results).expect("plans serialise");
            let _ = writeln!(stdout, "{text}");
        }
        OutputFormat::Yaml => write_manifests(&results, stdout, stderr),
    }
    Ok(if all_valid { 0 } else { EXIT_INVALID })
}

/// One element of `render -o json`, serialised in the field order of docs/design.md (typed, so the
/// order holds without an order-preserving JSON map).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Rendered {
    Planned {
        name: String,
        namespace: String,
        ok: bool,
        #[serde(flatten)]
        plan: Box<RoutePlan>,
        routes: Vec<objects::RouteObject>,
    },
    Refused {
        name: String,
        namespace: String,
        ok: bool,
        errors: Vec<Violation>,
        warnings: Vec<String>,
    },
}

impl Rendered {
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Planned { .. })
    }

    fn refused(name: &str, namespace: &str, errors: Vec<Violation>, warnings: Vec<String>) -> Self {
        Self::Refused {
            name: name.to_string(),
            namespace: namespace.to_string(),
            ok: false,
            errors,
            warnings,
        }
    }
}

/// Plans one ISVC: the plan with `ok: true` and its routes, or `ok: false` with every error.
pub fn render_one(object: &Value, config: &KserveConfig, policy: &Policy) -> Rendered {
    let isvc = match InferenceService::from_json(object, "default") {
        Ok(isvc) => isvc,
        Err(violations) => {
            let metadata = &object["metadata"];
            let namespace = metadata["namespace"].as_str().unwrap_or("default");
            let name = metadata["name"].as_str().unwrap_or_default();
            return Rendered::refused(name, namespace, violations, Vec::new());
        }
    };
    match plan::plan(&isvc, config, policy) {
        Ok(planned) => Rendered::Planned {
            name: isvc.name.clone(),
            namespace: isvc.namespace.clone(),
            ok: true,
            routes: plan::routes(&planned, &isvc, config),
            plan: Box::new(planned),
        },
        Err(rejection) => Rendered::refused(
            &isvc.name,
            &isvc.namespace,
            rejection.violations,
            rejection.warnings,
        ),
    }
}

fn write_manifests(results: &[Rendered], stdout: &mut dyn Write, stderr: &mut dyn Write) {
    for result in results {
        let (name, namespace, warnings) = match result {
            Rendered::Planned {
                name,
                namespace,
                plan,
                ..
            } => (name, namespace, &plan.warnings),
            Rendered::Refused {
                name,
                namespace,
                warnings,
                ..
            } => (name, namespace, warnings),
        };
        for warning in warnings {
            let _ = writeln!(stderr, "warning: {namespace}/{name}: {warning}");
        }
        match result {
            Rendered::Refused { errors, .. } => {
                for error in errors {
                    let _ = writeln!(stderr, "error: {namespace}/{name}: {error}");
                }
            }
            Rendered::Planned { routes, .. } => {
                for route in routes {
                    let yaml = to_plain_yaml(&route.to_value());
                    let _ = write!(stdout, "---\n{yaml}");
                }
            }
        }
    }
}

/// YAML with exactly the data of the JSON form: through `serde_json::Value`, because
/// serde_yaml_ng writes an externally tagged enum (an Istio `{regex: ...}` match, a
/// `{uri: /}` rewrite) as a YAML tag (`!regex ...`), which kubectl reads as a plain string and
/// the CRD then refuses.
pub fn to_plain_yaml(value: &Value) -> String {
    serde_yaml_ng::to_string(value).expect("a JSON value serialises as YAML")
}

fn check_config(
    args: &CheckConfigArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, UsageError> {
    let text = read_input(&args.file)?;
    match KserveConfig::from_text(&text) {
        Ok(config) => {
            let _ = writeln!(stdout, "{}: valid", args.file);
            for (key, value) in config.summary() {
                let _ = writeln!(stdout, "  {key}: {value}");
            }
            for warning in &config.warnings {
                let _ = writeln!(stderr, "warning: {warning}");
            }
            Ok(0)
        }
        Err(ConfigError::Invalid {
            violations,
            warnings,
        }) => {
            let _ = writeln!(
                stdout,
                "{}: invalid, {} violation{}",
                args.file,
                violations.len(),
                if violations.len() == 1 { "" } else { "s" }
            );
            for violation in &violations {
                let _ = writeln!(stdout, "  {violation}");
            }
            for warning in &warnings {
                let _ = writeln!(stderr, "warning: {warning}");
            }
            Ok(EXIT_INVALID)
        }
        Err(error @ ConfigError::Unreadable(_)) => Err(UsageError::Unusable {
            path: args.file.clone(),
            message: error.to_string(),
        }),
    }
}

/// `analyze`: exit 0 without error findings, 1 with some (or a NAME not found), 2 when the
/// cluster or a file cannot be read.
fn analyze(
    args: &AnalyzeArgs,
    colour: bool,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, UsageError> {
    use crate::analyze::{self, Scope, Severity, Snapshot, output};
    let config = match &args.config {
        Some(path) => Some(load_config(Some(path), stderr)?),
        None => None,
    };
    let (snapshot, default_namespace) = if args.files.is_empty() {
        let (snapshot, namespace) = read_cluster(args)?;
        (snapshot, Some(namespace))
    } else {
        let mut snapshot = Snapshot::default();
        for path in &args.files {
            for document in documents(&read_input(path)?, path)? {
                for note in snapshot.add(document) {
                    let _ = writeln!(stderr, "note: {path}: {note}");
                }
            }
        }
        if snapshot.is_empty() {
            return Err(UsageError::Unusable {
                path: args.files.join(", "),
                message: "holds no object analyze reads".to_string(),
            });
        }
        (snapshot, None)
    };
    let scope = Scope {
        namespace: if args.all_namespaces {
            None
        } else {
            args.namespace.clone().or(default_namespace)
        },
        names: args.names.clone(),
    };
    let report = analyze::analyze(&snapshot, config.as_ref(), &args.policy.policy(), &scope);
    let text = match args.output {
        AnalyzeOutput::Table => output::table(&report, colour),
        AnalyzeOutput::Json => output::json(&report) + "\n",
    };
    let _ = write!(stdout, "{text}");
    let missing = report.missing_names(&scope);
    for name in &missing {
        let _ = writeln!(stderr, "error: no InferenceService {name}");
    }
    Ok(
        if report.count(Severity::Error) > 0 || !missing.is_empty() {
            EXIT_INVALID
        } else {
            0
        },
    )
}

/// The cluster of the kubeconfig (or the pod's service account), read once; with the
/// kubeconfig's default namespace.
fn read_cluster(args: &AnalyzeArgs) -> Result<(crate::analyze::Snapshot, String), UsageError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| UsageError::Cluster(format!("cannot start the async runtime: {error}")))?;
    let locations = crate::cluster_snapshot::ConfigLocations {
        kserve_namespace: args.kserve_namespace.clone(),
        knative_namespace: args.knative_namespace.clone(),
    };
    runtime.block_on(async {
        let client = kube::Client::try_default().await.map_err(|error| {
            UsageError::Cluster(format!("no usable Kubernetes configuration: {error}"))
        })?;
        let namespace = client.default_namespace().to_string();
        let snapshot = crate::cluster_snapshot::read(&client, &locations)
            .await
            .map_err(|error| UsageError::Cluster(error.to_string()))?;
        Ok((snapshot, namespace))
    })
}
