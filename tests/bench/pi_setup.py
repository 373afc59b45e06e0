"""privacyIDEA-side helper for tests/bench/privacyidea.sh.

Runs with the python of the virtualenv tests/privacyidea-venv.sh makes, with
PRIVACYIDEA_CONFIGFILE set. Subcommands:

  populate --users N --type totp|hotp [--pin] --userfile PATH
      resolver `benchusers`, default realm `bench`, one token per user, through privacyIDEA's
      own library code (the same functions the REST handlers call).
  reset --type totp|hotp --index I...
      re-enrol the tokens of users I... with their original parameters (PIN kept),
      undoing the counter / timeShift change made by setup's verification logins.
  otp --type totp|hotp --index I [--counter C]
      print the current OTP of user I (HOTP: for counter C, default 0).
  verify --url URL --type totp|hotp --index I... [--pin]
      one real POST /validate/check per user I...; exit 1 unless every one is ACCEPT.

The user/key/serial scheme below is a contract with the Rust benchmark `pibench`; change both
together or not at all.
"""

import argparse
import hashlib
import hmac
import json
import struct
import sys
import time
import urllib.parse
import urllib.request

REALM = "bench"
RESOLVER = "benchusers"
PIN = "1234"
UID_BASE = 200000


def login(i: int) -> str:
    return "pibench-u%07d" % i


def serial(i: int) -> str:
    return "PB%07d" % i


def key(i: int) -> bytes:
    return hashlib.sha256(("pibench-key-%d" % i).encode("ascii")).digest()[:20]


def hotp(k: bytes, counter: int, digits: int = 6) -> str:
    mac = hmac.new(k, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF
    return str(code % 10 ** digits).zfill(digits)


def current_otp(token_type: str, i: int, counter: int = 0) -> str:
    if token_type == "totp":
        return hotp(key(i), int(time.time()) // 30)
    return hotp(key(i), counter)


def token_params(token_type: str, i: int) -> dict:
    params = {
        "type": token_type,
        "serial": serial(i),
        "otpkey": key(i).hex(),
        "otplen": 6,
        "hashlib": "sha1",
    }
    if token_type == "totp":
        # timeShift is given explicitly so that re-enrolling (reset) also clears the drift
        # a successful login recorded; a fresh enrolment writes the same 0.0.
        params.update({"timeStep": 30, "timeShift": 0.0})
    return params


def make_app(quiet_metrics: bool = False):
    from privacyidea.app import create_app

    app = create_app(config_name="production", silent=True)
    if quiet_metrics:
        # Outside a request privacyIDEA writes every resolver-timing metric in its own
        # transaction on a second connection; inside our batched transaction that second
        # connection would wait for our write lock forever. The server keeps its metrics.
        app.config["PI_NO_INTERNAL_METRICS"] = True
    return app


class BatchedCommits:
    """Turn privacyIDEA's per-step commits (about a dozen per enrolled token) into flushes and
    commit once per batch. The SQL written is the same; only the transaction boundaries differ,
    which makes enrolment about 2.5x faster on sqlite. Any error aborts the whole setup."""

    def __init__(self, db):
        self.session = db.session()
        self.real_commit = self.session.commit

    def __enter__(self):
        self.session.commit = self.session.flush
        return self

    def commit(self):
        self.real_commit()

    def __exit__(self, exc_type, exc, tb):
        del self.session.commit
        if exc_type is None:
            self.real_commit()
        else:
            self.session.rollback()
        return False


def cmd_populate(args) -> int:
    n = args.users
    with open(args.userfile, "w", encoding="ascii") as f:
        for i in range(n):
            f.write("%s:x:%d:%d:Bench User %d,,,:/nonexistent:/usr/sbin/nologin\n"
                    % (login(i), UID_BASE + i, UID_BASE + i, i))

    app = make_app(quiet_metrics=True)
    with app.app_context():
        from privacyidea.lib.realm import get_default_realm, set_default_realm, set_realm
        from privacyidea.lib.resolver import save_resolver
        from privacyidea.lib.token import get_tokens, init_token
        from privacyidea.lib.user import User
        from privacyidea.models import db

        save_resolver({"resolver": RESOLVER, "type": "passwdresolver", "fileName": args.userfile})
        _added, failed = set_realm(REALM, [{"name": RESOLVER}])
        if failed:
            print("realm %s: could not add resolver(s) %s; see the privacyIDEA log" % (REALM, failed),
                  file=sys.stderr)
            return 1
        set_default_realm(REALM)

        # With a PIN, hashing it costs ~0.4 s per token at privacyIDEA's default argon2 parameters.
        # Token 0 gets its PIN through init_token (privacyIDEA hashes it); every other token
        # receives a copy of that hash and seed, exactly what privacyIDEA's copy_token_pin does.
        # Verifying still costs one full argon2 run per login, so the benchmark is unaffected.
        pin_hash = None
        t0 = time.monotonic()
        with BatchedCommits(db) as batch:
            for i in range(n):
                params = token_params(args.type, i)
                if args.pin and pin_hash is None:
                    params["pin"] = PIN
                tok = init_token(params, user=User(login(i), REALM))
                if args.pin:
                    if pin_hash is None:
                        pin_hash = tok.get_pin_hash_seed()
                    else:
                        tok.set_pin_hash_seed(*pin_hash)
                        tok.save()
                if (i + 1) % 1000 == 0 or i + 1 == n:
                    batch.commit()
                    dt = time.monotonic() - t0
                    print("  enrolled %d/%d tokens (%.0f s, %.0f tokens/s)" % (i + 1, n, dt, (i + 1) / dt),
                          flush=True)

        # Sanity, read back through privacyIDEA: N tokens of the type, the last one owned by the
        # last user, default realm set.
        total = get_tokens(tokentype=args.type, count=True)
        owned = get_tokens(user=User(login(n - 1), REALM))
        if (total != n or len(owned) != 1 or owned[0].token.serial != serial(n - 1)
                or get_default_realm() != REALM):
            print("read-back failed: %s %s tokens (want %d), %s owns %s, default realm %s; setup is broken"
                  % (total, args.type, n, login(n - 1), [t.token.serial for t in owned], get_default_realm()),
                  file=sys.stderr)
            return 1
        # WAL lets the gunicorn workers read while one writes (sqlite otherwise locks the whole
        # file per write); the mode is stored in the database file.
        with db.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode=WAL").scalar()
        print("  sqlite journal_mode=%s" % mode)
    return 0


def cmd_reset(args) -> int:
    app = make_app(quiet_metrics=True)
    with app.app_context():
        from privacyidea.lib.token import init_token
        from privacyidea.lib.user import User

        for i in args.index:
            # init_token on an existing serial is privacyIDEA's update path: set_otpkey resets the
            # counter and the fail counter, update() rewrites the TOTP timeShift we pass, and the
            # PIN is left alone because the parameters carry none.
            tok = init_token(token_params(args.type, i), user=User(login(i), REALM))
            for info in ("count_auth", "count_auth_success", "last_auth"):
                tok.remove_tokeninfo(info)
            tok.save()
            if tok.token.count != 0 or tok.token.failcount != 0:
                print("token %s still has count=%d failcount=%d after reset" % (serial(i), tok.token.count,
                                                                               tok.token.failcount),
                      file=sys.stderr)
                return 1
    return 0


def cmd_otp(args) -> int:
    print(current_otp(args.type, args.index, args.counter))
    return 0


def cmd_verify(args) -> int:
    for i in args.index:
        if args.type == "totp" and 30 - time.time() % 30 < 1:
            time.sleep(1.5)  # keep OTP computation and server check in the same 30 s step
        password = (PIN if args.pin else "") + current_otp(args.type, i, 0)
        body = urllib.parse.urlencode({"user": login(i), "pass": password}).encode()
        req = urllib.request.Request(args.url.rstrip("/") + "/validate/check", data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                answer = json.load(resp)
        except urllib.error.HTTPError as e:
            answer = json.load(e)
        result = answer.get("result", {})
        print("  /validate/check %s -> %s (%s)" % (login(i), result.get("authentication"),
                                                    (answer.get("detail") or {}).get("message")))
        if result.get("authentication") != "ACCEPT":
            print("VERIFICATION FAILED: privacyIDEA did not accept the OTP of %s. Full answer:\n%s\n"
                  "Check the server log in the work dir and the clock."
                  % (login(i), json.dumps(answer, indent=1)), file=sys.stderr)
            return 1
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("populate")
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--type", choices=["totp", "hotp"], required=True)
    p.add_argument("--pin", action="store_true")
    p.add_argument("--userfile", required=True)
    p.set_defaults(fn=cmd_populate)
    p = sub.add_parser("reset")
    p.add_argument("--type", choices=["totp", "hotp"], required=True)
    p.add_argument("--index", type=int, nargs="+", required=True)
    p.set_defaults(fn=cmd_reset)
    p = sub.add_parser("otp")
    p.add_argument("--type", choices=["totp", "hotp"], required=True)
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--counter", type=int, default=0)
    p.set_defaults(fn=cmd_otp)
    p = sub.add_parser("verify")
    p.add_argument("--url", required=True)
    p.add_argument("--type", choices=["totp", "hotp"], required=True)
    p.add_argument("--index", type=int, nargs="+", required=True)
    p.add_argument("--pin", action="store_true")
    p.set_defaults(fn=cmd_verify)
    args = ap.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
