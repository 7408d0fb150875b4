//! The build script of every Lambda function and of the benchmark's floor (each one's Cargo.toml
//! names this file as `build`): links the release binary with its own hot-code layout,
//! `scripts/hot-text/<package>.ld`, which `scripts/hot_text.py` writes from a traced build. The
//! kernel maps code around each first-touched page (64 KB fault-around), so with the code a cold
//! start executes spread over `.text`, nearly all of it became resident (issue 17: peak RSS). One
//! layout per binary, since code another function runs is cold here. `HOT_TEXT=0` leaves it out; so
//! does a debug build, which no cold start runs.
//!
//! It also strips the release binary (the workspace's `Cargo.toml` sets `strip = false` for these
//! packages): the profile's `strip` enters every symbol's hash, so a build with symbols for
//! `scripts/hot_text.py` (`HOT_TEXT_SYMBOLS=1`, which leaves them in) would name other functions
//! than the shipped build, and the layout could only match them by wildcard, every instance of a
//! generic function with them. Stripped here, the two builds are the same code, hashes included.
use std::{env, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=HOT_TEXT");
    println!("cargo:rerun-if-env-changed=HOT_TEXT_SYMBOLS");
    let (Ok(manifest), Ok(package)) = (env::var("CARGO_MANIFEST_DIR"), env::var("CARGO_PKG_NAME")) else {
        return;
    };
    // Every crate that uses this script sits two folders below the workspace root.
    let layouts = PathBuf::from(manifest).join("../../scripts/hot-text");
    // A directory: cargo reruns when any file in it changes, a regenerated layout included.
    println!("cargo:rerun-if-changed={}", layouts.display());
    let layout = layouts.join(format!("{package}.ld"));
    let linux_release =
        env::var("PROFILE").as_deref() == Ok("release") && env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if linux_release && env::var("HOT_TEXT").as_deref() != Ok("0") && layout.is_file() {
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", layout.display());
    }
    // What `strip = true` passes to the linker on Linux.
    if linux_release && env::var("HOT_TEXT_SYMBOLS").as_deref() != Ok("1") {
        println!("cargo:rustc-link-arg-bins=-Wl,--strip-all");
    }
}
