//! `Secret`: text that must never be logged, printed or left in memory.

use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A PIN, OTP, password or key in transit. `Debug` prints `Secret(***)`; the bytes are zeroised
/// when the value is dropped. Cloning is deliberate and visible (`.clone()`), never implicit.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret text. Callers must not log, audit or persist it unencrypted.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_secret() {
        let s = Secret::new("123456");
        let shown = format!("{s:?} {:?}", Some(&s));
        assert!(!shown.contains("123456"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn zeroize_clears_the_bytes() {
        let mut s = Secret::new("hunter2");
        s.zeroize();
        assert!(s.expose().is_empty());
    }
}
