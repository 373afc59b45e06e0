//! Running the daemon: bind the socket, open the state, serve until a signal says stop, and the
//! minute-by-minute housekeeping meanwhile.

use crate::config::Config;
use crate::error::{chain, PidError};
use crate::state::State;
use crate::{audit, clock, logging, server, sys, systemd, trust};
use std::sync::Arc;
use std::time::Duration;

/// How often the audit trail is checked against `audit.keep_days`, and idle argon2 memory freed.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// Start logging as the configuration says (see `logging`); keep the guard until exit.
pub fn init_logging(config: &Config) -> logging::LogGuard {
    logging::init(config)
}

/// Run the daemon in the foreground until SIGTERM or SIGINT. `systemd` is what the service
/// manager passed (`systemd::Environment::take`, or `Environment::none()`): a listening socket
/// to serve instead of binding one, and where to say ready, reloading and stopping.
pub async fn run_daemon(
    config: Config,
    config_path: std::path::PathBuf,
    mut systemd: systemd::Environment,
) -> Result<(), PidError> {
    sys::disable_core_dumps();
    // Nothing is opened below a directory someone else could swap files in.
    trust::prepare_directories(&config)?;
    let socket = config.socket.clone();
    // Bind first: a second daemon on the same socket is refused with a clear message before it
    // touches the store another daemon holds. A socket systemd passed is its own: pid never
    // removes its file (the .socket unit keeps listening while pid restarts).
    let (listener, bound_here) = match systemd.listener(&socket)? {
        Some(passed) => (server::adopt(passed, &socket)?, false),
        None => (server::bind(&socket)?, true),
    };
    let remove_own_socket = || {
        if bound_here {
            let _ = std::fs::remove_file(&socket);
        }
    };
    let state = match State::open(config, Arc::new(clock::SystemClock)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            remove_own_socket();
            return Err(e);
        }
    };
    let tokens = state.store.count_tokens();
    tracing::info!(
        socket = %socket.display(),
        socket_from = if bound_here { "pid" } else { "systemd" },
        store = %state.store.path().display(),
        tokens,
        key_fingerprint = %state.cipher.fingerprint(),
        "pid {} ready", env!("CARGO_PKG_VERSION")
    );
    let notifier = Arc::new(systemd.into_notifier());
    let housekeeping_task = tokio::spawn(housekeeping(state.clone()));
    // The accept loop runs as a task, not on the thread that called `block_on`: a connection is
    // then accepted and served on the same worker thread, one thread wake fewer per login.
    let server = tokio::spawn(server::run(
        listener,
        state.clone(),
        signals(state.clone(), config_path, notifier.clone()),
    ));
    // The socket listens (connections wait in its backlog until the task accepts them): ready.
    notifier.ready(&format!("serving {tokens} tokens on {}", socket.display()));
    if let Err(e) = server.await {
        tracing::error!(error = %e, "the accept loop failed");
    }
    housekeeping_task.abort();
    audit::close_minute(&state);
    let flushed = state.store.durable().await;
    remove_own_socket();
    flushed?;
    tracing::info!("stopped");
    Ok(())
}

/// Every minute: free argon2's spare working memory if no PIN was checked in the last minute,
/// write the minute's audit summaries, apply `audit.keep_days` and `audit.max_entries` (a
/// reload takes effect at the next round), and ask upstream servers for the offline refills
/// still due (a server that was unreachable at the offline login may answer now).
async fn housekeeping(state: Arc<State>) {
    let mut every = tokio::time::interval(HOUSEKEEPING_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        // Freeing tens of MiB and trimming the heap takes milliseconds: not on a worker.
        let pins = state.pins.clone();
        let _ = tokio::task::spawn_blocking(move || pins.release_idle_memory()).await;
        audit::close_minute(&state);
        match state.prune_audit().await {
            Ok(0) => {}
            Ok(n) => {
                let audit = &state.live().config.audit;
                tracing::info!(
                    entries = n,
                    "deleted the oldest {n} audit entries: the trail keeps {} days and {} \
                     entries at most (audit.keep_days, audit.max_entries; 0 = no limit)",
                    audit.keep_days,
                    audit.max_entries
                );
            }
            Err(e) => tracing::error!(error = %chain(&e), "cannot prune the audit trail"),
        }
        for client in state.live().upstreams.iter() {
            state.refiller(client).run(None).await;
        }
    }
}

/// Resolves on SIGTERM or SIGINT; reloads the configuration on SIGHUP. Tells the service
/// manager (if any) when a reload starts and ends, and when shutdown starts.
async fn signals(
    state: Arc<State>,
    config_path: std::path::PathBuf,
    notifier: Arc<systemd::Notifier>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the daemon with SIGKILL");
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                notifier.reloading();
                let (state, path) = (state.clone(), config_path.clone());
                // Reading a flatfile of a million users takes a while: off the executor.
                let result = tokio::task::spawn_blocking(move || state.reload(&path)).await;
                let status = match result {
                    Ok(Ok(warnings)) => {
                        for w in &warnings {
                            tracing::warn!("{w}");
                        }
                        tracing::info!(config = %config_path.display(), "configuration reloaded");
                        match warnings.len() {
                            0 => "reloaded".to_string(),
                            n => format!("reloaded, {n} warnings (see the log)"),
                        }
                    }
                    Ok(Err(e)) => {
                        let why = chain(&e).to_string();
                        tracing::error!(
                            "reload refused, the running configuration stays in force: {why}"
                        );
                        format!("reload refused: {why}")
                    }
                    Err(e) => {
                        tracing::error!("reload failed: {e}");
                        format!("reload failed: {e}")
                    }
                };
                notifier.ready(&status);
            }
        }
    }
    notifier.stopping();
    tracing::info!("shutting down");
}
