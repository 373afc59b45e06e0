#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly
//! A spent OTP stays spent, and an acknowledged change stays made, across a power cut — not
//! only across a `kill -9`, which leaves the kernel's page cache (and so every write the
//! daemon made) intact. The store and the key file live on LazyFS (`tests/src/lazyfs.rs`),
//! which on command drops every write that was not `fsync`ed or `fdatasync`ed, or tears a
//! write in parts and dies.
//!
//! Each power cut: concurrent HOTP logins through pamtester + pam_pi (codes from
//! `oathtool`) and, at the same time, enrollments and changes by `pictl`; the daemon is killed
//! while the last logins are in flight, the power goes (LazyFS drops its unsynced data or a torn
//! write has just killed it), and the daemon starts again. Then every code that was answered
//! Accept is replayed and must be refused, every token's counter must be past its accepted
//! codes, and every enrollment and change `pictl` saw acknowledged must be there; a change in
//! flight at the cut may be there or not, but nothing else.
//!
//! Without `PI_LAZYFS_SRC` these tests are compiled as ignored with a reason saying they did not
//! run (`tests/build.rs`). `PI_POWER_CUT_CYCLES` sets the number of power cuts of the long test.

use pi_tests::lazyfs::LazyFs;
use pi_tests::oath::hotp_range;
use pi_tests::pam::LoginBatch;
use pi_tests::{hotp, test_key, Daemon, DaemonOptions, Pam, PamRun};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Logins in flight at once, each of its own user with its own HOTP token.
const LOGINS_AT_ONCE: usize = 4;
/// Batches of logins per power cut; the power goes while the last is in flight.
const BATCHES: usize = 3;
/// Power cuts in one run of the clear-cache test unless `PI_POWER_CUT_CYCLES` says otherwise:
/// enough to cut at many points of the group commit and of checkpoints, bounded for CI.
const DEFAULT_CYCLES: u32 = 24;
/// At most this many tokens of the admin load are kept (it deletes the oldest), so that one
/// page of `token list` shows them all with the login tokens.
const MAX_MANAGED_TOKENS: usize = 8;
/// The daemon checkpoints its journal into the database every half second; after this much
/// quiet the current journal file stays the same until the next write.
const QUIET: Duration = Duration::from_millis(1200);

/// The users: `u<i>@pc` log in concurrently, `a<n>@pc` get the tokens the admin load enrolls;
/// a passwd-format file (`users`, written by `users_file`) holds them. Replays make the daemon
/// count failures; the lockout is far above what a run needs between two good logins.
const CONFIG: &str = "[resolvers.local]\ntype = \"passwd\"\n\
                      [resolvers.pc]\ntype = \"flatfile\"\nfile = \"{dir}/users\"\n\
                      [realms.default]\nresolvers = [\"local\"]\n\
                      [realms.pc]\nresolvers = [\"pc\"]\n\
                      [tokens]\nmaxfail = 1000\n";
/// Users the admin load enrolls for, in turn: more than it ever keeps tokens of at once.
const ADMIN_USERS: u32 = 64;

fn users_file() -> String {
    let logins = (0..LOGINS_AT_ONCE).map(|i| format!("u{i}"));
    let admins = (0..ADMIN_USERS).map(|n| format!("a{n}"));
    logins
        .chain(admins)
        .enumerate()
        .map(|(uid, name)| {
            format!(
                "{name}:x:{}:{}::/nonexistent:/bin/false\n",
                5000 + uid,
                5000 + uid
            )
        })
        .collect()
}

/// One HOTP token, its user and the next counter to log in with. Every token has a user of its
/// own: with several tokens per user, a code of one can happen to be in the look-ahead window
/// of another (one in 10^5 per token and login at six digits and a window of ten), which would
/// spend that token's codes behind the test's back.
struct Hotp {
    serial: String,
    user: String,
    key: String,
    next: u64,
}

impl Hotp {
    fn code(&self, counter: u64) -> String {
        hotp(&self.key, counter, 6)
    }
}

/// What `pictl token list` must show for a token of the admin load.
#[derive(Clone, Debug, PartialEq)]
struct Shown {
    description: String,
    active: bool,
}

/// A token the admin load created, with every state the store may now hold:
/// one after an acknowledged change, two (before and after) while a change was in flight at a
/// power cut. `None` is "not there".
struct Managed {
    token: Hotp,
    may_be: Vec<Option<Shown>>,
}

impl Managed {
    /// The one state it certainly has, if it is certainly there.
    fn known(&self) -> Option<&Shown> {
        match self.may_be.as_slice() {
            [Some(shown)] => Some(shown),
            _ => None,
        }
    }
}

/// One login per login token, all in flight at once; returns the batch with its answers sent,
/// and the counters they used.
fn start_batch(pam: &Pam, tokens: &mut [Hotp]) -> (LoginBatch, Vec<u64>) {
    let counters: Vec<u64> = tokens.iter().map(|t| t.next).collect();
    let codes: Vec<String> = tokens.iter().map(|t| t.code(t.next)).collect();
    for token in tokens.iter_mut() {
        token.next += 1;
    }
    let logins: Vec<(&str, &str)> = tokens
        .iter()
        .zip(&codes)
        .map(|(t, c)| (t.user.as_str(), c.as_str()))
        .collect();
    let mut batch = pam.start_logins(&logins);
    batch.answer();
    (batch, counters)
}

/// How the power goes.
#[derive(Clone, Debug)]
enum Cut {
    /// `kill -9`, then LazyFS drops every unsynced write.
    ClearCache,
    /// LazyFS tears the next write to the file in the journal directory that the next commit
    /// goes to and dies (`torn-op` with `parts` and `persist`, or `torn-seq` with `persist`);
    /// then `kill -9`.
    TornOp { parts: u32, persist: &'static str },
    /// `kill -9` and LazyFS drops every unsynced write; then, as the daemon starts again and
    /// fills a new `journal-free` with zeros (a run of writes with no sync between them),
    /// LazyFS writes only the `persist`ed ones of them and dies (`torn-seq`).
    TornSeqAtStart { persist: &'static str },
}

/// Sets the flag when dropped, also when a check panics: the admin load stops, and the test
/// ends instead of waiting for it.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[derive(Default, Debug)]
struct Figures {
    cuts: u32,
    logins_accepted: u64,
    logins_unanswered: u64,
    codes_replayed: u64,
    replays_accepted: u64,
    replays_left_out: u64,
    admin_acknowledged: u64,
    admin_in_flight: u64,
}

/// Fields drop in this order: the daemon, which keeps files open on the mount, before LazyFS.
struct World {
    daemon: Daemon,
    pam: Pam,
    fs: LazyFs,
    /// The tokens of the concurrent logins.
    logins: Vec<Hotp>,
    /// The admin load's tokens, by serial.
    managed: BTreeMap<String, Managed>,
    /// Every (login token, counter) answered Accept since the start.
    accepted: Vec<(usize, u64)>,
    figures: Figures,
    serials: u32,
}

impl World {
    fn new(name: &str) -> World {
        let fs = LazyFs::mount();
        // The store directly at the top of the mount (LazyFS's fault commands must name a
        // journal file in under 100 bytes), the key file beside it: a key lost to a power cut
        // after the first start would leave every token's sealed key undecryptable.
        let daemon = Daemon::start_with_storage(
            DaemonOptions {
                extra_toml: CONFIG.into(),
                files: vec![("users".into(), users_file())],
                ..Default::default()
            },
            &fs.mount_point(),
            &fs.mount_point().join("enckey"),
        );
        let logins = (0..LOGINS_AT_ONCE)
            .map(|i| {
                let key = test_key(&format!("{name}-{i}"), 20);
                let user = format!("u{i}@pc");
                let serial = daemon.enroll_hotp(&user, &key, None);
                Hotp {
                    serial,
                    user,
                    key,
                    next: 0,
                }
            })
            .collect();
        let pam = Pam::new(&daemon, "");
        World {
            fs,
            daemon,
            pam,
            logins,
            managed: BTreeMap::new(),
            accepted: Vec::new(),
            figures: Figures::default(),
            serials: 0,
        }
    }

    /// Note which logins were accepted; before the power goes, every one must be.
    fn record(&mut self, runs: &[PamRun], counters: &[u64], all_must_pass: bool) -> Vec<usize> {
        let mut accepted = Vec::new();
        for (i, run) in runs.iter().enumerate() {
            if run.accepted() {
                self.accepted.push((i, counters[i]));
                self.figures.logins_accepted += 1;
                accepted.push(i);
            } else if all_must_pass {
                run.assert_accepted("a fresh code while the daemon runs normally");
            } else {
                // In flight when the power went: spent or not, both are right.
                run.assert_refused("a login the daemon never answered");
                self.figures.logins_unanswered += 1;
            }
        }
        accepted
    }

    /// The file in the journal directory that the next commit writes to, as LazyFS names it:
    /// the newest `journal-<n>`, once no checkpoint is about to replace it.
    fn current_journal_file(&self) -> String {
        let dir = self.daemon.state_dir().join("db.journal");
        let newest = || {
            std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.strip_prefix("journal-"))
                        .is_some_and(|n| n.parse::<u64>().is_ok())
                })
                .max()
                .unwrap_or_else(|| panic!("no journal file in {}", dir.display()))
        };
        loop {
            std::thread::sleep(QUIET);
            let before = newest();
            std::thread::sleep(QUIET);
            if newest() == before {
                return self.fs.fault_path(&before);
            }
        }
    }

    /// One power cut with load around it, then the checks.
    fn power_cut(&mut self, cycle: u32, cut: &Cut) {
        let stop = AtomicBool::new(false);
        let mut accepted_now = Vec::new();
        let torn = matches!(cut, Cut::TornOp { .. });
        // Before the last batch: logins the daemon answers normally, spread over checkpoints.
        for batch_number in 0..BATCHES - 1 {
            let (batch, counters) = start_batch(&self.pam, &mut self.logins);
            let runs = batch.finish();
            for i in self.record(&runs, &counters, true) {
                accepted_now.push((i, counters[i]));
            }
            if batch_number == 0 && cycle.is_multiple_of(3) {
                std::thread::sleep(Duration::from_millis(600));
            }
        }
        if let Cut::TornOp { parts, persist } = cut {
            let file = self.current_journal_file();
            self.fs.arm(&format!(
                "lazyfs::torn-op::file={file}::parts={parts}::persist={persist}"
            ));
        }
        let serials = &mut self.serials;
        let managed = &mut self.managed;
        let daemon = &self.daemon;
        let fs = &mut self.fs;
        let (pam, logins) = (&self.pam, &mut self.logins);
        let pid = daemon.process_id();
        let (runs, counters, admin) = std::thread::scope(|s| {
            let _stop = StopOnDrop(&stop);
            let admin = s.spawn(|| admin_load(daemon, managed, serials, cycle, &stop));
            // Let the admin load start before the logins, so the cut finds both in flight.
            std::thread::sleep(Duration::from_millis(15));
            let (batch, counters) = start_batch(pam, logins);
            if torn {
                assert!(
                    fs.wait_for_crash(Duration::from_secs(15)),
                    "the armed fault ({cut:?}) never fired: the daemon wrote nothing to its \
                     journal file while logins were answered"
                );
            } else {
                // Somewhere in the group commit of these logins, or (every third cut) later,
                // in a checkpoint.
                let spread = if cycle % 3 == 1 { 600_000 } else { 4_000 };
                let delay = u64::from(cycle).wrapping_mul(7919) % spread;
                std::thread::sleep(Duration::from_micros(delay));
            }
            let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid fits i32"));
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)
                .expect("kill -9 the daemon");
            stop.store(true, Ordering::SeqCst);
            let runs = batch.finish();
            (runs, counters, admin.join().expect("admin load panicked"))
        });
        // Reap it.
        self.daemon.kill9();
        self.figures.admin_acknowledged += admin.0;
        self.figures.admin_in_flight += admin.1;
        for i in self.record(&runs, &counters, false) {
            accepted_now.push((i, counters[i]));
        }
        if torn {
            self.fs.remount();
        } else {
            self.fs.clear_cache();
        }
        self.figures.cuts += 1;
        if let Cut::TornSeqAtStart { persist } = cut {
            let free = self.daemon.state_dir().join("db.journal/journal-free");
            let command = format!(
                "lazyfs::torn-seq::op=write::file={}::persist={persist}",
                self.fs.fault_path(&free)
            );
            self.fs.arm(&command);
            // With its disk gone in the middle of the start, the daemon may refuse to start or
            // start with every write failing; either way it is killed and, on the disk as the
            // torn writes left it, started again.
            if self.daemon.try_restart().is_ok() {
                assert!(
                    self.fs.wait_for_crash(Duration::from_secs(15)),
                    "the armed fault ({command}) never fired: the daemon started without \
                     filling a new journal-free"
                );
                self.daemon.kill9();
            }
            assert!(
                self.fs.wait_for_crash(Duration::from_secs(15)),
                "the armed fault ({command}) never fired"
            );
            self.fs.remount();
        }
        self.daemon.restart();
        self.check(cycle, &accepted_now);
    }

    /// After a power cut: replays refused, counters past every accepted code, every
    /// acknowledged enrollment and change there, and the store usable.
    fn check(&mut self, cycle: u32, accepted_now: &[(usize, u64)]) {
        self.replay(accepted_now, cycle);
        let listed: BTreeMap<String, Value> = self
            .daemon
            .tokens(None)
            .into_iter()
            .map(|t| (t["serial"].as_str().unwrap_or_default().to_owned(), t))
            .collect();
        for (i, token) in self.logins.iter().enumerate() {
            let spent = self
                .accepted
                .iter()
                .filter(|(t, _)| *t == i)
                .map(|(_, c)| c + 1)
                .max()
                .unwrap_or(0);
            let count = listed
                .get(&token.serial)
                .unwrap_or_else(|| panic!("power cut {cycle}: token {} is gone", token.serial))
                ["count"]
                .as_u64()
                .unwrap_or(0);
            assert!(
                count >= spent,
                "power cut {cycle}: {} counts {count}, but code {} was accepted before the cut",
                token.serial,
                spent - 1
            );
        }
        let mut gone = Vec::new();
        for (serial, managed) in &mut self.managed {
            let now = listed.get(serial).map(|t| Shown {
                description: t["description"].as_str().unwrap_or_default().to_owned(),
                active: t["active"].as_bool().unwrap_or(false),
            });
            assert!(
                managed.may_be.contains(&now),
                "power cut {cycle}: token {serial} is {now:?}, but only {:?} was acknowledged \
                 or in flight",
                managed.may_be
            );
            match now {
                Some(shown) => managed.may_be = vec![Some(shown)],
                None => gone.push(serial.clone()),
            }
        }
        for serial in gone {
            self.managed.remove(&serial);
        }
        // The store works: each login token takes its next code, and each active token of the
        // admin load its next one (its key, sealed with the key file, decrypts after the cut).
        for (i, token) in self.logins.iter_mut().enumerate() {
            self.pam
                .login(&token.user, &token.code(token.next))
                .assert_accepted(&format!(
                    "power cut {cycle}: the next code of {}",
                    token.serial
                ));
            self.accepted.push((i, token.next));
            self.figures.logins_accepted += 1;
            token.next += 1;
        }
        let active: Vec<String> = self
            .managed
            .iter()
            .filter(|(_, m)| m.known().is_some_and(|s| s.active))
            .map(|(s, _)| s.clone())
            .collect();
        for serial in active {
            let managed = self.managed.get_mut(&serial).expect("listed above");
            let code = managed.token.code(managed.token.next);
            self.pam
                .login(&managed.token.user, &code)
                .assert_accepted(&format!(
                    "power cut {cycle}: token {serial}, enrolled by an acknowledged pictl"
                ));
            managed.token.next += 1;
        }
    }

    /// `codes` (login token, counter), each accepted before a power cut, must be refused now.
    /// Six digits repeat: a code from below the token's counter can have the digits of one the
    /// token accepts now (at its counter or in its look-ahead window), about once in 10^5
    /// replays. Such a code is no replay and is left out, counted. A code at or above the
    /// counter is always replayed: it is what a lost counter advance would make valid again.
    fn replay(&mut self, codes: &[(usize, u64)], cycle: u32) {
        let listed = self.daemon.tokens(None);
        let still_valid: Vec<(u64, HashSet<String>)> = self
            .logins
            .iter()
            .map(|token| {
                let t = listed
                    .iter()
                    .find(|t| t["serial"] == token.serial.as_str())
                    .unwrap_or_else(|| panic!("power cut {cycle}: {} is gone", token.serial));
                let count = t["count"].as_u64().unwrap_or(0);
                let window = t["count_window"].as_u64().unwrap_or(0);
                let digits = hotp_range(&token.key, count, window, 6)
                    .into_iter()
                    .collect();
                (count, digits)
            })
            .collect();
        for &(i, counter) in codes {
            let token = &self.logins[i];
            let code = token.code(counter);
            let (count, digits) = &still_valid[i];
            if counter < *count && digits.contains(&code) {
                self.figures.replays_left_out += 1;
                continue;
            }
            let run = self.pam.login(&token.user, &code);
            self.figures.codes_replayed += 1;
            if run.accepted() {
                self.figures.replays_accepted += 1;
            }
            run.assert_rejected(&format!(
                "power cut {cycle}: code {counter} of {} was accepted before the cut",
                token.serial
            ));
        }
    }
}

/// Enrollments, changes and deletions of tokens by `pictl`, one after the other until `stop`.
/// Returns (acknowledged, in flight or refused because the daemon was down).
fn admin_load(
    daemon: &Daemon,
    managed: &mut BTreeMap<String, Managed>,
    serials: &mut u32,
    cycle: u32,
    stop: &AtomicBool,
) -> (u64, u64) {
    let (mut acknowledged, mut unacknowledged) = (0, 0);
    let mut step = 0u32;
    while !stop.load(Ordering::SeqCst) {
        step += 1;
        let known: Vec<String> = managed
            .iter()
            .filter(|(_, m)| m.known().is_some())
            .map(|(s, _)| s.clone())
            .collect();
        let enroll = known.len() < MAX_MANAGED_TOKENS / 2
            || (step % 4 == 1 && known.len() < MAX_MANAGED_TOKENS);
        let delete = known.len() >= MAX_MANAGED_TOKENS || step % 4 == 3;
        let (serial, args, after): (String, Vec<String>, Option<Shown>) = if enroll {
            *serials += 1;
            let serial = format!("PWRCUT{:06}", *serials);
            let key = test_key(&serial, 20);
            // Users in turn: the oldest tokens are deleted long before their user comes again.
            let user = format!("a{}@pc", *serials % ADMIN_USERS);
            assert!(
                managed.values().all(|m| m.token.user != user),
                "{user} still has a token of the admin load: raise ADMIN_USERS"
            );
            let description = format!("enrolled at cut {cycle}");
            managed.insert(
                serial.clone(),
                Managed {
                    token: Hotp {
                        serial: serial.clone(),
                        user: user.clone(),
                        key: key.clone(),
                        next: 0,
                    },
                    may_be: vec![None],
                },
            );
            let args = [
                "token",
                "enroll",
                "hotp",
                "--user",
                &user,
                "--serial",
                &serial,
                "--otpkey",
                &key,
                "--description",
                &description,
                "--no-qr",
            ];
            let after = Shown {
                description: description.clone(),
                active: true,
            };
            (serial.clone(), args.map(String::from).to_vec(), Some(after))
        } else if delete {
            let serial = known[0].clone();
            let args = ["token", "delete", &serial].map(String::from).to_vec();
            (serial, args, None)
        } else {
            let serial = known[step as usize % known.len()].clone();
            let mut shown = managed[&serial].known().expect("known").clone();
            let args = if step.is_multiple_of(2) {
                shown.description = format!("changed at cut {cycle}, step {step}");
                vec!["token", "set", &serial, "--description", &shown.description]
                    .into_iter()
                    .map(String::from)
                    .collect()
            } else {
                shown.active = !shown.active;
                let verb = if shown.active { "enable" } else { "disable" };
                ["token", verb, &serial].map(String::from).to_vec()
            };
            (serial, args, Some(shown))
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = daemon.pictl(&args);
        let token = managed.get_mut(&serial).expect("tracked");
        if out.success() {
            acknowledged += 1;
            token.may_be = vec![after];
        } else {
            // The daemon died under it (or was already gone): either state is right.
            unacknowledged += 1;
            token.may_be.push(after);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (acknowledged, unacknowledged)
}

fn cycles() -> u32 {
    match std::env::var("PI_POWER_CUT_CYCLES") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("PI_POWER_CUT_CYCLES={v:?} is not a number of power cuts")),
        Err(_) => DEFAULT_CYCLES,
    }
}

/// The figures docs/security.md quotes.
fn report(name: &str, world: &mut World, started: Instant) {
    world.fs.assert_cache_not_full();
    // And once more at the end: every code ever accepted, all refused.
    let all = world.accepted.clone();
    world.replay(&all, world.figures.cuts);
    let f = &world.figures;
    println!(
        "{name}: {} power cuts, {} logins accepted, {} in flight at a cut, {} codes replayed, \
         {} of them accepted ({} left out: the digits of a code valid now), {} admin changes \
         acknowledged, {} in flight; {:.1} s",
        f.cuts,
        f.logins_accepted,
        f.logins_unanswered,
        f.codes_replayed,
        f.replays_accepted,
        f.replays_left_out,
        f.admin_acknowledged,
        f.admin_in_flight,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(f.replays_accepted, 0, "replayed codes were accepted");
    assert!(
        f.logins_accepted > 0 && f.admin_acknowledged > 0,
        "the load did nothing: {f:?}"
    );
}

#[test]
#[cfg_attr(
    not(pi_lazyfs),
    ignore = "power_cut: NOT RUN: PI_LAZYFS_SRC is unset (docs/testing.md, \"Power cuts\")"
)]
fn a_power_cut_brings_back_no_spent_code_and_loses_no_acknowledged_change() {
    let started = Instant::now();
    let mut world = World::new("power-cut");
    for cycle in 0..cycles() {
        world.power_cut(cycle, &Cut::ClearCache);
    }
    report("power_cut clear-cache", &mut world, started);
}

#[test]
#[cfg_attr(
    not(pi_lazyfs),
    ignore = "power_cut: NOT RUN: PI_LAZYFS_SRC is unset (docs/testing.md, \"Power cuts\")"
)]
fn a_power_cut_that_tears_a_journal_write_loses_nothing_acknowledged() {
    let started = Instant::now();
    let mut world = World::new("power-cut-torn");
    let cuts = [
        // Only the start of the record reaches the disk, or its start and end, or its end.
        Cut::TornOp {
            parts: 3,
            persist: "1",
        },
        Cut::TornOp {
            parts: 3,
            persist: "1,3",
        },
        Cut::TornOp {
            parts: 3,
            persist: "2,3",
        },
        Cut::TornOp {
            parts: 2,
            persist: "2",
        },
        // The zeros that make the recycled journal file fast reach the disk in part.
        Cut::TornSeqAtStart { persist: "1,3" },
        Cut::TornSeqAtStart { persist: "2" },
    ];
    for (cycle, cut) in cuts.iter().enumerate() {
        world.power_cut(u32::try_from(cycle).unwrap_or(0), cut);
    }
    report("power_cut torn writes", &mut world, started);
}
