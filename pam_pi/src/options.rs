//! Module arguments from the PAM service file (`auth required pam_pi.so socket=... debug`).
//!
//! An unknown or malformed argument never stops a login stack from loading: it is reported (the
//! caller sends the warnings to syslog) and the default stays in force. Every default is the
//! fail-closed one: no option widens what is accepted unless it is spelled correctly.

use protocol::paths::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCKET};
use std::path::PathBuf;
use std::time::Duration;

/// Time to wait for one answer of the daemon when `timeout=` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Smallest accepted `timeout=` (seconds).
pub const MIN_TIMEOUT_SECS: u64 = 1;
/// Largest accepted `timeout=` (seconds): a login must never hang for longer on a stuck daemon.
pub const MAX_TIMEOUT_SECS: u64 = 300;
/// How long to keep the CPU waiting for each answer before sleeping, when `busy_wait_us=` is
/// not given: an idle daemon answers a login (its `fdatasync` included) well within it.
pub const DEFAULT_BUSY_WAIT: Duration = Duration::from_micros(1000);
/// Largest accepted `busy_wait_us=`: beyond it, sleeping costs less than the CPU kept.
pub const MAX_BUSY_WAIT_US: u64 = 10_000;

const USAGE: &str = "valid options: socket=/ABSOLUTE/PATH timeout=SECONDS(1-300) \
                     busy_wait_us=MICROSECONDS(0-10000) daemon_uid=UID use_first_pass \
                     try_first_pass ignore_unknown_user nullok debug";

/// One module argument, as the manual page `pam_pi(8)` documents it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionDoc {
    /// The argument's name, as written in the PAM service file.
    pub name: &'static str,
    /// What follows `name=`, e.g. `SECONDS`; `None` for a flag, which takes no value.
    pub value: Option<&'static str>,
    /// What is in force when the argument is not given.
    pub default: &'static str,
    /// One paragraph: what the argument does, and what a login then returns.
    pub meaning: &'static str,
}

/// Every argument pam_pi accepts. The parser knows no other: a name that is not here is an
/// unknown option, so an argument cannot be added without its manual entry (and a row whose
/// argument the parser does not apply fails a test).
pub const OPTIONS: &[OptionDoc] = &[
    OptionDoc {
        name: "socket",
        value: Some("PATH"),
        default: "/run/pi/pid.sock",
        meaning: "The daemon's socket, an absolute path (a relative one would depend on the \
                  working directory of whoever started the login).",
    },
    OptionDoc {
        name: "timeout",
        value: Some("SECONDS"),
        default: "10",
        meaning: "How long to wait for each answer of the daemon, 1 to 300 seconds; then the \
                  login fails with PAM_AUTHINFO_UNAVAIL (before the user saw a prompt) or \
                  PAM_AUTH_ERR (after).",
    },
    OptionDoc {
        name: "busy_wait_us",
        value: Some("MICROSECONDS"),
        default: "1000",
        meaning: "How long to keep the CPU, yielding it to anything else that wants it, while \
                  waiting for each answer before sleeping, 0 to 10000 (0: sleep at once). An \
                  idle daemon answers within it, and the login process then stays on its CPU.",
    },
    OptionDoc {
        name: "daemon_uid",
        value: Some("UID"),
        default: "0",
        meaning: "The uid pid runs as. A process of any other uid listening on the socket is \
                  refused before anything is sent to it (PAM_AUTHINFO_UNAVAIL, and a syslog line \
                  naming the socket and its uid): otherwise whoever could create the socket \
                  could answer \"accept\".",
    },
    OptionDoc {
        name: "use_first_pass",
        value: None,
        default: "off",
        meaning: "Send the password an earlier module collected (PAM_AUTHTOK) as PIN and OTP, \
                  and never prompt. Without an earlier password the login fails (PAM_AUTH_ERR).",
    },
    OptionDoc {
        name: "try_first_pass",
        value: None,
        default: "off",
        meaning: "As use_first_pass, but prompt if there is no earlier password or the daemon \
                  rejects it.",
    },
    OptionDoc {
        name: "ignore_unknown_user",
        value: None,
        default: "off",
        meaning: "A user the daemon does not know gives PAM_IGNORE instead of PAM_USER_UNKNOWN.",
    },
    OptionDoc {
        name: "nullok",
        value: None,
        default: "off",
        meaning: "A user without a token gives PAM_IGNORE instead of PAM_AUTH_ERR, for a \
                  gradual rollout: users who have a token must still use it.",
    },
    OptionDoc {
        name: "debug",
        value: None,
        default: "off",
        meaning: "Log each step of the conversation to syslog (never an answer).",
    },
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The daemon's socket.
    pub socket: PathBuf,
    /// Read/write timeout for each exchange with the daemon.
    pub timeout: Duration,
    /// Keep the CPU this long waiting for each answer before sleeping (`Client::set_busy_wait`).
    pub busy_wait: Duration,
    /// The uid the daemon runs as: a process of any other uid listening on the socket is
    /// refused before anything is sent to it (`Client::require_peer_uid`).
    pub daemon_uid: u32,
    /// Send the password of an earlier module (`PAM_AUTHTOK`) and never prompt for it.
    pub use_first_pass: bool,
    /// Send the password of an earlier module if there is one; prompt if it is rejected.
    pub try_first_pass: bool,
    /// A user the daemon does not know gives `PAM_IGNORE` instead of `PAM_USER_UNKNOWN`.
    pub ignore_unknown_user: bool,
    /// A user without a token gives `PAM_IGNORE` instead of `PAM_AUTH_ERR` (gradual rollout).
    pub nullok: bool,
    /// Log every step of the conversation (never an answer) to syslog.
    pub debug: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            socket: PathBuf::from(DEFAULT_SOCKET),
            timeout: DEFAULT_TIMEOUT,
            busy_wait: DEFAULT_BUSY_WAIT,
            daemon_uid: 0,
            use_first_pass: false,
            try_first_pass: false,
            ignore_unknown_user: false,
            nullok: false,
            debug: false,
        }
    }
}

impl Options {
    /// Parse the module arguments. Returns the options and one warning per argument that was
    /// ignored; the caller logs the warnings.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> (Options, Vec<String>) {
        let mut options = Options::default();
        let mut warnings = Vec::new();
        for arg in args {
            if let Err(warning) = options.apply(arg.as_ref()) {
                warnings.push(format!("{warning}; option ignored ({USAGE})"));
            }
        }
        (options, warnings)
    }

    /// How long to wait for the daemon to accept the connection: never longer than the io
    /// timeout, and at most the protocol default, because a daemon that cannot even accept is
    /// not going to answer in time either.
    pub fn connect_timeout(&self) -> Duration {
        self.timeout.min(DEFAULT_CONNECT_TIMEOUT)
    }

    fn apply(&mut self, arg: &str) -> Result<(), String> {
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg, None),
        };
        let Some(option) = OPTIONS.iter().find(|o| o.name == name) else {
            return Err(format!("unknown option `{arg}`"));
        };
        let value = match (option.value, value) {
            (None, Some(_)) => return Err(format!("{name} takes no value, write just `{name}`")),
            (Some(_), None) => return Err(format!("{name} needs a value: {name}=...")),
            (None, None) => {
                let flag = match name {
                    "use_first_pass" => &mut self.use_first_pass,
                    "try_first_pass" => &mut self.try_first_pass,
                    "ignore_unknown_user" => &mut self.ignore_unknown_user,
                    "nullok" => &mut self.nullok,
                    "debug" => &mut self.debug,
                    _ => return Err(format!("unknown option `{arg}`")),
                };
                *flag = true;
                return Ok(());
            }
            (Some(_), Some(value)) => value,
        };
        match name {
            "socket" => {
                let path = PathBuf::from(value);
                if !path.is_absolute() {
                    // A relative path would depend on the working directory of sshd, sudo or a
                    // screen locker, i.e. on whoever started the login.
                    return Err(format!("socket={} is not an absolute path", path.display()));
                }
                self.socket = path;
            }
            "timeout" => {
                let secs: u64 = value
                    .parse()
                    .map_err(|_| format!("timeout={value} is not a whole number of seconds"))?;
                if !(MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(&secs) {
                    return Err(format!(
                        "timeout={secs} is outside {MIN_TIMEOUT_SECS}..={MAX_TIMEOUT_SECS}"
                    ));
                }
                self.timeout = Duration::from_secs(secs);
            }
            "busy_wait_us" => {
                let us: u64 = value.parse().map_err(|_| {
                    format!("busy_wait_us={value} is not a whole number of microseconds")
                })?;
                if us > MAX_BUSY_WAIT_US {
                    return Err(format!(
                        "busy_wait_us={us} is outside 0..={MAX_BUSY_WAIT_US}"
                    ));
                }
                self.busy_wait = Duration::from_micros(us);
            }
            "daemon_uid" => {
                self.daemon_uid = value
                    .parse()
                    .map_err(|_| format!("daemon_uid={value} is not a numeric uid"))?;
            }
            _ => return Err(format!("unknown option `{arg}`")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> (Options, Vec<String>) {
        Options::parse(args)
    }

    #[test]
    fn no_arguments_give_the_fail_closed_defaults() {
        let (options, warnings) = parse(&[]);
        assert!(warnings.is_empty());
        assert_eq!(options, Options::default());
        assert_eq!(options.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(options.timeout, Duration::from_secs(10));
        assert_eq!(options.busy_wait, Duration::from_millis(1));
        assert!(!options.use_first_pass && !options.try_first_pass);
        assert!(!options.ignore_unknown_user && !options.nullok && !options.debug);
        assert_eq!(
            options.daemon_uid, 0,
            "only a daemon run by root is trusted"
        );
    }

    #[test]
    fn every_documented_option_is_understood() {
        let (options, warnings) = parse(&[
            "socket=/tmp/pi.sock",
            "timeout=30",
            "busy_wait_us=250",
            "daemon_uid=998",
            "use_first_pass",
            "try_first_pass",
            "ignore_unknown_user",
            "nullok",
            "debug",
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(options.socket, PathBuf::from("/tmp/pi.sock"));
        assert_eq!(options.timeout, Duration::from_secs(30));
        assert_eq!(options.busy_wait, Duration::from_micros(250));
        assert_eq!(options.daemon_uid, 998);
        assert!(options.use_first_pass && options.try_first_pass);
        assert!(options.ignore_unknown_user && options.nullok && options.debug);
    }

    /// An argument each option is written with in a service file, other than its default.
    fn example(name: &str) -> &'static str {
        match name {
            "socket" => "socket=/run/pi/other.sock",
            "timeout" => "timeout=30",
            "busy_wait_us" => "busy_wait_us=0",
            "daemon_uid" => "daemon_uid=998",
            "use_first_pass" => "use_first_pass",
            "try_first_pass" => "try_first_pass",
            "ignore_unknown_user" => "ignore_unknown_user",
            "nullok" => "nullok",
            "debug" => "debug",
            other => panic!("{other} has a manual entry but no example here"),
        }
    }

    #[test]
    fn every_option_in_the_manual_table_is_applied_by_the_parser() {
        for option in OPTIONS {
            let (options, warnings) = parse(&[example(option.name)]);
            assert!(warnings.is_empty(), "{}: {warnings:?}", option.name);
            assert_ne!(
                options,
                Options::default(),
                "{} changed nothing",
                option.name
            );
            assert!(
                USAGE.contains(option.name),
                "{} not in the usage",
                option.name
            );
            assert!(!option.meaning.is_empty() && !option.default.is_empty());
        }
    }

    #[test]
    fn a_flag_in_the_table_takes_no_value_and_a_valued_option_needs_one() {
        for option in OPTIONS {
            let (written, warning) = match option.value {
                Some(_) => (option.name.to_owned(), "needs a value"),
                None => (format!("{}=1", option.name), "takes no value"),
            };
            let (options, warnings) = parse(&[written.as_str()]);
            assert_eq!(options, Options::default(), "{written}");
            assert!(warnings[0].contains(warning), "{written}: {warnings:?}");
        }
    }

    #[test]
    fn unknown_option_is_reported_and_ignored() {
        let (options, warnings) = parse(&["nullok", "frobnicate", "nullok_secure=1"]);
        assert!(options.nullok);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("frobnicate"));
        assert!(
            warnings[0].contains("valid options"),
            "says what to write instead"
        );
        assert!(warnings[1].contains("nullok_secure"));
    }

    /// Each of `bad` is refused with one warning and leaves `field` at `default`; each of
    /// `good` is taken without a warning.
    fn check_option<T: PartialEq + std::fmt::Debug>(
        field: fn(&Options) -> T,
        default: T,
        bad: &[&str],
        good: &[(&str, T)],
    ) {
        for bad in bad {
            let (options, warnings) = parse(&[bad]);
            assert_eq!(field(&options), default, "{bad}");
            assert_eq!(warnings.len(), 1, "{bad}");
        }
        for (arg, want) in good {
            let (options, warnings) = parse(&[arg]);
            assert!(warnings.is_empty(), "{arg}");
            assert_eq!(field(&options), *want, "{arg}");
        }
    }

    #[test]
    fn timeout_outside_the_range_keeps_the_default() {
        check_option(
            |o| o.timeout,
            DEFAULT_TIMEOUT,
            &[
                "timeout=0",
                "timeout=301",
                "timeout=-1",
                "timeout=ten",
                "timeout=",
            ],
            &[
                ("timeout=1", Duration::from_secs(1)),
                ("timeout=300", Duration::from_secs(300)),
            ],
        );
    }

    #[test]
    fn busy_wait_outside_the_range_keeps_the_default_and_zero_turns_it_off() {
        check_option(
            |o| o.busy_wait,
            DEFAULT_BUSY_WAIT,
            &[
                "busy_wait_us=10001",
                "busy_wait_us=-1",
                "busy_wait_us=1ms",
                "busy_wait_us=",
                "busy_wait_us",
            ],
            &[
                ("busy_wait_us=0", Duration::ZERO),
                ("busy_wait_us=10000", Duration::from_millis(10)),
            ],
        );
    }

    #[test]
    fn relative_or_empty_socket_path_keeps_the_default() {
        check_option(
            |o| o.socket.clone(),
            PathBuf::from(DEFAULT_SOCKET),
            &[
                "socket=",
                "socket=pid.sock",
                "socket=run/pi/pid.sock",
                "socket",
            ],
            &[(
                "socket=/run/pi/other.sock",
                PathBuf::from("/run/pi/other.sock"),
            )],
        );
    }

    #[test]
    fn a_daemon_uid_that_is_not_a_number_keeps_root() {
        check_option(
            |o| o.daemon_uid,
            0,
            &[
                "daemon_uid=",
                "daemon_uid=pi",
                "daemon_uid=-1",
                "daemon_uid",
            ],
            &[("daemon_uid=65534", 65534)],
        );
    }

    #[test]
    fn flag_with_a_value_is_not_taken_as_the_flag() {
        // `nullok=no` must not switch nullok on: that would let users without a token through.
        let (options, warnings) = parse(&["nullok=no", "ignore_unknown_user=0", "debug=1"]);
        assert!(!options.nullok && !options.ignore_unknown_user && !options.debug);
        assert_eq!(warnings.len(), 3);
        assert!(warnings[0].contains("takes no value"));
    }

    #[test]
    fn option_names_are_case_sensitive() {
        let (options, warnings) = parse(&["NULLOK", "Debug"]);
        assert!(!options.nullok && !options.debug);
        assert_eq!(warnings.len(), 2);
    }

    #[test]
    fn later_value_wins() {
        let (options, warnings) = parse(&["timeout=5", "timeout=7", "socket=/a", "socket=/b"]);
        assert!(warnings.is_empty());
        assert_eq!(options.timeout, Duration::from_secs(7));
        assert_eq!(options.socket, PathBuf::from("/b"));
    }

    #[test]
    fn connect_timeout_is_the_smaller_of_timeout_and_two_seconds() {
        let (options, _) = parse(&["timeout=1"]);
        assert_eq!(options.connect_timeout(), Duration::from_secs(1));
        let (options, _) = parse(&["timeout=60"]);
        assert_eq!(options.connect_timeout(), Duration::from_secs(2));
        assert_eq!(Options::default().connect_timeout(), Duration::from_secs(2));
    }
}
