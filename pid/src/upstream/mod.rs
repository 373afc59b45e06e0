//! A privacyIDEA server upstream: realms whose users and tokens live on the server, and the
//! offline OTP values it hands out for this host.

pub mod answer;
pub mod cache;
mod client;
mod config;
pub mod offline;
pub mod refill;
pub mod ssh;

pub use client::{CheckFields, Client, Health, UpstreamError, Upstreams};
pub use config::UpstreamConfig;
