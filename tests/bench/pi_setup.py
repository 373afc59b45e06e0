"""privacyIDEA-side helper for tests/bench/privacyidea.sh.

Runs with the bench virtualenv's python and PRIVACYIDEA_CONFIGFILE set. Subcommands:

  populate --users N --type totp|hotp [--pin] --userfile PATH
      resolver `benchusers`, default realm `bench`, one token per user, through privacyIDEA's
      own library code (the same functions the REST handlers call).
  reset-user0 --type totp|hotp [--pin]
      re-enrol user 0's token with its original parameters, undoing the counter / timeShift
      change made by setup's verification login.
  otp --type totp|hotp --index I [--counter C]
      print the current OTP of user I (HOTP: for counter C, default 0).
  verify --url URL --type totp|hotp [--pin]
      one real POST /validate/check for user 0; exit 1 unless ACCEPT.

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
        # timeShift is given explicitly so that re-enrolling (reset-user0) also clears the drift
        # a successful login recorded; a fresh enrolment writes the same 0.0.
        params.update({"timeStep": 30, "timeShift": 0.0})
    return params


def make_app():
    from privacyidea.app import create_app

    return create_app(config_name="production", silent=True)


def cmd_populate(args) -> int:
    n = args.users
    with open(args.userfile, "w", encoding="ascii") as f:
        for i in range(n):
            f.write("%s:x:%d:%d:Bench User %d,,,:/nonexistent:/usr/sbin/nologin\n"
                    % (login(i), UID_BASE + i, UID_BASE + i, i))

    app = make_app()
    with app.app_context():
        from privacyidea.lib.realm import set_default_realm, set_realm
        from privacyidea.lib.resolver import save_resolver
        from privacyidea.lib.token import get_one_token, init_token
        from privacyidea.lib.user import User
        from privacyidea.models import db

        save_resolver({"resolver": RESOLVER, "type": "passwdresolver", "fileName": args.userfile})
        added, failed = set_realm(REALM, [{"name": RESOLVER}])
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
                dt = time.monotonic() - t0
                print("  enrolled %d/%d tokens (%.0f s, %.0f tokens/s)" % (i + 1, n, dt, (i + 1) / dt),
                      flush=True)

        # Sanity: the last token is owned by the last user and of the requested type.
        last = get_one_token(serial=serial(n - 1))
        if last.type != args.type or last.user is None or last.user.login != login(n - 1):
            print("token %s is not a %s token of %s; setup is broken" % (serial(n - 1), args.type,
                                                                         login(n - 1)), file=sys.stderr)
            return 1
        # WAL lets the two gunicorn workers read while one writes (sqlite otherwise locks the
        # whole file per write); the mode is stored in the database file.
        with db.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode=WAL").scalar()
        print("  sqlite journal_mode=%s" % mode)
    return 0


def cmd_reset_user0(args) -> int:
    app = make_app()
    with app.app_context():
        from privacyidea.lib.token import get_one_token, init_token
        from privacyidea.lib.user import User

        tok = get_one_token(serial=serial(0))
        saved_pin = tok.get_pin_hash_seed()
        # init_token on an existing serial is privacyIDEA's update path: set_otpkey resets the
        # counter and the fail counter, update() rewrites the TOTP timeShift we pass.
        tok = init_token(token_params(args.type, 0), user=User(login(0), REALM))
        if args.pin:
            tok.set_pin_hash_seed(*saved_pin)
        tok.save()
        if tok.token.count != 0 or tok.token.failcount != 0:
            print("token %s still has count=%d failcount=%d after reset" % (serial(0), tok.token.count,
                                                                           tok.token.failcount),
                  file=sys.stderr)
            return 1
    return 0


def cmd_otp(args) -> int:
    print(current_otp(args.type, args.index, args.counter))
    return 0


def cmd_verify(args) -> int:
    if args.type == "totp":
        # Do not straddle a step boundary between computing the OTP and the server checking it
        # (the window would absorb it, but then the reset would have to undo a future step).
        if 30 - time.time() % 30 < 2:
            time.sleep(2.5)
    otp = current_otp(args.type, 0, 0)
    password = (PIN if args.pin else "") + otp
    body = urllib.parse.urlencode({"user": login(0), "pass": password}).encode()
    req = urllib.request.Request(args.url.rstrip("/") + "/validate/check", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            answer = json.load(resp)
    except urllib.error.HTTPError as e:
        answer = json.load(e)
    result = answer.get("result", {})
    print("  /validate/check %s -> %s (%s)" % (login(0), result.get("authentication"),
                                                (answer.get("detail") or {}).get("message")))
    if result.get("authentication") != "ACCEPT":
        print("VERIFICATION FAILED: privacyIDEA did not accept user 0's OTP. Full answer:\n%s\n"
              "Check the server log in the work dir and the clock." % json.dumps(answer, indent=1),
              file=sys.stderr)
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
    p = sub.add_parser("reset-user0")
    p.add_argument("--type", choices=["totp", "hotp"], required=True)
    p.add_argument("--pin", action="store_true")
    p.set_defaults(fn=cmd_reset_user0)
    p = sub.add_parser("otp")
    p.add_argument("--type", choices=["totp", "hotp"], required=True)
    p.add_argument("--index", type=int, required=True)
    p.add_argument("--counter", type=int, default=0)
    p.set_defaults(fn=cmd_otp)
    p = sub.add_parser("verify")
    p.add_argument("--url", required=True)
    p.add_argument("--type", choices=["totp", "hotp"], required=True)
    p.add_argument("--pin", action="store_true")
    p.set_defaults(fn=cmd_verify)
    args = ap.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
