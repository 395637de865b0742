//! The release binary built the way the container image builds it: the Dockerfile's cargo
//! command ([`BUILD_COMMAND`]), in a copy of the build context (the tree less
//! `.dockerignore`, so no `.git`), with the revision passed as `GIT_REVISION`.
//!
//! Fat LTO makes this build take minutes, so every test that needs it shares one target
//! directory and one revision, and a lock file makes concurrent test processes take turns:
//! the first builds, the others find cargo's work done.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The build command of the Dockerfile, which [`release_build`] runs too.
pub const BUILD_COMMAND: &str = "cargo build --release --locked --bin sio-relay";

/// The `GIT_REVISION` of the build: what `sio-relay --version` of the binary shows.
pub const REVISION: &str = "0000000-image-test";

/// A release binary and the revision it was built with.
pub struct ReleaseBuild {
    pub binary: PathBuf,
    /// What `sio-relay --version` shows.
    pub revision: String,
}

/// Builds (or finds up to date) the release binary; see the module docs.
pub fn release_build() -> ReleaseBuild {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(base).unwrap();
    let lock = std::fs::File::create(base.join("image-build.lock")).unwrap();
    lock.lock().unwrap();

    // Fixed, so that a commit does not make cargo build the binary again (build.rs reruns
    // when GIT_REVISION changes).
    let revision = REVISION.to_owned();
    let context = base.join("image-context");
    let _ = std::fs::remove_dir_all(&context);
    std::fs::create_dir_all(&context).unwrap();
    copy_context(&context);
    assert!(!context.join(".git").exists());

    let mut words = BUILD_COMMAND.split_whitespace();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| words.next().unwrap().into());
    let words: Vec<&str> = BUILD_COMMAND.split_whitespace().skip(1).collect();
    let target = base.join("image-build");
    let output = Command::new(&cargo)
        .args(&words)
        .current_dir(&context)
        .env("CARGO_TARGET_DIR", &target)
        .env("GIT_REVISION", &revision)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {cargo}: {error}"));
    assert!(
        output.status.success(),
        "{BUILD_COMMAND}: exit {:?}\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    ReleaseBuild {
        binary: target.join("release/sio-relay"),
        revision,
    }
}

/// Copies the build context (the repository less `.dockerignore`) to `to`, keeping file
/// times so that repeated builds are incremental.
pub fn copy_context(to: &Path) {
    copy_tree(
        crate::common::crate_dir(),
        to,
        &dockerignore(),
        Path::new(""),
    );
}

/// `.dockerignore` entries: paths from the root, or `**/NAME` for a name at any depth.
fn dockerignore() -> Vec<String> {
    let text = std::fs::read_to_string(crate::common::crate_dir().join(".dockerignore")).unwrap();
    let entries: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.trim_end_matches('/').to_owned())
        .collect();
    for entry in &entries {
        let name = entry.strip_prefix("**/").unwrap_or(entry);
        assert!(
            !name.contains(['*', '?', '[', '!']),
            ".dockerignore entry {entry:?} is a pattern this test cannot follow"
        );
    }
    entries
}

fn copy_tree(from: &Path, to: &Path, ignored: &[String], relative: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let rel = relative.join(entry.file_name());
        let rel_text = rel.to_string_lossy();
        let skip = ignored
            .iter()
            .any(|pattern| match pattern.strip_prefix("**/") {
                Some(name) => entry.file_name() == name,
                None => rel_text == pattern.as_str(),
            });
        if skip {
            continue;
        }
        let kind = entry.file_type().unwrap();
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target, ignored, &rel);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).unwrap();
            let modified = entry.metadata().unwrap().modified().unwrap();
            let file = std::fs::File::options().write(true).open(&target).unwrap();
            file.set_modified(modified).unwrap();
        }
    }
}
