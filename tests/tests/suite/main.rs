//! The cross-binary suite: the real `pid`, `pictl` and `libpam_pi.so` together through real
//! libpam, driven by the harness in `tests/src/`. It is one test binary with a module per area,
//! so a change to the daemon relinks one binary, not one per area.
//!
//! Tests of every module run in parallel threads of this one process, so no test may change
//! anything the process shares: its environment, umask, current directory or signal handlers.
//! Each test starts its own daemon in its own directory; every `libpam_wrapper` run takes the
//! suite's lock (`tests/src/pam.rs`), which serialises threads as well as processes. Tests that
//! load the machine on purpose and time what they see live in `tests/tests/alone/` instead.
//!
//! A new file in this directory runs only once it is declared here.

mod admin_output;
mod bad_input;
mod config;
mod durability;
mod full_disk;
mod hostile_socket;
mod import;
mod import_pskc;
mod impostor;
mod ldap;
mod lockout;
mod logging;
mod luks;
mod memory;
mod pam_hotp;
mod pam_more_types;
mod pam_options;
mod pam_outcomes;
mod pam_sent_codes;
mod pam_totp;
mod pibench;
mod pictl_flows;
mod pin_change;
mod policies;
mod power_cut;
mod privacyidea_fixture;
mod qr;
mod realms;
mod reload;
mod self_service;
mod ssh;
mod ssh_recipe;
mod startup_trust;
mod systemd;
mod token_pool;
mod unprivileged;
mod upcoming_codes;
mod upstream;
mod upstream_hostile;
mod userstore;
