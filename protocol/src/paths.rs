//! Every default path and every protocol limit, in one place.

use std::time::Duration;

/// The daemon's socket when neither the config, `socket=`, `--socket` nor `PI_SOCKET` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/pi/pid.sock";
/// The daemon's configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/pi/pid.toml";
/// Where the daemon keeps its store (`state_dir/db.redb`) and journal (`state_dir/db.journal`).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/pi";
/// The 32-byte AES-256-GCM key that encrypts secrets at rest.
pub const DEFAULT_ENCKEY_FILE: &str = "/etc/pi/enckey";
/// Environment variable that overrides the socket path for `pictl`.
pub const SOCKET_ENV: &str = "PI_SOCKET";
/// Environment variable naming the uid `pictl` expects the daemon to run as (default 0).
pub const DAEMON_UID_ENV: &str = "PI_DAEMON_UID";

/// The protocol version carried in every frame. A peer speaking another version is refused.
pub const PROTOCOL_VERSION: u16 = 4;
/// Largest frame (version + body) either side accepts. Checked before anything is buffered.
pub const MAX_FRAME: usize = 64 * 1024;

/// Longest user name the daemon accepts (bytes).
pub const MAX_USER_LEN: usize = 256;
/// Longest answer to a prompt (PIN + OTP, password) the daemon accepts (bytes).
pub const MAX_ANSWER_LEN: usize = 1024;
/// Longest free text (service, rhost, tty, description ...) the daemon accepts (bytes).
pub const MAX_TEXT_LEN: usize = 1024;

/// Default time the blocking client waits to connect.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time the blocking client waits for one answer (argon2 + fsync on a busy host fit well inside).
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(10);
