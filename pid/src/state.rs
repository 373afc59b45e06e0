//! The daemon's shared state: the configuration in force (`Live`, replaced by a reload) and
//! everything a request handler may use (`State`), opened once at start.

use crate::auth::Verifier;
use crate::clock::Clock;
use crate::config::{self, Config};
use crate::crypto::{self, Cipher, PinHasher};
use crate::error::PidError;
use crate::limits::{RateLimiter, UserConnections, UserLocks};
use crate::store::{Store, TokenRecord, Versioned};
use crate::{audit, caller, pin_cache, policy, realm, sys, users, yubico_client};
use protocol::Secret;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// What a SIGHUP replaces: the configuration and what is built from it. Each request takes one
/// snapshot (`State::live`) and uses it throughout, so a reload never mixes two configurations
/// inside one request.
pub struct Live {
    pub config: Config,
    pub realms: realm::Realms,
    /// A client for each `[upstream.NAME]` server.
    pub upstreams: crate::upstream::Upstreams,
    pub policies: policy::Policies,
    /// The uids of `ssh.keys_users`, looked up when the configuration is loaded.
    pub ssh_key_readers: Vec<u32>,
    /// Resolvers and upstream servers that could not be set up at start (their realms fail
    /// closed).
    pub unavailable: Vec<String>,
}

/// How strictly a configuration's resolvers must load.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Resolvers {
    /// Every one, or the configuration is refused (a reload: the running one stays).
    All,
    /// What loads; the realms of the others fail closed (start-up: there is nothing to keep).
    Serving,
}

impl Live {
    fn build(config: Config, resolvers: Resolvers) -> Result<Live, PidError> {
        let (realms, unavailable) = match resolvers {
            Resolvers::All => (realm::Realms::load(config.realms_config())?, Vec::new()),
            Resolvers::Serving => realm::Realms::load_serving(config.realms_config())?,
        };
        for problem in &unavailable {
            tracing::error!("{problem}");
        }
        // Upstream servers as strictly as the resolvers.
        let (upstreams, unavailable) = match resolvers {
            Resolvers::All => (
                crate::upstream::Upstreams::new(&config.upstream)?,
                unavailable,
            ),
            Resolvers::Serving => {
                let (upstreams, problems) = crate::upstream::Upstreams::serving(&config.upstream);
                for problem in &problems {
                    tracing::error!("{problem}");
                }
                (upstreams, [unavailable, problems].concat())
            }
        };
        let policies = config.load_policies()?;
        for w in policies.warnings().iter().chain(&config.host_warnings()) {
            tracing::warn!("{w}");
        }
        let ssh_key_readers = config
            .ssh
            .keys_users
            .iter()
            .filter_map(|name| match nix::unistd::User::from_name(name) {
                Ok(Some(u)) => Some(u.uid.as_raw()),
                _ => {
                    tracing::warn!(
                        "ssh.keys_users: no account {name:?} on this host; it cannot ask for \
                         SSH keys"
                    );
                    None
                }
            })
            .collect();
        Ok(Live {
            config,
            realms,
            upstreams,
            policies,
            ssh_key_readers,
            unavailable,
        })
    }
}

/// Everything a request handler may use.
pub struct State {
    live: std::sync::RwLock<Arc<Live>>,
    /// Shared with work that runs off the executor or after the answer (offline values,
    /// refills).
    pub store: Arc<Store>,
    pub cipher: Arc<Cipher>,
    pub pins: PinHasher,
    pub clock: Arc<dyn Clock>,
    pub started: Instant,
    pub user_locks: UserLocks,
    pub rate: RateLimiter,
    /// Users' audit entries this minute (see `audit`).
    pub audit_budget: audit::Budget,
    /// Connections held by accounts other than root (see `limits::UserConnections`).
    pub user_connections: Arc<UserConnections>,
    /// The configuration at start. Keys a reload cannot apply keep these values until the next
    /// restart, so a reload compares against it, not against the last file loaded: a key
    /// changed and then changed back needs no restart.
    started_with: Config,
    /// This host's name: the default machine of `pictl machine`, and the issuer authenticator
    /// apps show unless pid.toml `[tokens] issuer` names another.
    pub hostname: String,
    /// argon2 runs at most this many at a time. Each run holds `argon2.memory_kib` of memory, so
    /// without a bound a burst of logins (a brute force through sshd is root's) could exhaust
    /// the host's memory; with it, extra logins wait their turn.
    argon2_slots: tokio::sync::Semaphore,
    /// PINs argon2 accepted lately (`argon2.verified_pin_cache_secs`; off by default).
    verified_pins: pin_cache::VerifiedPins,
    /// How long an argon2 PIN check takes here (microseconds, a moving average): a wrong OTP
    /// on a token with a PIN is answered after as long (see `wait_as_long_as_a_pin_check`).
    pin_check_micros: std::sync::atomic::AtomicU64,
    /// User-store password checks in flight at most. A yescrypt hash takes ~16 MiB, pam_unix
    /// sleeps ~2 s after a wrong password on a blocking thread, an LDAP bind waits for the
    /// server: unbounded, a password-guessing burst would pin the blocking pool and memory.
    userstore_slots: tokio::sync::Semaphore,
    /// Tickets of logins that found a PIN change due (`auth::pin_change`).
    pub pin_changes: crate::auth::pin_change::Tickets,
}

/// Audit records deleted per store write when pruning (a record holds one group commit's entries).
const AUDIT_PRUNE_STEP: usize = 1000;

/// How many user-store password checks run at once (see `State::userstore_slots`).
const USERSTORE_CHECKS_AT_ONCE: usize = 16;

impl State {
    /// Open the key file and the store. Must run inside the tokio runtime.
    pub fn open(config: Config, clock: Arc<dyn Clock>) -> Result<State, PidError> {
        let pins = PinHasher::new(&config.argon2)?;
        let started_with = config.clone();
        let live = Live::build(config, Resolvers::Serving)?;
        let config = &live.config;
        let store = Store::open(&config.db_path(), config.store.cache_mib)?;
        let cipher = open_key(&KeySource::of(config)?, &store)?;
        let verified_pins = pin_cache::VerifiedPins::new(Duration::from_secs(
            config.argon2.verified_pin_cache_secs.into(),
        ));
        // One hash at the configured cost, so the first wrong OTP already waits as long as a
        // PIN check would take (a few ms to a few hundred, once at start).
        let started = Instant::now();
        pins.hash("the cost of one PIN check")?;
        let pin_check_micros = started.elapsed().as_micros() as u64;
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "pi".into());
        Ok(State {
            rate: RateLimiter::default(),
            live: std::sync::RwLock::new(Arc::new(live)),
            store: Arc::new(store),
            cipher: Arc::new(cipher),
            pins,
            clock,
            started: Instant::now(),
            user_locks: UserLocks::default(),
            user_connections: Arc::default(),
            audit_budget: audit::Budget::default(),
            started_with,
            hostname,
            argon2_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1),
            ),
            userstore_slots: tokio::sync::Semaphore::new(USERSTORE_CHECKS_AT_ONCE),
            pin_changes: Default::default(),
            verified_pins,
            pin_check_micros: std::sync::atomic::AtomicU64::new(pin_check_micros),
        })
    }

    /// The configuration in force now (see `Live`).
    pub fn live(&self) -> Arc<Live> {
        // The lock only guards an Arc swap; a panic cannot leave it half-written.
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-read the configuration file (SIGHUP). A file that does not validate, or realms that do
    /// not load, change nothing: the running configuration stays and the error says why. Keys
    /// that only take effect at start and differ from their values at start are named in the
    /// returned warnings.
    pub fn reload(&self, path: &std::path::Path) -> Result<Vec<String>, PidError> {
        let live = Live::build(Config::load(path)?, Resolvers::All)?;
        let old = self.live();
        let warnings = config::restart_only_changes(&self.started_with, &live.config)
            .into_iter()
            .map(|key| {
                format!(
                    "{key} in {} differs from the value pid started with: it takes effect at \
                     the next restart",
                    path.display()
                )
            })
            .collect();
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(live);
        // The old realms' indexes (unless a request still holds them) and the new ones' load
        // buffers are free now, but malloc would keep them: a million-user flatfile left pid at
        // 64 MiB after three reloads instead of 38.
        drop(old);
        sys::release_freed_memory();
        Ok(warnings)
    }

    /// How long a connection of `caller` may stay silent (`Status` requests count as silence).
    pub fn idle_timeout(&self, caller: &caller::Caller) -> Duration {
        let limits = &self.live().config.limits;
        Duration::from_secs(if caller.is_root_account() {
            limits.idle_timeout_secs
        } else {
            limits.user_idle_timeout_secs
        })
    }

    /// An unanswered prompt lives as long as an idle connection.
    pub fn session_ttl(&self, caller: &caller::Caller) -> Duration {
        self.idle_timeout(caller)
    }

    /// How many conversations one connection of `caller` may have open.
    pub fn sessions_per_connection(&self, caller: &caller::Caller) -> usize {
        let limits = &self.live().config.limits;
        if caller.is_root_account() {
            limits.sessions_per_connection as usize
        } else {
            limits.user_sessions_per_connection as usize
        }
    }

    /// Find a user in its realm's resolvers: on the worker when they can tell without blocking,
    /// otherwise off the executor (NSS may block on LDAP). On an idle host the trip to the
    /// blocking pool and back is two wake-ups across CPUs, most of a PAM login's first round trip.
    pub async fn lookup_user(
        &self,
        login: &str,
        realm: &str,
    ) -> Result<Option<users::ResolvedUser>, PidError> {
        let live = self.live();
        if let Some(known) = live.realms.lookup_without_blocking(login, realm)? {
            return Ok(known);
        }
        let (login, realm) = (login.to_owned(), realm.to_owned());
        let now = self.clock.now();
        tokio::task::spawn_blocking(move || live.realms.lookup(&login, &realm, now))
            .await
            .map_err(|e| PidError::task("user lookup", e))?
    }

    /// Bind `user`'s tokens to the person the resolver now finds behind the login, before a
    /// token is enrolled for or assigned to them. Refused while the login has tokens of another
    /// person (a reused login name, a recreated account or directory entry): handing those over
    /// would let the newcomer log in with the previous owner's tokens.
    pub fn bind_tokens_to(&self, user: &users::ResolvedUser) -> Result<(), PidError> {
        match self.store.bound_user_id(&user.owner)? {
            Some(bound) if bound == user.user_id => Ok(()),
            Some(bound) if !self.store.serials_of(&user.owner)?.is_empty() => {
                Err(PidError::TokenState(format!(
                    "{}@{} now names another account ({}; its tokens were enrolled for {bound}): \
                     delete or unassign that login's tokens first, or restore the account",
                    user.owner.login, user.owner.realm, user.user_id
                )))
            }
            _ => self.store.bind_user_id(&user.owner, &user.user_id),
        }
    }

    /// Whether `user` is the person their tokens were enrolled for. Tokens from before ids were
    /// recorded are bound to whoever uses them first.
    pub fn tokens_belong_to(&self, user: &users::ResolvedUser) -> Result<bool, PidError> {
        match self.store.bound_user_id(&user.owner)? {
            Some(bound) => Ok(bound == user.user_id),
            None => {
                self.store.bind_user_id(&user.owner, &user.user_id)?;
                Ok(true)
            }
        }
    }

    /// argon2id off the executor.
    pub async fn hash_pin(&self, pin: Secret) -> Result<String, PidError> {
        let _slot = self.argon2_slot().await?;
        let pins = self.pins.clone();
        tokio::task::spawn_blocking(move || pins.hash(pin.expose()))
            .await
            .map_err(|e| PidError::task("PIN hashing", e))?
    }

    /// What a background refill of `client`'s offline values needs, owned.
    pub fn refiller(
        &self,
        client: &Arc<crate::upstream::Client>,
    ) -> crate::upstream::refill::Refiller {
        crate::upstream::refill::Refiller {
            client: client.clone(),
            store: self.store.clone(),
            cipher: self.cipher.clone(),
            clock: self.clock.clone(),
        }
    }

    /// A turn at the CPU-bound hashing this host allows at once (argon2 PIN checks, PBKDF2
    /// offline values): at most one run per core; extra logins wait.
    pub async fn hashing_slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, PidError> {
        self.argon2_slot().await
    }

    async fn argon2_slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, PidError> {
        self.argon2_slots
            .acquire()
            .await
            .map_err(|_| PidError::Internal("argon2 slots closed".into()))
    }

    /// Delete the audit records older than `audit.keep_days` and beyond the newest
    /// `audit.max_entries` (0: no such limit), in steps that hold the store's write lock only
    /// briefly. Returns how many entries went.
    pub async fn prune_audit(self: &Arc<Self>) -> Result<usize, PidError> {
        let audit = self.live().config.audit.clone();
        if audit.keep_days == 0 && audit.max_entries == 0 {
            return Ok(0);
        }
        let before = match audit.keep_days {
            0 => i64::MIN,
            days => self.clock.now() - i64::from(days) * 86_400,
        };
        let max_entries = match audit.max_entries {
            0 => u64::MAX,
            n => n,
        };
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut entries = 0;
            loop {
                let step = state
                    .store
                    .prune_audit(before, max_entries, AUDIT_PRUNE_STEP)?;
                entries += step.entries;
                if step.records < AUDIT_PRUNE_STEP {
                    return Ok(entries);
                }
            }
        })
        .await
        .map_err(|e| PidError::task("audit pruning", e))?
    }
}

/// The daemon's answers to the check pipeline: its key file and store, argon2 (bounded by
/// `argon2_slots`, remembered by `verified_pins`), the realms' user stores (bounded by
/// `userstore_slots`) and the Yubico validation servers, each off the executor when it may
/// block.
impl Verifier for State {
    fn open_secret(&self, rec: &TokenRecord) -> Result<Zeroizing<Vec<u8>>, PidError> {
        self.cipher.open(&rec.serial, "otpkey", &rec.otpkey)
    }

    fn seal_secret(&self, serial: &str, secret: &[u8]) -> Result<Vec<u8>, PidError> {
        self.cipher.seal(serial, "otpkey", secret)
    }

    fn tokens_in_realm(&self, realm: &str, limit: usize) -> Result<Vec<Versioned>, PidError> {
        self.store.tokens_in_realm(realm, limit)
    }

    /// Off the executor: every user store but a flatfile may block.
    async fn check_user_password(
        &self,
        user: &users::ResolvedUser,
        password: Secret,
    ) -> Result<bool, PidError> {
        let _slot = self
            .userstore_slots
            .acquire()
            .await
            .map_err(|_| PidError::Internal("user-store slots closed".into()))?;
        let live = self.live();
        let user = user.clone();
        tokio::task::spawn_blocking(move || live.realms.check_password(&user, &password))
            .await
            .map_err(|e| PidError::task("password check", e))?
    }

    /// Off the executor: the servers answer over the network.
    async fn verify_yubico(&self, otp: &str) -> Result<bool, PidError> {
        let cfg = self.live().config.yubico.clone();
        let otp = otp.to_owned();
        let verdict = tokio::task::spawn_blocking(move || yubico_client::verify(&cfg, &otp))
            .await
            .map_err(|e| PidError::task("validation", e))??;
        if let yubico_client::Verdict::Refused(status) = &verdict {
            tracing::info!(status = %status, "the Yubico validation server refused an OTP");
        }
        Ok(verdict == yubico_client::Verdict::Ok)
    }

    /// As long as argon2 took lately here (`pin_check_micros`).
    async fn wait_as_long_as_a_pin_check(&self) {
        let micros = self
            .pin_check_micros
            .load(std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_micros(micros)).await;
    }

    /// A PIN argon2 accepted lately is taken from `verified_pins`; each argon2 run feeds the
    /// moving average `wait_as_long_as_a_pin_check` waits.
    async fn verify_pin(&self, stored: Option<&str>, pin: &str) -> Result<bool, PidError> {
        let Some(phc) = stored else {
            return Ok(pin.is_empty());
        };
        if self.verified_pins.accepts(phc, pin, Instant::now()) {
            return Ok(true);
        }
        let _slot = self.argon2_slot().await?;
        let (pins, owned_phc, owned_pin) = (self.pins.clone(), phc.to_owned(), Secret::new(pin));
        let started = Instant::now();
        let accepted =
            tokio::task::spawn_blocking(move || pins.verify(owned_pin.expose(), &owned_phc))
                .await
                .map_err(|e| PidError::task("PIN check", e))?;
        let took = started.elapsed().as_micros() as u64;
        let average = &self.pin_check_micros;
        let before = average.load(std::sync::atomic::Ordering::Relaxed);
        average.store(
            before - before / 8 + took / 8,
            std::sync::atomic::Ordering::Relaxed,
        );
        if accepted {
            self.verified_pins.remember(phc, pin, Instant::now());
        }
        Ok(accepted)
    }
}

/// Where the store's key comes from: the key file, or a systemd credential.
enum KeySource {
    /// `enckey_file`: made on the first start (for a store without tokens).
    File(std::path::PathBuf),
    /// `enckey_credential`: the file `name` in `$CREDENTIALS_DIRECTORY`, which systemd fills
    /// (decrypted) and makes read-only. pid never makes a key there.
    Credential {
        name: String,
        path: std::path::PathBuf,
    },
}

impl KeySource {
    fn of(config: &Config) -> Result<KeySource, PidError> {
        let Some(name) = &config.enckey_credential else {
            return Ok(KeySource::File(config.enckey_file.clone()));
        };
        let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") else {
            return Err(PidError::Startup(format!(
                "enckey_credential needs pid started by systemd with \
                 LoadCredentialEncrypted={name}: CREDENTIALS_DIRECTORY is not set, so there is \
                 no credential to read the key from (started by hand, use enckey_file)"
            )));
        };
        let dir = std::path::PathBuf::from(dir);
        // As for the key file's directory: nobody but root (or pid's uid) may place files there.
        crate::trust::check_directory("the credentials directory", &dir)?;
        Ok(KeySource::Credential {
            path: dir.join(name),
            name: name.clone(),
        })
    }

    fn path(&self) -> &std::path::Path {
        match self {
            KeySource::File(path) | KeySource::Credential { path, .. } => path,
        }
    }

    /// How messages name it: "key file PATH" or "key credential NAME (PATH)".
    fn shown(&self) -> String {
        match self {
            KeySource::File(path) => format!("key file {}", path.display()),
            KeySource::Credential { name, path } => {
                format!("key credential {name} ({})", path.display())
            }
        }
    }

    /// What to restore when the key is missing or wrong.
    fn restore(&self) -> String {
        match self {
            KeySource::File(_) => "put that key file back from a backup".to_string(),
            KeySource::Credential { name, .. } => format!(
                "encrypt that key from a backup as the credential again (`systemd-creds encrypt \
                 --name={name} BACKUP /etc/credstore.encrypted/{name}`)"
            ),
        }
    }
}

/// The key the store's secrets are sealed with, checked against the fingerprint the store
/// recorded when the key was first used.
///
/// Threat: a lost or replaced key file. Made anew, it would let pid serve while every token's
/// key fails to decrypt: every login refused, and the way back (the old key) perhaps
/// overwritten by then. So a new key is made only for a store without tokens, and only as a key
/// file; otherwise a missing or different key stops the start, naming the fingerprint to look
/// for.
fn open_key(source: &KeySource, store: &Store) -> Result<Cipher, PidError> {
    use crypto::KeyFingerprint;
    let (key, store_path) = (source.shown(), store.path().display());
    let restore = source.restore();
    let recorded = store
        .key_fingerprint()?
        .map(|b| {
            KeyFingerprint::from_bytes(&b).ok_or_else(|| {
                PidError::Startup(format!("store {store_path} has a damaged key fingerprint"))
            })
        })
        .transpose()?;
    let tokens = store.count_tokens();
    let find_backup = "`pid --key-fingerprint FILE` prints a file's fingerprint";
    let cipher = match (Cipher::load(source.path())?, recorded) {
        (Some(cipher), Some(want)) if cipher.fingerprint() == want => return Ok(cipher),
        (Some(cipher), Some(want)) if tokens > 0 => {
            return Err(PidError::Startup(format!(
                "{key} has fingerprint {}, but the {tokens} tokens in the store \
                 {store_path} are sealed with the key of fingerprint {want}: {restore} \
                 ({find_backup})",
                cipher.fingerprint()
            )))
        }
        (None, Some(want)) if tokens > 0 => {
            return Err(PidError::Startup(format!(
                "{key} is missing, but the {tokens} tokens in the store {store_path} \
                 are sealed with the key of fingerprint {want}; pid makes no new key for them \
                 (every login would fail): {restore} ({find_backup})"
            )))
        }
        (None, None) if tokens > 0 => {
            return Err(PidError::Startup(format!(
                "{key} is missing, but the {tokens} tokens in the store {store_path} \
                 are sealed with a key; pid makes no new key for them (every login would fail): \
                 {restore}"
            )))
        }
        (Some(cipher), None) if tokens > 0 => {
            // A store from before fingerprints were kept: the key must open its secrets.
            let (first, _) = store.list_tokens(None, None, 1)?;
            if let Some(rec) = first.first() {
                if cipher.open(&rec.serial, "otpkey", &rec.otpkey).is_err() {
                    return Err(PidError::Startup(format!(
                        "{key} (fingerprint {}) does not open the secrets of the \
                         tokens in the store {store_path}: {restore}",
                        cipher.fingerprint()
                    )));
                }
            }
            cipher
        }
        (Some(cipher), recorded) => {
            if recorded.is_some() {
                tracing::warn!(
                    key = %key,
                    fingerprint = %cipher.fingerprint(),
                    "the key is not the one the store recorded, but the store holds no \
                     tokens: the store now records this key"
                );
            }
            cipher
        }
        (None, _) => match source {
            KeySource::File(path) => {
                if recorded.is_some() {
                    tracing::warn!(
                        key = %key,
                        "the key file is missing; the store holds no tokens, so a new key is made"
                    );
                }
                Cipher::create(path)?
            }
            KeySource::Credential { name, .. } => {
                return Err(PidError::Startup(format!(
                    "{key} is missing, and pid never makes a key there (systemd fills that \
                     directory, read-only): make a key and encrypt it as the credential, e.g. \
                     `head -c32 /dev/urandom | systemd-creds encrypt --name={name} - \
                     /etc/credstore.encrypted/{name}` (or start pid once with enckey_file and \
                     encrypt the file it made), with LoadCredentialEncrypted={name} in the unit"
                )))
            }
        },
    };
    store.set_key_fingerprint(cipher.fingerprint().as_bytes())?;
    Ok(cipher)
}
