//! The house rules of `docs/architecture.md`, checked on the source: each layer imports
//! only the layers below it. A violation names the file, the line and the rule.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Lines of code (not comments) under `path` that mention any of `forbidden`.
fn violations(path: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let files = if root.is_dir() {
        sources(&root)
    } else {
        vec![root]
    };
    assert!(!files.is_empty(), "no sources under {path}");
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for bad in forbidden {
                if code.contains(bad) {
                    out.push(format!("{}:{}: {bad}: {line}", f.display(), i + 1));
                }
            }
        }
    }
    out
}

fn check(path: &str, forbidden: &[&str]) {
    let v = violations(path, forbidden);
    assert!(
        v.is_empty(),
        "{path} imports above its layer:\n{}",
        v.join("\n")
    );
}

#[test]
fn the_simulator_and_the_workload_know_nothing_above_them() {
    let above = [
        "crate::model",
        "crate::rl",
        "crate::eval",
        "crate::sched",
        "crate::registry",
        "crate::config",
        "crate::plot",
        "burn::",
        "burn ::",
    ];
    check("src/sim", &above);
    check("src/workload", &above);
}

#[test]
fn the_heuristics_compile_without_burn_or_models() {
    check(
        "src/sched",
        &[
            "crate::model",
            "crate::rl",
            "crate::eval",
            "crate::registry",
            "burn::",
        ],
    );
}

#[test]
fn configs_do_not_reach_into_evaluation_or_training() {
    check(
        "src/config.rs",
        &["crate::eval", "crate::rl", "crate::model"],
    );
}

#[test]
fn the_model_does_not_reach_into_evaluation_or_training() {
    check(
        "src/model",
        &["crate::eval", "crate::rl", "crate::registry"],
    );
}

#[test]
fn the_foundation_imports_nothing_of_ours() {
    for f in ["src/io.rs", "src/validate.rs", "src/seed.rs"] {
        let v: Vec<String> = violations(f, &["crate::", "super::"])
            .into_iter()
            .filter(|l| !l.contains("use super::*"))
            .collect();
        assert!(v.is_empty(), "{f} imports the project:\n{}", v.join("\n"));
    }
}

#[test]
fn the_command_line_stays_thin() {
    let main = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs");
    let lines = std::fs::read_to_string(main).unwrap().lines().count();
    assert!(
        lines < 400,
        "src/main.rs has {lines} lines; move logic into the library"
    );
}

/// The checker itself finds a violation (so the tests above can fail).
#[test]
fn the_checker_finds_an_import() {
    assert!(!violations("src/eval", &["crate::sim"]).is_empty());
}
