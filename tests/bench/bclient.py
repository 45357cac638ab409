"""tests/bench/bclient.py - timestamping c2s client for the latency and throughput benchmark.
SPDX-License-Identifier: ISC

Run by tests/bench/run.sh: one instance as the receiving user inside site B's network
namespace, one as the sender inside site A's. Both stamp events with CLOCK_MONOTONIC
(time.monotonic_ns), which is one clock for the whole machine, so a receive stamp minus
a send stamp is the one-way delivery time. The XMPP login is tests/integ/xmppc.py's
Client (STARTTLS without verification, SASL PLAIN, bind, presence).

  recv JID PASS SERVER --out FILE [--ready FILE] --count N [--timeout S]
      log in, then write "RECV BODY NS" to FILE for each message with a body, until N.
  send JID PASS SERVER --to JID --ids A,B,... --sync FILE [--gap S] [--timeout S]
      for each id: write "SENT ID NS" to stdout, send <message> with body ID, wait until
      FILE has "RECV ID ", then stay idle for S seconds (so every sample starts on an idle
      link: no unacknowledged segment for Nagle to wait on).
  burst JID PASS SERVER --to JID --count N --prefix P --sync FILE [--timeout S]
      send N messages with bodies P0..P(N-1) in one write (pipelined), print
      "BURST_SENT NS", wait until FILE has N lines for prefix P. With --pad B each body is
      "P<k> " plus filler, so that each <message> the sender writes is B bytes long.
Exit 0 on success; 1 with "FAIL reason" otherwise (a bounce is reported with its condition).
"""

import argparse
import os
import sys
import time
from xml.sax.saxutils import escape, quoteattr

TOP = os.environ.get("QF_TOP") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integ"))
import xmppc  # noqa: E402  (the shared c2s client)


class Fail(Exception):
    pass


def check_bounce(c, wait):
    """Read the sender's own stream for up to `wait` s; fail on a message error."""
    el = c.next_stanza(time.time() + wait)
    if el is not None and xmppc.local(el.tag) == "message" and el.get("type") == "error":
        raise Fail("bounced: %s" % (xmppc.error_condition(el) or "?"))


class SyncFile:
    """Follows the receiver's output file."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.seen = {}
        self.partial = ""

    def poll(self):
        try:
            with open(self.path) as f:
                f.seek(self.pos)
                data = f.read()
                self.pos = f.tell()
        except FileNotFoundError:
            return
        data = self.partial + data
        lines = data.split("\n")
        self.partial = lines.pop()
        for ln in lines:
            p = ln.split()
            if len(p) == 3 and p[0] == "RECV":
                self.seen[p[1]] = int(p[2])


def wait_for(c, sync, pred, timeout, what):
    deadline = time.time() + timeout
    while True:
        sync.poll()
        if pred():
            return
        if time.time() > deadline:
            raise Fail("timed out after %gs waiting for %s" % (timeout, what))
        check_bounce(c, 0.002)


def message(to, body):
    return "<message type='chat' to=%s><body>%s</body></message>" % (quoteattr(to), escape(body))


def do_recv(c, a):
    n = 0
    deadline = time.time() + a.timeout
    with open(a.out, "a") as out:
        if a.ready:
            open(a.ready, "w").close()
        while n < a.count:
            el = c.next_stanza(deadline)
            t = time.monotonic_ns()
            if el is None:
                raise Fail("received %d of %d messages within %gs" % (n, a.count, a.timeout))
            if xmppc.local(el.tag) != "message":
                continue
            body = xmppc.body_of(el)
            if el.get("type") == "error" or body is None:
                continue
            out.write("RECV %s %d\n" % (body.split()[0] if body.split() else "-", t))
            out.flush()
            n += 1


def do_send(c, a):
    sync = SyncFile(a.sync)
    for n, i in enumerate([x for x in a.ids.split(",") if x]):
        if n > 0 and a.gap > 0:
            # Let the link go idle (delayed ACKs sent), as between real messages.
            end = time.time() + a.gap
            while time.time() < end:
                check_bounce(c, min(0.05, max(0.0, end - time.time())))
        t = time.monotonic_ns()
        c.xs.sock.sendall(message(a.to, i).encode())
        print("SENT %s %d" % (i, t), flush=True)
        wait_for(c, sync, lambda: i in sync.seen, a.timeout, "message %s at the receiver" % i)


def do_burst(c, a):
    sync = SyncFile(a.sync)
    def body(k):
        b = "%s%d" % (a.prefix, k)
        if a.pad > 0:
            b += " " + "x" * max(0, a.pad - len(message(a.to, b + " ")))
        return b
    data = "".join(message(a.to, body(k)) for k in range(a.count)).encode()
    t = time.monotonic_ns()
    c.xs.sock.sendall(data)
    print("BURST_SENT %d" % t, flush=True)
    wait_for(c, sync, lambda: sum(1 for k in sync.seen if k.startswith(a.prefix)) >= a.count,
             a.timeout, "%d burst messages at the receiver" % a.count)


def main():
    ap = argparse.ArgumentParser(description="quickfed benchmark c2s client")
    ap.add_argument("mode", choices=("recv", "send", "burst"))
    ap.add_argument("jid")
    ap.add_argument("password")
    ap.add_argument("server")
    ap.add_argument("--port", type=int, default=5222)
    ap.add_argument("--out")
    ap.add_argument("--ready")
    ap.add_argument("--sync")
    ap.add_argument("--to")
    ap.add_argument("--ids", default="")
    ap.add_argument("--prefix", default="burst")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--pad", type=int, default=0, help="burst: bytes per <message>")
    ap.add_argument("--gap", type=float, default=0.0, help="send: idle seconds between messages")
    ap.add_argument("--timeout", type=float, default=20.0)
    a = ap.parse_args()
    if a.mode == "recv" and not a.out:
        ap.error("recv needs --out")
    if a.mode != "recv" and not (a.sync and a.to):
        ap.error("%s needs --sync and --to" % a.mode)
    c = xmppc.Client(a.jid, a.password, a.server, a.port, None, 10.0)
    try:
        c.login()
        {"recv": do_recv, "send": do_send, "burst": do_burst}[a.mode](c, a)
    except (Fail, xmppc.StreamClosed, xmppc.StreamError, OSError) as e:
        print("FAIL %s %s: %s" % (a.mode, a.jid, e), flush=True)
        return 1
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
