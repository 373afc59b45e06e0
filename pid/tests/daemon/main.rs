#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed setup should stop the test loudly
//! In-process daemon tests: the real server on a temp socket and a temp store, driven through
//! `protocol::Client`, the blocking client pam_pi uses. OTPs come from the published RFC 4226 /
//! RFC 6238 vectors (testdata/oath.tsv), with the daemon's clock set to the vector's time.
//!
//! One test binary, a module per area; `common` is the harness they share. A new file in this
//! directory runs only once it is declared here.

mod common;

mod admin;
mod audit;
mod check;
mod lockout;
mod machines;
mod policies;
mod realms;
mod self_service;
mod socket;
mod store;
mod token_types;
