//! Imports run one way: the command line on top, the shells (server, admission, reconciler,
//! watches) in the middle, the pure planning core at the bottom. A module imports only modules
//! of the layers below its own: never one of its own layer (two shells that import each other
//! are one tangle), never one above.
//!
//! The check reads every `crate::` path of `src/**/*.rs` outside comments, so `use` lines and
//! paths written in place both count, test modules included.

use std::collections::BTreeSet;
use std::path::Path;

/// The layers, top first, with why each sits where it does.
const LAYERS: &[(&str, &[&str])] = &[
    // Parses the process arguments and runs a command.
    ("command line", &["cli"]),
    // `serve` wires the webhook, the watches and the reconciler together; `permissions` merges
    // the API permissions every shell declares into the RBAC rules.
    ("commands", &["serve", "permissions"]),
    ("webhook server", &["server"]),
    // The server's registry; labels its admission answers with admission's Endpoint/Outcome.
    ("server metrics", &["metrics"]),
    // Shells: each does its own I/O (or is called per request) and knows no other shell.
    // cluster_snapshot reads the cluster into analyze's Snapshot, so it sits above analyze.
    (
        "shells",
        &[
            "admission",
            "reconcile",
            "config_watch",
            "cluster_snapshot",
            "certs",
            "telemetry",
            // The rate-limited Kubernetes client `serve` hands to the shells.
            "api_client",
        ],
    ),
    // What the shells share: the config, policy and host index in force (admission reads it,
    // the config watch and the reconciler write it), and how every watch retries.
    ("shared by the shells", &["cluster_view", "watch"]),
    // The analysis is pure: the same on dumps and on a cluster.
    ("analysis", &["analyze"]),
    // The planning core, importing no shell.
    ("planning", &["plan"]),
    (
        "planning inputs",
        &["config", "isvc", "field_diff", "duration"],
    ),
    ("planning leaves", &["template", "dns", "hash", "violation"]),
];

/// The layer of `module` (0 is the top), if it has one.
fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// The top-level module a file under `src/` belongs to: `reconcile/cache.rs` is `reconcile`,
/// `cli.rs` is `cli`.
fn module_of(relative: &str) -> &str {
    let first = relative.split('/').next().unwrap_or(relative);
    first.strip_suffix(".rs").unwrap_or(first)
}

/// The first identifier of `text`.
fn leading_identifier(text: &str) -> &str {
    let text = text.trim_start();
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The names right after `crate::` in `source`, outside `//` comment lines: `crate::plan::X`
/// gives `plan`, `crate::{config, plan::{self, X}}` gives `config` and `plan`.
fn crate_paths(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` in a macro, or a longer identifier ending in `crate`
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The items of the group at its own depth, up to its closing brace.
            let mut depth = 0;
            let mut item_start = 0;
            for (index, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        names.insert(leading_identifier(&group[item_start..index]).to_string());
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.insert(leading_identifier(&group[item_start..index]).to_string());
                        item_start = index + 1;
                    }
                    _ => {}
                }
            }
        } else {
            names.insert(leading_identifier(rest).to_string());
        }
    }
    names.remove("");
    names
}

/// Every import that goes the wrong way among `files` (path under `src/`, source), as
/// `from -> to (file): why`. Names that are not top-level modules (`crate::{name}` in a
/// string, say) are not imports and are skipped.
fn wrong_way(files: &[(String, String)], modules: &BTreeSet<String>) -> Vec<String> {
    let mut found = Vec::new();
    for (file, source) in files {
        let from = module_of(file);
        let Some(from_layer) = layer_of(from) else {
            continue; // lib.rs and main.rs; every module's layer is checked on its own
        };
        for to in crate_paths(source) {
            if to == from || !modules.contains(&to) {
                continue;
            }
            let why = match layer_of(&to) {
                None => "has no layer".to_string(),
                Some(to_layer) if to_layer == from_layer => {
                    format!("both in the layer \"{}\"", LAYERS[from_layer].0)
                }
                Some(to_layer) if to_layer < from_layer => format!(
                    "\"{}\" is above \"{}\"",
                    LAYERS[to_layer].0, LAYERS[from_layer].0
                ),
                Some(_) => continue,
            };
            found.push(format!("{from} -> {to} ({file}): {why}"));
        }
    }
    found
}

/// Every `.rs` file under `dir`, as (path relative to `root`, source).
fn sources(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sources(root, &path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            let relative = path.strip_prefix(root).expect("under src");
            let source = std::fs::read_to_string(&path).expect("read a source file");
            files.push((relative.to_string_lossy().replace('\\', "/"), source));
        }
    }
}

/// The top-level modules `src/lib.rs` declares.
fn declared_modules(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("mod "))?;
            Some(rest.trim_end_matches(';').trim().to_string())
        })
        .collect()
}

#[test]
fn every_import_goes_down_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(root.join("lib.rs")).expect("read src/lib.rs");
    let modules = declared_modules(&lib);
    assert!(modules.contains("plan"), "src/lib.rs declares {modules:?}");
    // A new module gets a place; a layer names no module that is gone.
    for module in &modules {
        assert!(
            layer_of(module).is_some(),
            "src/{module} has no layer in tests/layering.rs: place it in LAYERS"
        );
    }
    for (name, layer) in LAYERS {
        for module in *layer {
            assert!(
                modules.contains(*module),
                "the layer \"{name}\" names {module}, which src/lib.rs does not declare"
            );
        }
    }
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    files.sort();
    assert!(files.len() > 50, "read only {} files", files.len());
    let found = wrong_way(&files, &modules);
    assert!(
        found.is_empty(),
        "imports that go the wrong way:\n{}",
        found.join("\n")
    );
}

/// The check finds what it is for: an import up, an import sideways, and one written in place
/// or in a group; comments and strings naming no module are not imports.
#[test]
fn the_check_finds_wrong_way_imports() {
    let modules: BTreeSet<String> = ["cli", "server", "admission", "reconcile", "plan", "config"]
        .map(String::from)
        .into();
    let file = |path: &str, source: &str| (path.to_string(), source.to_string());
    let files = [
        file(
            "plan/mod.rs",
            "use crate::config::KserveConfig;\nuse crate::server::ServeArgs;",
        ),
        file(
            "admission/mod.rs",
            "fn f(index: &crate::reconcile::HostIndex) {}",
        ),
        file(
            "config.rs",
            "use crate::{\n    plan::{self, Policy},\n    cli,\n};",
        ),
        file(
            "cli.rs",
            "use crate::{plan, server::ServerArgs};\n// use crate::cli::x\n\
             fn g() { format!(\"crate::{shell}::\"); }",
        ),
        file(
            "server/args.rs",
            "//! [`crate::cli::Cli`] parses these\nuse crate::plan;",
        ),
    ];
    assert_eq!(
        wrong_way(&files, &modules),
        [
            "plan -> server (plan/mod.rs): \"webhook server\" is above \"planning\"",
            "admission -> reconcile (admission/mod.rs): both in the layer \"shells\"",
            "config -> cli (config.rs): \"command line\" is above \"planning inputs\"",
            "config -> plan (config.rs): \"planning\" is above \"planning inputs\"",
        ]
    );
}

#[test]
fn crate_paths_reads_single_grouped_and_nested_imports() {
    assert_eq!(
        crate_paths(
            "use crate::plan::{self, X};\nuse crate::{\n    config::{A, B},\n    dns,\n};\n\
             let x = crate::hash::hex_digest(&[]);\n// crate::cli\nmacro! { $crate::server }"
        ),
        ["config", "dns", "hash", "plan"].map(String::from).into()
    );
}
