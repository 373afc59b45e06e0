//! pid: the pi daemon. It owns the token store, the token algorithms, the audit trail, and
//! answers pam_pi and pictl on one Unix socket, authorising every request by the peer's uid.
//!
//! A request's way through the daemon, and the modules it passes:
//!
//! - Running: `cli` is the command line (`main.rs` parses it, `pi-docgen` documents it); `daemon`
//!   starts and stops everything; `state` holds what requests share (`State`)
//!   and the configuration in force (`Live`); `config`, `logging`, `trust` (directories safe to
//!   open files in), `sys` (process hardening), `systemd` (socket activation, readiness and
//!   reload notifications), `clock`.
//! - Serving: `server` accepts, `connection` identifies the peer (`caller`) and reads frames,
//!   `dispatch` authorises each request (`authority` for administration) and hands it to one of
//!   `handlers`; `limits` bounds what users may hold and ask.
//! - Deciding: `auth` checks what a user typed against their tokens (`tokens`, one file per
//!   type) under the rules of `policy`, for users that `realm` finds (`users`); `delivery` sends
//!   codes by e-mail and SMS, `yubico_client` asks the Yubico validation servers (`percent`
//!   encodes what goes into their URLs); `upstream` asks a privacyIDEA server for the realms it
//!   serves and keeps its offline values (`tls` and `secret_file` are shared with the LDAP
//!   resolver).
//! - Keeping: `store` (tokens, audit trail, machine assignments, offline values, durable by
//!   group commit), `audit`, `crypto` (sealed secrets, PIN hashes: `argon2_memory`,
//!   `pin_cache`, and `argon2_hash` with the `interleaved-argon2` feature), `machines` (SSH keys
//!   and LUKS slots served from tokens).

#[cfg(feature = "interleaved-argon2")]
pub mod argon2_hash;
pub mod argon2_memory;
pub mod audit;
pub mod auth;
pub mod authority;
pub mod caller;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connection;
pub mod crypto;
pub mod daemon;
pub mod delivery;
pub mod dispatch;
pub mod error;
pub mod handlers;
pub mod limits;
pub mod logging;
pub mod machines;
pub mod percent;
pub mod pin_cache;
pub mod policy;
pub mod realm;
pub mod secret_file;
pub mod server;
pub mod state;
pub mod store;
pub mod sys;
pub mod systemd;
pub mod tls;
pub mod tokens;
pub mod trust;
pub mod upstream;
pub mod users;
pub mod yubico_client;

pub use daemon::{init_logging, run_daemon};
pub use state::{Live, State};
