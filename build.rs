//! Build script: records the git revision the binary was built from.
//!
//! Sets `SIO_RELAY_GIT_REV` for the compiler (read with `env!("SIO_RELAY_GIT_REV")`),
//! taken from, in order:
//!
//! 1. the `GIT_REVISION` environment variable of the build, for builds without a `.git`
//!    directory (the Docker build passes it as a build argument);
//! 2. `git rev-parse --short HEAD` in the source tree;
//! 3. `unknown`.
//!
//! The variable only exists at compile time; it is not read from the daemon's environment.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_REVISION");
    println!("cargo:rerun-if-changed=build.rs");

    let revision = std::env::var("GIT_REVISION")
        .ok()
        .map(|rev| rev.trim().to_owned())
        .filter(|rev| !rev.is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SIO_RELAY_GIT_REV={revision}");
}

/// The short revision of `HEAD`, and rebuild triggers for when it moves.
fn git_revision() -> Option<String> {
    let revision = git(&["rev-parse", "--short", "HEAD"])?;
    // Re-run when HEAD moves: HEAD itself (checkout), the branch it points to (commit), and
    // packed refs. Only paths that exist: a missing one would re-run the script every build.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten() {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(revision)
}

/// Runs git in the package directory; its trimmed stdout on success.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}
