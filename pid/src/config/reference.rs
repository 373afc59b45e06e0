//! The reference of every pid.toml key, section by section: what `pid.toml(5)` is generated
//! from (`pi-docgen`).
//!
//! The tests below tie it to the parser, so manual and configuration cannot drift apart: every
//! key the parser accepts has a row (the parser's own list of fields is read from the error an
//! unknown key gives), every row's example is accepted by `Config::parse`, and every default
//! written as a value is the value `Config::default()` has. A new key is one more `KeyDoc` in
//! its section.

/// One `[table]` of pid.toml (or the top of the file).
#[derive(Clone, Copy, Debug)]
pub struct Section {
    /// The header as written in pid.toml: `""` for the keys before any table, `"[argon2]"`,
    /// `"[resolvers.NAME]"`, `"[[policy]]"`.
    pub header: &'static str,
    /// What tells this table apart from others with the same header (the resolver's type), or
    /// `""`.
    pub variant: &'static str,
    /// One paragraph: what the table is for.
    pub about: &'static str,
    /// The lines every table of this section needs (besides the key a reader looks up), as
    /// TOML; `""` when an empty table is valid.
    pub needs: &'static str,
    pub keys: &'static [KeyDoc],
}

/// One key of a section.
#[derive(Clone, Copy, Debug)]
pub struct KeyDoc {
    pub key: &'static str,
    /// What the value is: `integer`, `string`, `path`, or the words it may be.
    pub kind: &'static str,
    /// What is in force when the key is absent: a TOML value (checked against the defaults of
    /// the fixed sections), or words such as `unset` or `required`.
    pub default: &'static str,
    /// One paragraph: what the key does.
    pub meaning: &'static str,
    /// A valid setting as TOML lines in the section's table: the key, and what it needs
    /// besides the section's `needs` (the test parses it).
    pub example: &'static str,
}

const fn key(
    key: &'static str,
    kind: &'static str,
    default: &'static str,
    meaning: &'static str,
    example: &'static str,
) -> KeyDoc {
    KeyDoc {
        key,
        kind,
        default,
        meaning,
        example,
    }
}

const SECONDS_1_120: &str = "integer, 1 to 120";

/// Every section of pid.toml, in the order the manual shows them.
pub const SECTIONS: &[Section] = &[
    Section {
        header: "",
        variant: "",
        about: "The keys at the top of the file, before any table.",
        needs: "",
        keys: &[
            key("version", "integer", "1", "Format version of this file; only 1 exists.", "version = 1"),
            key(
                "socket",
                "absolute path",
                "\"/run/pi/pid.sock\"",
                "The Unix socket pam_pi and pictl connect to. Its mode is 0666: every request \
                 is authorised by the caller's uid (SO_PEERCRED), never by what the caller \
                 claims. Applies at the next restart.",
                "socket = \"/run/pi/other.sock\"",
            ),
            key(
                "state_dir",
                "absolute path",
                "\"/var/lib/pi\"",
                "The token store lives in state_dir/db.redb, its journal in state_dir/db.journal. \
                 Only pid opens them. Applies at the next restart.",
                "state_dir = \"/srv/pi\"",
            ),
            key(
                "enckey_file",
                "absolute path",
                "\"/etc/pi/enckey\"",
                "The 32-byte AES-256-GCM key that encrypts OTP keys at rest; created (mode 0400) \
                 on first start. pid refuses a key readable by group or others. Back it up apart \
                 from the store: once it seals tokens, pid refuses to start without it and names \
                 its fingerprint (pid --key-fingerprint FILE prints a backup's). Applies at the \
                 next restart.",
                "enckey_file = \"/etc/pi/other.key\"",
            ),
            key(
                "enckey_credential",
                "file name",
                "unset",
                "Read the key from the systemd credential of this name instead of enckey_file: \
                 $CREDENTIALS_DIRECTORY/NAME, which systemd decrypts at start from \
                 LoadCredentialEncrypted=NAME in pid.service (sealed by the TPM or the host \
                 key), so the key is never on disk in the clear. The same 32 raw bytes as a key \
                 file; pid never creates one. Not together with an enckey_file set in the file. \
                 Applies at the next restart.",
                "enckey_credential = \"pid-enckey\"",
            ),
            key(
                "admin_group",
                "string",
                "\"pi-admin\"",
                "Members of this group administer tokens and read the audit trail, as root \
                 does. An empty string: root only.",
                "admin_group = \"wheel\"",
            ),
            key(
                "default_realm",
                "string",
                "\"default\"",
                "The realm of a login without \"@realm\". Without any [realms.NAME] table it \
                 holds the host's accounts; with realms it must be one of them.",
                "default_realm = \"office\"",
            ),
            key(
                "log_level",
                "string",
                "\"info\"",
                "error, warn, info, debug or trace, or comma-separated directives naming them \
                 (\"info,pid::realm=debug\"); RUST_LOG overrides. Secrets are never logged. \
                 Applies at the next restart.",
                "log_level = \"debug\"",
            ),
            key(
                "log_target",
                "\"auto\", \"journal\" or \"stderr\"",
                "\"auto\"",
                "Where the log goes. auto: the journal under systemd, or when pid runs on a \
                 terminal (or with no stderr) and journald listens; otherwise stderr. A log that \
                 cannot be written is dropped and counted, never a reason to stop. Applies at \
                 the next restart.",
                "log_target = \"stderr\"",
            ),
            key(
                "journal_socket",
                "absolute path",
                "\"/run/systemd/journal/socket\"",
                "journald's native socket. Applies at the next restart.",
                "journal_socket = \"/run/journal.sock\"",
            ),
        ],
    },
    Section {
        header: "[argon2]",
        variant: "",
        about: "The argon2id cost of token PINs. The default is OWASP's minimum; privacyIDEA \
                uses memory_kib = 65536, iterations = 9, parallelism = 4. Applies at the next \
                restart.",
        needs: "",
        keys: &[
            key(
                "memory_kib",
                "integer, 8 × parallelism to 4194304",
                "19456",
                "Memory of one PIN hash, in KiB.",
                "memory_kib = 65536",
            ),
            key("iterations", "integer, 1 to 64", "2", "Passes over the memory.", "iterations = 3"),
            key("parallelism", "integer, 1 to 16", "1", "Lanes of one hash.", "parallelism = 4"),
            key(
                "verified_pin_cache_secs",
                "integer, 0 to 3600",
                "0",
                "Accept a PIN that argon2 accepted for the same token less than this many \
                 seconds ago without running argon2 again (0: off). The price: a memory dump of \
                 the running pid reveals the PINs used in that window at HMAC speed instead of \
                 argon2 speed. A wrong PIN is never taken from it, and a PIN change takes effect \
                 at once.",
                "verified_pin_cache_secs = 60",
            ),
        ],
    },
    Section {
        header: "[limits]",
        variant: "",
        about: "What one client can make the daemon hold. \"Users\" are every account but root, \
                including the su and sudo prompts an account starts: whatever users do, the \
                rest of max_connections stays free for root's logins (sshd, login).",
        needs: "",
        keys: &[
            key(
                "max_connections",
                "integer, at least 1",
                "512",
                "Connections served at once; further clients wait in the kernel's backlog. \
                 Applies at the next restart.",
                "max_connections = 1024",
            ),
            key(
                "idle_timeout_secs",
                "integer, 1 to 86400",
                "300",
                "A connection silent this long is closed; an unanswered prompt expires with it. \
                 A status request does not count as activity.",
                "idle_timeout_secs = 600",
            ),
            key(
                "sessions_per_connection",
                "integer, at least 1",
                "64",
                "Logins in progress one connection may hold at once.",
                "sessions_per_connection = 16",
            ),
            key(
                "user_auth_per_minute",
                "integer",
                "30",
                "Authentications a user (a screen locker, su started by a user) may start per \
                 minute.",
                "user_auth_per_minute = 10",
            ),
            key(
                "user_connections",
                "integer, at least 1, below max_connections",
                "64",
                "Connections all users together may hold.",
                "user_connections = 32",
            ),
            key(
                "user_connections_per_uid",
                "integer, 1 to user_connections",
                "8",
                "Connections one user may hold (a screen locker and a pictl need one each).",
                "user_connections_per_uid = 4",
            ),
            key(
                "user_idle_timeout_secs",
                "integer, 1 to 86400",
                "60",
                "idle_timeout_secs for users' connections.",
                "user_idle_timeout_secs = 30",
            ),
            key(
                "user_sessions_per_connection",
                "integer, at least 1",
                "4",
                "sessions_per_connection for users' connections (one login needs one).",
                "user_sessions_per_connection = 2",
            ),
            key(
                "user_tokens",
                "integer, at least 1",
                "20",
                "Tokens a user may hold after enrolling one themselves (pictl enroll); the \
                 smaller of this and the max_token_per_user policy applies to their own \
                 enrollments.",
                "user_tokens = 5",
            ),
        ],
    },
    Section {
        header: "[tokens]",
        variant: "",
        about: "What new tokens get unless an enrollment policy says otherwise, and how \
                failures lock them (privacyIDEA's semantics).",
        needs: "",
        keys: &[
            key(
                "hotp_window",
                "integer, 1 to 1000",
                "10",
                "HOTP look-ahead: how many counter values past the last accepted one are tried \
                 (privacyIDEA's DefaultCountWindow).",
                "hotp_window = 20",
            ),
            key("totp_period", "30 or 60", "30", "TOTP time step of new tokens, in seconds.", "totp_period = 60"),
            key(
                "totp_window_secs",
                "integer, 0 to 3600",
                "180",
                "How far either side of now a TOTP code is accepted, in seconds (privacyIDEA's \
                 totp.timeWindow).",
                "totp_window_secs = 60",
            ),
            key("digits", "6 or 8", "6", "OTP length of new tokens.", "digits = 8"),
            key(
                "hash",
                "\"sha1\", \"sha256\" or \"sha512\"",
                "\"sha1\"",
                "HMAC hash of new HOTP and TOTP tokens.",
                "hash = \"sha256\"",
            ),
            key(
                "maxfail",
                "integer, 1 to 1000",
                "10",
                "Wrong answers from one source (a local account, a remote host, the console) \
                 before the token is locked for that source: a remote host's failures never \
                 lock the console (privacyIDEA's DefaultMaxFailCount).",
                "maxfail = 5",
            ),
            key(
                "failcounter_clear_timeout_mins",
                "integer, 0 to 527040",
                "1",
                "How long the first lock lasts, in minutes; each further lock of the same source \
                 lasts twice as long as the one before, up to lockout_max_mins. A success from \
                 the source or pictl token reset clears it. 0: locked until pictl token reset.",
                "failcounter_clear_timeout_mins = 5",
            ),
            key(
                "lockout_max_mins",
                "integer, 1 to 527040",
                "1440",
                "No lock lasts longer than this many minutes (unless the first already does).",
                "lockout_max_mins = 60",
            ),
            key(
                "issuer",
                "string, at most 64 characters, no colon",
                "unset: the host's name",
                "The name authenticator apps file new tokens under (the otpauth URL's issuer). \
                 Users of a realm other than default_realm appear in the app as login@realm.",
                "issuer = \"ACME ssh\"",
            ),
        ],
    },
    Section {
        header: "[store]",
        variant: "",
        about: "The token store (redb). Applies at the next restart.",
        needs: "",
        keys: &[key(
            "cache_mib",
            "integer, 1 to 65536",
            "8",
            "The store's page cache in MiB. pid's memory is about this plus ~30 bytes per \
             flatfile user and the writes of the last checkpoint interval; 8 holds a \
             10,000-token store whole, and more buys little for larger ones.",
            "cache_mib = 16",
        )],
    },
    Section {
        header: "[audit]",
        variant: "",
        about: "The audit trail (every login, refusal and administrative action; pictl audit \
                show) lives in the store. A full disk fails every login, so it is bounded by \
                default, in age and in number of entries (an entry is about 200 bytes).",
        needs: "",
        keys: &[
            key(
                "keep_days",
                "integer, 0 to 36500",
                "365",
                "Entries older than this many days are deleted, checked every minute; 0 keeps \
                 them whatever their age, as privacyIDEA does.",
                "keep_days = 90",
            ),
            key(
                "max_entries",
                "integer",
                "1000000",
                "The oldest entries beyond this many are deleted, checked every minute; 0: no \
                 limit. A million entries are about 200 MB.",
                "max_entries = 0",
            ),
            key(
                "user_entries_per_minute",
                "integer",
                "20",
                "Entries one user (any account but root) has recorded one by one per minute; \
                 the rest, a flood of refused requests, are counted in one summary entry per \
                 user and minute. Administrators' own entries are never summarised.",
                "user_entries_per_minute = 5",
            ),
        ],
    },
    Section {
        header: "[smtp]",
        variant: "",
        about: "The mail server e-mail tokens send their codes through. Without host, e-mail \
                tokens cannot be challenged.",
        needs: "",
        keys: &[
            key("host", "string", "\"\"", "The mail server's host name.", "host = \"mail.example.org\"\nsender = \"pi@example.org\""),
            key("port", "integer", "25", "The mail server's port.", "port = 587"),
            key(
                "tls",
                "\"starttls\", \"tls\" or \"none\"",
                "\"starttls\"",
                "starttls upgrades the connection; tls is implicit TLS (usually port 465); none \
                 only for a relay on this host.",
                "tls = \"tls\"",
            ),
            key(
                "sender",
                "string",
                "\"\"",
                "The sender address, e.g. pi@example.org; required with host.",
                "sender = \"pi@example.org\"",
            ),
            key(
                "username",
                "string",
                "unset: no authentication",
                "Log in as this user, with the password in password_file.",
                "username = \"pi\"\npassword_file = \"/etc/pi/smtp.password\"",
            ),
            key(
                "password_file",
                "absolute path",
                "unset",
                "A root-only file holding the SMTP password (never the password itself in \
                 pid.toml); comes together with username.",
                "username = \"pi\"\npassword_file = \"/etc/pi/smtp.password\"",
            ),
            key(
                "ca_file",
                "absolute path",
                "unset: the system's trust store",
                "PEM CA certificate(s) that sign the server's certificate.",
                "ca_file = \"/etc/pi/smtp-ca.pem\"",
            ),
            key("timeout_secs", SECONDS_1_120, "10", "Time for one delivery, in seconds.", "timeout_secs = 20"),
        ],
    },
    Section {
        header: "[sms]",
        variant: "",
        about: "Where SMS tokens' codes are sent: an HTTP gateway (url) or a program \
                (command), not both.",
        needs: "",
        keys: &[
            key(
                "url",
                "https:// URL (http:// for a local gateway)",
                "unset",
                "The HTTP gateway, e.g. https://sms.example.org/send.",
                "url = \"https://sms.example.org/send\"",
            ),
            key("method", "\"GET\" or \"POST\"", "unset: POST", "The HTTP method.", "method = \"GET\""),
            key(
                "headers",
                "table of strings",
                "unset",
                "Extra request headers, e.g. { Authorization = \"Bearer ...\" }.",
                "headers = { Authorization = \"Bearer x\" }",
            ),
            key(
                "body",
                "string",
                "unset",
                "The request body (POST) or query string (GET), with {phone} and {message}: \
                 URL-encoded in a query, JSON-escaped when the body starts with {.",
                "body = \"to={phone}&text={message}\"",
            ),
            key(
                "success_contains",
                "string",
                "unset",
                "Success needs a 2xx status and, if set, this text in the response.",
                "success_contains = \"OK\"",
            ),
            key(
                "command",
                "array of strings",
                "unset",
                "A program instead of HTTP, its absolute path first: it gets the phone number \
                 as its last argument and the message on stdin.",
                "command = [\"/usr/local/bin/send-sms\"]",
            ),
            key("timeout_secs", SECONDS_1_120, "10", "Time for one delivery, in seconds.", "timeout_secs = 30"),
        ],
    },
    Section {
        header: "[yubico]",
        variant: "",
        about: "The Yubico validation protocol 2.0 servers (YubiCloud, or a server of your own) \
                yubico tokens are checked against, tried in order.",
        needs: "",
        keys: &[
            key(
                "urls",
                "array of http(s):// URLs",
                "[\"https://api.yubico.com/wsapi/2.0/verify\"]",
                "The validation servers.",
                "urls = [\"https://yubico.example.org/wsapi/2.0/verify\"]",
            ),
            key("client_id", "string", "\"\"", "The API client id.", "client_id = \"12345\""),
            key(
                "api_key_file",
                "absolute path",
                "unset",
                "A root-only file with the base64 API key: requests are signed, and answers \
                 must be.",
                "api_key_file = \"/etc/pi/yubico.key\"",
            ),
            key("timeout_secs", SECONDS_1_120, "10", "Time for one check, in seconds.", "timeout_secs = 5"),
        ],
    },
    Section {
        header: "[ssh]",
        variant: "",
        about: "Who may ask for SSH keys (pictl ssh keys, sshd's AuthorizedKeysCommand).",
        needs: "",
        keys: &[key(
            "keys_users",
            "array of account names",
            "[\"nobody\"]",
            "Accounts (besides root) that may ask for the authorized keys of any login: \
             sshd_config's AuthorizedKeysCommandUser. Public keys are not secret, but which key \
             opens which account is nobody else's business.",
            "keys_users = [\"sshd-keys\"]",
        )],
    },
    Section {
        header: "[resolvers.NAME]",
        variant: "type = \"passwd\"",
        about: "A user store: the host's accounts through NSS (local accounts, and LDAP or SSSD \
                users the system sees). Without any resolver, default_realm holds these.",
        needs: "type = \"passwd\"",
        keys: &[
            key("type", "\"passwd\"", "required", "The kind of user store.", "type = \"passwd\""),
            key(
                "pam_service",
                "string",
                "\"pi-userstore\"",
                "The PAM service pid runs to check a user's password (policy actions otppin = \
                 \"userstore\" and passthru). It must not use pam_pi.",
                "pam_service = \"login\"",
            ),
        ],
    },
    Section {
        header: "[resolvers.NAME]",
        variant: "type = \"flatfile\"",
        about: "A user store in a passwd-format file (login:password:uid:gid:gecos:home:shell); \
                its passwords are crypt(3) hashes (yescrypt, SHA-crypt, bcrypt).",
        needs: "type = \"flatfile\"\nfile = \"/etc/pi/users\"",
        keys: &[
            key("type", "\"flatfile\"", "required", "The kind of user store.", "type = \"flatfile\""),
            key(
                "file",
                "absolute path",
                "required",
                "The user file; read at start and at every reload.",
                "file = \"/etc/pi/contractors.passwd\"",
            ),
        ],
    },
    Section {
        header: "[resolvers.NAME]",
        variant: "type = \"ldap\"",
        about: "A user store in an LDAP directory. A login must match exactly one entry \
                (several: the login fails closed). With otppin = \"userstore\", the PIN is the \
                user's directory password, checked by a bind.",
        needs: "type = \"ldap\"\nuri = \"ldaps://ldap.example.org\"\nbase = \"ou=people,dc=example,dc=org\"",
        keys: &[
            key("type", "\"ldap\"", "required", "The kind of user store.", "type = \"ldap\""),
            key(
                "uri",
                "ldap://HOST[:PORT] or ldaps://HOST[:PORT]",
                "required",
                "The directory server.",
                "uri = \"ldap://ldap.example.org:389\"",
            ),
            key(
                "base",
                "DN",
                "required",
                "Where users are searched (the whole subtree).",
                "base = \"dc=example,dc=org\"",
            ),
            key(
                "bind_dn",
                "DN",
                "unset: anonymous search",
                "The service account that searches; comes together with bind_password_file.",
                "bind_dn = \"cn=pi,dc=example,dc=org\"\nbind_password_file = \"/etc/pi/ldap-bind.password\"",
            ),
            key(
                "bind_password_file",
                "absolute path",
                "unset",
                "A root-only file holding only the service account's password (never the \
                 password itself in pid.toml).",
                "bind_dn = \"cn=pi,dc=example,dc=org\"\nbind_password_file = \"/etc/pi/ldap-bind.password\"",
            ),
            key(
                "filter",
                "LDAP filter",
                "\"(objectClass=posixAccount)\"",
                "Search filter ANDed with (login_attribute=LOGIN).",
                "filter = \"(objectClass=person)\"",
            ),
            key(
                "login_attribute",
                "string",
                "\"uid\"",
                "The attribute holding the login name, e.g. sAMAccountName for Active Directory.",
                "login_attribute = \"sAMAccountName\"",
            ),
            key(
                "uid_attribute",
                "string",
                "\"entryUUID\"",
                "The attribute holding the stable id tokens are bound to (objectGUID for Active \
                 Directory).",
                "uid_attribute = \"objectGUID\"",
            ),
            key(
                "starttls",
                "boolean",
                "false",
                "Upgrade an ldap:// connection with STARTTLS (refused with ldaps://, which is \
                 TLS already).",
                "uri = \"ldap://ldap.example.org\"\nstarttls = true",
            ),
            key(
                "ca_file",
                "absolute path",
                "unset: the system's trust store",
                "PEM CA certificate(s) that sign the server's certificate.",
                "ca_file = \"/etc/pi/ldap-ca.pem\"",
            ),
            key(
                "timeout_secs",
                "integer, 1 to 60",
                "5",
                "Time for each connect, bind and search, in seconds.",
                "timeout_secs = 10",
            ),
        ],
    },
    Section {
        header: "[realms.NAME]",
        variant: "",
        about: "A realm: the users a login as login@NAME is looked up among. Once realms are \
                declared, default_realm must be one of them. A realm is served by its resolvers \
                or by one upstream server, not both.",
        needs: "",
        keys: &[
            key(
                "resolvers",
                "array of resolver names",
                "unset",
                "Tried in order; the first resolver that knows the login wins. Each must be \
                 declared as [resolvers.NAME].",
                "resolvers = [\"local\"]",
            ),
            key(
                "upstream",
                "upstream name",
                "unset",
                "The [upstream.NAME] privacyIDEA server whose users and tokens the realm is.",
                "upstream = \"pi\"",
            ),
        ],
    },
    Section {
        header: "[upstream.NAME]",
        variant: "",
        about: "A privacyIDEA server: logins of the realms it serves are checked by the server, \
                and the offline values it hands out for tokens attached offline there let the \
                host log in while the server cannot be reached.",
        needs: "urls = [\"https://pi.example.org\"]",
        keys: &[
            key(
                "urls",
                "array of 1 to 8 https:// URLs",
                "required",
                "The server's base URLs, tried in order when one cannot be reached \
                 (https://pi.example.org, or with a path prefix). http:// only to 127.0.0.1 or \
                 localhost: PINs never cross a network in clear.",
                "urls = [\"https://pi1.example.org\", \"https://pi2.example.org\"]",
            ),
            key(
                "ca_file",
                "absolute path",
                "unset: the system's trust store",
                "PEM CA certificate(s) that sign the server's certificate. The certificate is \
                 always verified.",
                "ca_file = \"/etc/pi/privacyidea-ca.pem\"",
            ),
            key(
                "connect_timeout_ms",
                "integer, 1 to 10000",
                "2000",
                "Time to connect to one URL, in milliseconds; at most timeout_secs.",
                "connect_timeout_ms = 500",
            ),
            key(
                "timeout_secs",
                "integer, 1 to 8",
                "5",
                "Time for a whole exchange with the server (every URL tried), in seconds: a \
                 login must end before pam_pi stops waiting for the daemon.",
                "timeout_secs = 3",
            ),
            key(
                "realm",
                "string",
                "unset: the server's default realm",
                "The realm name sent to the server.",
                "realm = \"employees\"",
            ),
            key(
                "service_user",
                "string",
                "unset",
                "The server's admin account that fetches SSH keys and LUKS responses for this \
                 host (it needs the fetch_authentication_items right); comes together with \
                 service_password_file.",
                "service_user = \"pi-hosts\"\nservice_password_file = \"/etc/pi/privacyidea.password\"",
            ),
            key(
                "service_password_file",
                "absolute path",
                "unset",
                "A root-only file holding service_user's password.",
                "service_user = \"pi-hosts\"\nservice_password_file = \"/etc/pi/privacyidea.password\"",
            ),
            key(
                "ssh_cache_secs",
                "integer, 0 to 2592000",
                "3600",
                "How long SSH keys fetched from the server keep serving sshd when it cannot be \
                 reached, in seconds.",
                "ssh_cache_secs = 86400",
            ),
            key(
                "offline_max_fails",
                "integer, at least 1",
                "10, or the token's maxfail where the server sends it",
                "Wrong offline codes before offline logins of a token wait for the next online \
                 login.",
                "offline_max_fails = 5",
            ),
            key(
                "offline_max_age_days",
                "integer",
                "unset: unlimited",
                "Days an offline hand-out stays usable; older values wait for the server.",
                "offline_max_age_days = 30",
            ),
        ],
    },
    Section {
        header: "[[policy]]",
        variant: "",
        about: "A policy, as in privacyIDEA: in its scope, where its conditions match the \
                login or the request, its actions apply. Conditions left out match everything. \
                Where several policies set an action, the lowest priority number wins. The \
                actions each scope knows are listed below.",
        needs: "name = \"example\"\nscope = \"authentication\"\nactions = { passOnNoToken = true }",
        keys: &[
            key("name", "string", "required", "The policy's name, unique.", "name = \"sshd-office\""),
            key(
                "scope",
                "\"authentication\", \"enrollment\", \"user\" or \"admin\"",
                "required",
                "authentication: how a login is checked; enrollment: rules for new tokens and \
                 PINs; user: what users may do with their own tokens; admin: what members of \
                 admin groups may do (once an admin policy exists, an administrator other than \
                 root may do only what one allows).",
                "scope = \"enrollment\"\nactions = { otp_pin_minlength = 6 }",
            ),
            key("active", "boolean", "true", "An inactive policy is ignored.", "active = false"),
            key(
                "priority",
                "integer",
                "1",
                "Where policies disagree, the lower number wins.",
                "priority = 5",
            ),
            key(
                "realm",
                "array of realm names",
                "unset: any",
                "The realms of the users the policy is for.",
                "realm = [\"default\"]",
            ),
            key(
                "resolver",
                "array of resolver names",
                "unset: any",
                "The resolvers of the users the policy is for.",
                "resolver = [\"passwd\"]",
            ),
            key("user", "array of logins", "unset: any", "The users the policy is for.", "user = [\"alice\"]"),
            key(
                "service",
                "array of PAM services",
                "unset: any",
                "Authentication scope: the PAM services (sshd, sudo, ...) the policy is for.",
                "service = [\"sshd\"]",
            ),
            key(
                "rhost",
                "array of addresses or CIDR ranges",
                "unset: any",
                "Authentication scope: the remote hosts (10.0.0.0/8, 2001:db8::/32) the policy \
                 is for.",
                "rhost = [\"10.0.0.0/8\"]",
            ),
            key(
                "admin_group",
                "array of group names",
                "unset: any",
                "Admin scope: the Unix groups whose members the policy is for.",
                "scope = \"admin\"\nadmin_group = [\"helpdesk\"]\nactions = { tokenlist = true }",
            ),
            key(
                "time",
                "string",
                "unset: always",
                "Times of the week in the host's time zone, privacyIDEA's format: \
                 \"Mon-Fri: 08:00-18:00, Sat: 10:00-12:00\" (both ends included).",
                "time = \"Mon-Fri: 08:00-18:00\"",
            ),
            key(
                "actions",
                "table",
                "required",
                "The actions and their values, e.g. { passOnNoToken = true, otppin = \
                 \"userstore\" }.",
                "actions = { otppin = \"userstore\" }",
            ),
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::collections::BTreeSet;

    /// A pid.toml with `lines` in a table of `section` (NAME replaced by a name the other
    /// tables refer to), and what that table needs from the rest of the file.
    fn document(section: &Section, lines: &str) -> String {
        let mut text = String::new();
        if section.header == "[realms.NAME]" {
            text.push_str(
                "[resolvers.local]\ntype = \"passwd\"\n\
                 [upstream.pi]\nurls = [\"https://pi.example.org\"]\n",
            );
        }
        text.push_str(&section.header.replace("NAME", "default"));
        text.push('\n');
        let set_by_lines: Vec<&str> = lines.lines().filter_map(key_of).collect();
        for need in section.needs.lines() {
            if key_of(need).is_some_and(|k| !set_by_lines.contains(&k)) {
                text.push_str(need);
                text.push('\n');
            }
        }
        text.push_str(lines);
        text.push('\n');
        text
    }

    fn key_of(line: &str) -> Option<&str> {
        line.split_once(" = ").map(|(k, _)| k.trim())
    }

    /// The keys the parser accepts in `section`'s table: the list of fields serde names when it
    /// refuses an unknown key there.
    fn accepted_keys(section: &Section) -> BTreeSet<String> {
        const PROBE: &str = "pi_reference_probe";
        let text = document(section, &format!("{PROBE} = 1"));
        let error = Config::parse(&text, "probe").unwrap_err().to_string();
        let expected = error
            .split_once(&format!("unknown field `{PROBE}`, expected "))
            .unwrap_or_else(|| panic!("{}: no list of fields in {error}", section.header))
            .1;
        let expected = expected.lines().next().unwrap();
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    fn documented_keys(section: &Section) -> BTreeSet<String> {
        section.keys.iter().map(|k| k.key.to_owned()).collect()
    }

    /// The table name a section header opens: `argon2` for `[argon2]`, `policy` for
    /// `[[policy]]`.
    fn table_name(header: &str) -> &str {
        let inner = header.trim_matches(|c| c == '[' || c == ']');
        inner.split('.').next().unwrap_or(inner)
    }

    #[test]
    fn every_key_the_parser_accepts_has_a_row() {
        for section in SECTIONS {
            let mut accepted = accepted_keys(section);
            if section.header.is_empty() {
                // The top of the file also accepts the tables, each a section of its own.
                for other in SECTIONS.iter().filter(|s| !s.header.is_empty()) {
                    accepted.remove(table_name(other.header));
                }
            }
            let documented = documented_keys(section);
            let missing: Vec<_> = accepted.difference(&documented).collect();
            assert!(
                missing.is_empty(),
                "{} {}: keys without a row: {missing:?}",
                section.header,
                section.variant
            );
        }
    }

    #[test]
    fn every_table_the_parser_accepts_has_a_section() {
        let top = SECTIONS.iter().find(|s| s.header.is_empty()).unwrap();
        let documented = documented_keys(top);
        for table in accepted_keys(top).difference(&documented) {
            assert!(
                SECTIONS.iter().any(|s| table_name(s.header) == table),
                "[{table}] has no section"
            );
        }
    }

    #[test]
    fn every_row_is_a_key_the_parser_accepts_with_its_example() {
        for section in SECTIONS {
            for row in section.keys {
                assert!(
                    row.example.lines().any(|l| key_of(l) == Some(row.key)),
                    "{}: the example sets another key",
                    row.key
                );
                let text = document(section, row.example);
                if let Err(e) = Config::parse(&text, "example") {
                    panic!("{} {}: {e}\n{text}", section.header, row.key);
                }
            }
            // And a table with only what it needs is valid too (a realm needs one of its
            // two keys, which exclude each other: it has no such lines).
            if !section.needs.is_empty() {
                Config::parse(&document(section, section.needs), "needs").unwrap();
            }
        }
    }

    #[test]
    fn defaults_written_as_values_are_the_defaults_in_force() {
        let defaults: toml::Table = toml::from_str(&Config::default().to_toml()).unwrap();
        for section in SECTIONS.iter().filter(|s| !s.header.contains("NAME")) {
            if section.header.starts_with("[[") {
                continue;
            }
            let table = if section.header.is_empty() {
                &defaults
            } else {
                defaults[table_name(section.header)].as_table().unwrap()
            };
            for row in section.keys {
                let written = toml::from_str::<toml::Table>(&format!("v = {}", row.default))
                    .ok()
                    .and_then(|mut t| t.remove("v"));
                match (table.get(row.key), written) {
                    (Some(actual), Some(written)) => {
                        assert_eq!(actual, &written, "{} {}", section.header, row.key)
                    }
                    (Some(actual), None) => panic!(
                        "{} {}: write the default as the value {actual}",
                        section.header, row.key
                    ),
                    // Unset by default: the row says in words what is in force.
                    (None, _) => {}
                }
            }
        }
    }

    #[test]
    fn sections_and_rows_are_not_repeated_and_say_something() {
        let mut seen = BTreeSet::new();
        for section in SECTIONS {
            assert!(seen.insert((section.header, section.variant)));
            assert!(!section.about.is_empty());
            let mut keys = BTreeSet::new();
            for row in section.keys {
                assert!(keys.insert(row.key), "{} twice", row.key);
                assert!(!row.kind.is_empty() && !row.default.is_empty() && !row.meaning.is_empty());
            }
        }
    }
}
