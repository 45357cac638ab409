"""tests/bench/muxclient.py - one c2s user of the multiplexing benchmark (tests/bench/mux.sh).
SPDX-License-Identifier: ISC

mux.sh runs one instance per user: u@<domain> for each of the three domains of site A
(inside A's namespace) and of site B (inside B's). Each logs in with tests/integ/xmppc.py's
Client (STARTTLS, SASL PLAIN, bind, presence), then creates the --ready file. For the
new-pair measurement after the exchange it runs two more: u@new.a.example with --count 0
and one --send-to (sends once and leaves), and u@b.example again with --count 1.

  JID PASS SERVER --out FILE --ready FILE --count N [--send-to J1,J2,... --go FILE]
                  [--echo] [--timeout S]
      --send-to: once FILE --go exists, send one <message> to each JID, appending
          "SENT FROM_DOMAIN TO_DOMAIN NS" to --out before each write.
      Then read until N messages have arrived, appending "RECV FROM_DOMAIN TO_DOMAIN NS"
      for each (NS is CLOCK_MONOTONIC, one clock for both namespaces); --echo answers
      each one with a message back to its sender (the other direction of the pair).
Exit 0 when N messages arrived within --timeout; 1 with "FAIL reason" otherwise (a
bounced message is reported with its error condition).
"""

import argparse
import os
import sys
import time

TOP = os.environ.get("QF_TOP") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integ"))
import xmppc  # noqa: E402  (the shared c2s client)


class Fail(Exception):
    pass


def record(out, line):
    # One short write per line on an O_APPEND file: lines of all users do not interleave.
    os.write(out, (line + "\n").encode())


def main():
    ap = argparse.ArgumentParser(description="quickfed multiplexing benchmark c2s user")
    ap.add_argument("jid")
    ap.add_argument("password")
    ap.add_argument("server")
    ap.add_argument("--port", type=int, default=5222)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--send-to", default="")
    ap.add_argument("--go")
    ap.add_argument("--echo", action="store_true")
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()
    me = xmppc.domain_of(a.jid)
    out = os.open(a.out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    c = xmppc.Client(a.jid, a.password, a.server, a.port, None, 10.0)
    try:
        c.login()
        open(a.ready, "w").close()
        deadline = time.time() + a.timeout
        peers = [j for j in a.send_to.split(",") if j]
        if peers:
            while not os.path.exists(a.go):
                if time.time() > deadline:
                    raise Fail("no go file within %gs" % a.timeout)
                time.sleep(0.002)
            for j in peers:
                record(out, "SENT %s %s %d" % (me, xmppc.domain_of(j), time.monotonic_ns()))
                c.send_message(j, "mux %s" % me)
        n = 0
        while n < a.count:
            el = c.next_stanza(deadline)
            t = time.monotonic_ns()
            if el is None:
                raise Fail("received %d of %d messages within %gs" % (n, a.count, a.timeout))
            if xmppc.local(el.tag) != "message":
                continue
            if el.get("type") == "error":
                raise Fail("bounced from %s: %s" % (el.get("from"), xmppc.error_condition(el) or "?"))
            if xmppc.body_of(el) is None:
                continue
            frm = el.get("from") or ""
            record(out, "RECV %s %s %d" % (xmppc.domain_of(frm), me, t))
            n += 1
            if a.echo:
                c.send_message(xmppc.bare(frm), "echo %s" % me)
    except (Fail, xmppc.StreamClosed, xmppc.StreamError, OSError) as e:
        print("FAIL %s: %s" % (a.jid, e), flush=True)
        return 1
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
