use super::*;
use crate::upstream::offline::test_values;

const NOW: i64 = 1_800_000_000;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    cipher: Cipher,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), 8).unwrap();
    Fixture {
        _dir: dir,
        store,
        cipher: Cipher::from_key(&[7u8; 32]),
    }
}

impl Fixture {
    fn cache(&self) -> Cache<'_> {
        Cache {
            store: &self.store,
            cipher: &self.cipher,
            upstream: "corp",
        }
    }
}

fn alice() -> Owner {
    Owner {
        realm: "corp".into(),
        login: "alice".into(),
    }
}

/// A hand-out of `serial` for counters `counters`, each value "pin" + counter.
fn handout(serial: &str, counters: std::ops::Range<u64>, max_fail: Option<u32>) -> OfflineItem {
    OfflineItem {
        serial: serial.into(),
        username: Some("alice".into()),
        max_fail,
        refill_token: Zeroizing::new("a".repeat(80)),
        values: test_values(counters, |c| format!("pin{c}")),
    }
}

#[test]
fn a_handed_out_value_logs_in_once_and_spends_everything_below_it() {
    let f = fixture();
    let cache = f.cache();
    cache
        .keep(&alice(), &handout("H1", 1..6, None), 10, NOW)
        .unwrap();
    assert_eq!(
        cache.try_typed(&alice(), "pin3", NOW, None).unwrap(),
        Attempt::Accepted {
            serial: "H1".into(),
            counter: 3
        }
    );
    let rec = &f.store.offline_records(Some(&alice())).unwrap()[0].rec;
    assert_eq!(
        (rec.count, rec.first_counter, rec.last_counter),
        (2, Some(4), Some(5))
    );
    assert!(rec.refill_due);
    assert_eq!(
        cache.try_typed(&alice(), "pin3", NOW, None).unwrap(),
        Attempt::NoMatch,
        "replay"
    );
    assert_eq!(
        cache.try_typed(&alice(), "pin2", NOW, None).unwrap(),
        Attempt::NoMatch,
        "below"
    );
    assert_eq!(
        cache.try_typed(&alice(), "pin9", NOW, None).unwrap(),
        Attempt::NoMatch
    );
    let other = Owner {
        realm: "corp".into(),
        login: "bob".into(),
    };
    assert_eq!(
        cache.try_typed(&other, "pin4", NOW, None).unwrap(),
        Attempt::NoValues
    );
}

#[test]
fn the_cache_is_sealed_and_holds_no_value_or_refill_token_in_the_clear() {
    let f = fixture();
    let item = handout("H1", 1..3, None);
    f.cache().keep(&alice(), &item, 10, NOW).unwrap();
    let rec = &f.store.offline_records(Some(&alice())).unwrap()[0].rec;
    let sealed = String::from_utf8_lossy(&rec.sealed);
    assert!(
        !sealed.contains("aaaaaaaa") && !sealed.contains("pbkdf2"),
        "{sealed}"
    );
    // Another key, or the record moved to another serial, does not open.
    let other_key = Cache {
        cipher: &Cipher::from_key(&[8u8; 32]),
        ..f.cache()
    };
    assert!(other_key.try_typed(&alice(), "pin1", NOW, None).is_err());
}

#[test]
fn wrong_codes_lock_offline_logins_until_an_online_login_forgives_them() {
    let f = fixture();
    let cache = f.cache();
    cache
        .keep(&alice(), &handout("H1", 1..6, Some(3)), 10, NOW)
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            cache.try_typed(&alice(), "wrong", NOW, None).unwrap(),
            Attempt::NoMatch
        );
        cache.charge_failure(&alice()).unwrap();
    }
    assert_eq!(
        cache.try_typed(&alice(), "pin1", NOW, None).unwrap(),
        Attempt::Unusable { locked: true },
        "the server's maxfail of 3 holds, even for the right code"
    );
    cache.forgive(&alice()).unwrap();
    assert!(matches!(
        cache.try_typed(&alice(), "pin1", NOW, None).unwrap(),
        Attempt::Accepted { counter: 1, .. }
    ));
}

#[test]
fn values_older_than_the_maximum_age_wait_for_the_server() {
    let f = fixture();
    let cache = f.cache();
    cache
        .keep(&alice(), &handout("H1", 1..3, None), 10, NOW)
        .unwrap();
    let day = 86_400;
    assert_eq!(
        cache
            .try_typed(&alice(), "pin1", NOW + 2 * day, Some(day))
            .unwrap(),
        Attempt::Unusable { locked: false }
    );
    assert!(matches!(
        cache
            .try_typed(&alice(), "pin1", NOW + day, Some(day))
            .unwrap(),
        Attempt::Accepted { .. }
    ));
}

#[test]
fn a_refill_adds_values_replaces_the_refill_token_and_wipes_the_kept_pass() {
    let f = fixture();
    let cache = f.cache();
    cache
        .keep(&alice(), &handout("H1", 1..4, None), 10, NOW)
        .unwrap();
    assert!(cache.due(None).unwrap().is_empty(), "nothing used yet");
    cache.try_typed(&alice(), "pin2", NOW, None).unwrap();
    let due = cache.due(None).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].serial.as_str(), due[0].pass.as_str()),
        ("H1", "pin2")
    );
    assert_eq!(due[0].refill_token.as_str(), "a".repeat(80));
    let mut refill = handout("H1", 4..6, None);
    refill.refill_token = Zeroizing::new("b".repeat(80));
    cache.refilled(&alice(), refill, NOW + 60).unwrap();
    let rec = &f.store.offline_records(Some(&alice())).unwrap()[0].rec;
    assert_eq!(
        (rec.count, rec.first_counter, rec.last_counter),
        (3, Some(3), Some(5))
    );
    assert_eq!(rec.refilled_at, Some(NOW + 60));
    assert!(!rec.refill_due);
    assert!(cache.due(None).unwrap().is_empty());
    assert!(matches!(
        cache.try_typed(&alice(), "pin5", NOW, None).unwrap(),
        Attempt::Accepted { counter: 5, .. }
    ));
    assert_eq!(
        cache.due(None).unwrap()[0].refill_token.as_str(),
        "b".repeat(80)
    );
    cache.refill_refused(&alice(), "H1").unwrap();
    assert!(cache.due(None).unwrap().is_empty());
}

#[test]
fn a_new_hand_out_replaces_the_tokens_old_values() {
    let f = fixture();
    let cache = f.cache();
    cache
        .keep(&alice(), &handout("H1", 1..6, None), 10, NOW)
        .unwrap();
    cache
        .keep(&alice(), &handout("H1", 10..12, None), 10, NOW)
        .unwrap();
    assert_eq!(
        cache.try_typed(&alice(), "pin2", NOW, None).unwrap(),
        Attempt::NoMatch
    );
    assert!(matches!(
        cache.try_typed(&alice(), "pin10", NOW, None).unwrap(),
        Attempt::Accepted { counter: 10, .. }
    ));
}
