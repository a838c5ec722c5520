//! Records the git commit the binary is built from, for `tocsin --version` and the
//! `tocsin_build_info` metric: "which build is running?" is the first question
//! after an upgrade. A build outside a git checkout says `unknown`.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|commit| commit.trim().to_string())
        .filter(|commit| !commit.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TOCSIN_GIT_COMMIT={commit}");
    // A new commit changes HEAD or the branch it points at.
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-changed=.git/packed-refs");
    println!("cargo:rerun-if-env-changed=TOCSIN_GIT_COMMIT");
    // `sqlx::migrate!` embeds the migration files; a new one must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
}
