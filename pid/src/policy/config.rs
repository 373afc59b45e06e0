//! A `[[policy]]` table as written in pid.toml, before it is checked.

use super::action::Scope;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub name: String,
    pub scope: Scope,
    #[serde(default = "default_true")]
    pub active: bool,
    /// Lower wins (privacyIDEA).
    #[serde(default = "default_priority")]
    pub priority: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub realm: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolver: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<String>,
    /// PAM services (`sshd`, `sudo`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<String>,
    /// Remote hosts: addresses or CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rhost: Vec<String>,
    /// Admin scope: the Unix groups whose members the policy is for (privacyIDEA's admin
    /// user / admin realm).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_group: Vec<String>,
    /// Times of the week in the host's local time zone, privacyIDEA's format:
    /// `"Mon-Fri: 08:00-18:00, Sat: 10:00-12:00"` (both ends included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    pub actions: BTreeMap<String, toml::Value>,
}

fn default_true() -> bool {
    true
}

fn default_priority() -> u32 {
    1
}
