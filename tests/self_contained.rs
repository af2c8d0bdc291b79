//! The repository is self-contained: a user's clone has nothing beside it, so no tracked file may
//! read, run or link to a folder outside the clone. The CRDs the tests use live in `tests/crds/`,
//! the design and KServe's semantics in `docs/`.

use std::path::Path;
use std::process::Command;

/// Paths that only existed beside the repository on the machines it was first written on
/// (spelled in pieces so that this file does not match itself).
const OUTSIDE_PATHS: [&str; 2] = [concat!("..", "/shared"), concat!("/work", "/shared")];

fn refers_outside(line: &str) -> bool {
    OUTSIDE_PATHS.iter().any(|outside| line.contains(outside))
}

/// The files git tracks, relative to the repository root.
fn tracked_files(root: &Path) -> Vec<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git ls-files failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .split(|byte| *byte == 0)
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect()
}

#[test]
fn no_tracked_file_refers_to_a_folder_outside_the_clone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = tracked_files(root);
    assert!(
        files.iter().any(|file| file == "Cargo.toml"),
        "git ls-files listed no Cargo.toml: {files:?}"
    );
    let mut offenders = Vec::new();
    for file in &files {
        let Ok(bytes) = std::fs::read(root.join(file)) else {
            continue; // deleted in the work tree but not yet in the index
        };
        let text = String::from_utf8_lossy(&bytes);
        for (number, line) in text.lines().enumerate() {
            if refers_outside(line) {
                offenders.push(format!("{file}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "tracked files refer to folders outside the repository (a clone does not have them):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_check_tells_an_outside_path_from_a_similar_name() {
    assert!(refers_outside(&format!(
        "see {}/reference/crds",
        OUTSIDE_PATHS[0]
    )));
    assert!(refers_outside(&format!(
        "cat {}/DESIGN.md",
        OUTSIDE_PATHS[1]
    )));
    assert!(!refers_outside(r#"name = "wasm-bindgen-shared""#));
    assert!(!refers_outside("the shared ingressDomain host"));
}
