//! The ISVC inputs of the repository (`examples/`, `tests/fixtures/isvc/`) and `render` of them:
//! what the end-to-end tests send through the API server and compare with.

use std::process::Command;

use serde_json::Value;

use crate::control_plane::repository;

/// The ISVC inputs of the repository: every YAML/JSON file under `examples/` and
/// `tests/fixtures/isvc/` that holds at least one InferenceService, with the config to render it
/// under (`examples/config-*` for the examples that name one in their comment, else the
/// built-in default).
pub fn isvc_inputs() -> Vec<(String, Option<String>)> {
    let mut inputs = Vec::new();
    for directory in ["examples", "tests/fixtures/isvc"] {
        let mut files: Vec<_> = std::fs::read_dir(repository().join(directory))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "yaml" || extension == "json")
            })
            .collect();
        files.sort();
        for path in files {
            let relative = path
                .strip_prefix(repository())
                .unwrap()
                .display()
                .to_string();
            if documents(&relative).is_empty() {
                continue;
            }
            inputs.push((relative.clone(), None));
            // The Gateway API config turns the same ISVCs into HTTPRoutes.
            inputs.push((
                relative,
                Some("examples/config-gateway-api.yaml".to_owned()),
            ));
        }
    }
    inputs
}

/// `isvc-ingress render` with `args`: (exit code, stdout).
pub fn render(args: &[&str]) -> (i32, String) {
    render_input(args, None)
}

/// `isvc-ingress render` with `args` and `input` on stdin (for the file `-`).
pub fn render_input(args: &[&str], input: Option<&str>) -> (i32, String) {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_isvc-ingress"))
        .arg("render")
        .args(args)
        .current_dir(repository())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("render runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(input.unwrap_or_default().as_bytes())
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
    )
}

/// The documents of an ISVC file (YAML stream or JSON, a List expanded), ISVCs only.
pub fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repository().join(file)).unwrap();
    let mut objects = Vec::new();
    for document in text.split("\n---") {
        let document = document.trim_start_matches("---");
        if document.trim().is_empty() {
            continue;
        }
        let Ok(value) = serde_yaml_ng::from_str::<Value>(document) else {
            continue;
        };
        if value["kind"] == "List" {
            objects.extend(value["items"].as_array().cloned().unwrap_or_default());
        } else {
            objects.push(value);
        }
    }
    objects.retain(|object| object["kind"] == "InferenceService");
    objects
}
