"""tests/integ/flood.py - open many idle TCP connections from several loopback sources.
SPDX-License-Identifier: ISC

Used by tests/integ/19-conn-limits.sh inside the test's private network namespace.

flood mode (default): from each --sources address in turn, open --per-source TCP
connections to --host:--port and send nothing. Then watch them: a connection closed
without a byte was refused at accept; one that got a stream error whose text has
"shed under load" was shed. Once nothing has changed for --settle seconds, write a
report (name=value lines) to --report and create --ready, hold the survivors until
--release exists or --hold seconds are over, close everything and print the report.
Bounded: at most 1000 connections, --hold at most 120 s; the target must be a loopback
address and the process must run in a named network namespace (ip netns exec).

probe mode (--probe): connect to --host:--port, send an s2s stream header (--from,
--to) and exit 0 once the peer's <stream:stream header arrives within --timeout.
"""

import argparse
import errno
import ipaddress
import os
import select
import socket
import sys
import time

MAX_CONNS = 1000
MAX_HOLD = 120.0


def in_private_netns():
    """True when we run in a named network namespace (ip netns add NAME), as lib.sh's
    tests do, and not in the initial one: same check as `ip netns identify`."""
    try:
        me = os.stat("/proc/self/ns/net")
        for name in os.listdir("/run/netns"):
            st = os.stat(os.path.join("/run/netns", name))
            if (st.st_dev, st.st_ino) == (me.st_dev, me.st_ino):
                return True
    except OSError:
        pass
    return False


def check_target(host):
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit("flood.py: refusing to target %s: only loopback addresses" % host)
    if not in_private_netns():
        sys.exit("flood.py: refusing to run outside a named network namespace")


class Conn:
    def __init__(self, sock, source):
        self.sock = sock
        self.source = source
        self.data = b""
        self.closed = False


def open_all(a):
    conns, failed = [], 0
    for src in a.sources.split(","):
        for _ in range(a.per_source):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\0" * 8)
            s.settimeout(a.connect_timeout)
            try:
                s.bind((src, 0))
                s.connect((a.host, a.port))
            except OSError as e:
                print("connect from %s failed: %s" % (src, e), flush=True)
                s.close()
                failed += 1
                continue
            s.setblocking(False)
            conns.append(Conn(s, src))
            if a.interval > 0:
                time.sleep(a.interval)
    return conns, failed


def poll(conns, timeout):
    """Read what arrived; returns True if any connection changed."""
    live = [c for c in conns if not c.closed]
    if not live:
        return False
    r, _, _ = select.select([c.sock for c in live], [], [], timeout)
    changed = False
    by_sock = {c.sock: c for c in live}
    for s in r:
        c = by_sock[s]
        try:
            d = s.recv(65536)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                continue
            d = b""
        if d:
            c.data += d
        else:
            c.closed = True
        changed = True
    return changed


def report(conns, failed, elapsed):
    refused = sum(1 for c in conns if c.closed and not c.data)
    shed = sum(1 for c in conns if b"shed under load" in c.data)
    other_closed = sum(1 for c in conns if c.closed and c.data and b"shed under load" not in c.data)
    alive = sum(1 for c in conns if not c.closed)
    lines = ["opened=%d" % len(conns), "connect_failed=%d" % failed, "refused=%d" % refused,
             "shed=%d" % shed, "closed_other=%d" % other_closed, "alive=%d" % alive,
             "seconds=%.1f" % elapsed]
    for src in sorted({c.source for c in conns}):
        lines.append("source.%s.alive=%d" % (src, sum(1 for c in conns
                                                      if c.source == src and not c.closed)))
    return "\n".join(lines) + "\n"


def flood(a):
    if a.per_source * len(a.sources.split(",")) > MAX_CONNS:
        sys.exit("flood.py: at most %d connections" % MAX_CONNS)
    hold = min(a.hold, MAX_HOLD)
    t0 = time.time()
    conns, failed = open_all(a)
    print("opened %d connection(s), %d failed, in %.2fs" % (len(conns), failed, time.time() - t0),
          flush=True)
    quiet_since = time.time()
    end = t0 + hold
    while time.time() < end and time.time() - quiet_since < a.settle:
        if poll(conns, 0.1):
            quiet_since = time.time()
    text = report(conns, failed, time.time() - t0)
    if a.report:
        with open(a.report + ".tmp", "w") as f:
            f.write(text)
        os.rename(a.report + ".tmp", a.report)
    if a.ready:
        open(a.ready, "w").close()
    print(text, end="", flush=True)
    while time.time() < end and not (a.release and os.path.exists(a.release)):
        poll(conns, 0.1)
    text = report(conns, failed, time.time() - t0)
    print("final:\n" + text, end="", flush=True)
    for c in conns:
        c.sock.close()
    return 0


def probe(a):
    try:
        s = socket.create_connection((a.host, a.port), timeout=a.timeout)
    except OSError as e:
        print("FAIL probe %s:%d: %s" % (a.host, a.port, e), flush=True)
        return 1
    s.sendall(("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
               "xmlns:stream='http://etherx.jabber.org/streams' "
               "xmlns:db='jabber:server:dialback' from='%s' to='%s' version='1.0'>"
               % (a.from_domain, a.to_domain)).encode())
    got, deadline = b"", time.time() + a.timeout
    while b"<stream:stream" not in got and time.time() < deadline:
        s.settimeout(max(0.05, deadline - time.time()))
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        got += d
    s.close()
    print("probe %s:%d got: %s" % (a.host, a.port, got.decode("utf-8", "replace")), flush=True)
    return 0 if b"<stream:stream" in got else 1


def main():
    ap = argparse.ArgumentParser(description="idle TCP connection flood / stream probe")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sources", default="127.0.9.1", help="comma-separated source addresses")
    ap.add_argument("--per-source", type=int, default=10)
    ap.add_argument("--interval", type=float, default=0.0, help="seconds between connects")
    ap.add_argument("--connect-timeout", type=float, default=3.0)
    ap.add_argument("--settle", type=float, default=1.0,
                    help="report once nothing changed for this long")
    ap.add_argument("--hold", type=float, default=30.0, help="give up holding after (<= 120)")
    ap.add_argument("--report")
    ap.add_argument("--ready")
    ap.add_argument("--release")
    ap.add_argument("--probe", action="store_true")
    ap.add_argument("--from", dest="from_domain", default="a.example")
    ap.add_argument("--to", dest="to_domain", default="probe.example")
    ap.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args()
    check_target(a.host)
    return probe(a) if a.probe else flood(a)


if __name__ == "__main__":
    sys.exit(main())
