//! `cfg(pi_lazyfs)` when `PI_LAZYFS_SRC` is set. The power-cut tests need LazyFS, built from
//! the source tree that variable names; without it they are compiled as ignored, with a reason
//! that says they did not run and why, so `cargo test` counts them as ignored, never as
//! passed. CI sets the variable, so there they always run (and fail if LazyFS cannot be built
//! or mounted).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(pi_lazyfs)");
    println!("cargo::rerun-if-env-changed=PI_LAZYFS_SRC");
    if std::env::var_os("PI_LAZYFS_SRC").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=pi_lazyfs");
    }
}
