//! Link the unwinder (libgcc_eh) into the module instead of loading libgcc_s.so.1.
//!
//! Why: the module is loaded afresh by every sudo, su and sshd session. libgcc_s runs a constructor
//! at load (`__cpu_indicator_init`) that executes CPUID many times, and in a virtual machine every
//! CPUID traps to the hypervisor: 0.1–0.16 ms per login on a 2-vCPU VM. The unwinder itself must
//! stay — a panic is caught at the FFI boundary (`catch_unwind`), never turned into an abort of the
//! host process — so it is taken from the static archive instead. Listed for this crate, it comes
//! before std's `-lgcc_s` on the link line; every unwinder symbol is then resolved from the archive
//! and `--as-needed` (rustc's default) drops libgcc_s.so.1 from the module's dependencies.
//! `the_module_needs_only_libpam_and_libc_and_exports_only_the_pam_hooks` in
//! `tests/pamtester.rs` checks that.
fn main() {
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu {
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
