//! A privacyIDEA server upstream: realms whose users and tokens live on the server, and the
//! offline OTP values it hands out for this host.

pub mod answer;
pub mod offline;
