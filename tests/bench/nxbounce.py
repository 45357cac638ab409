"""tests/bench/nxbounce.py - write to N domains that do not exist and count their bounces.
SPDX-License-Identifier: ISC

Run by tests/bench/memory.sh (scenario m3) in the bench's namespace: logs in as a c2s
user of the local Prosody (tests/integ/xmppc.py's Client), sends one message to
x@nx<i>.example for each i in FIRST..FIRST+N-1, then reads until every one of those
domains has bounced a remote-server-not-found error. Exit 0 when all did ("BOUNCED n/N
in T s"), 1 on a timeout or another error condition ("FAIL ...").
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
from xmppc import (Client, StreamClosed, StreamError, domain_of,  # noqa: E402
                   error_condition, local)


def main():
    ap = argparse.ArgumentParser(description="count bounces from nonexistent domains")
    ap.add_argument("jid")
    ap.add_argument("password")
    ap.add_argument("server", help="IP address of the c2s server")
    ap.add_argument("--count", type=int, required=True, metavar="N")
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--log", help="append the XML conversation to this file")
    a = ap.parse_args()
    want = {"nx%d.example" % i for i in range(a.first, a.first + a.count)}
    logf = open(a.log, "a") if a.log else None
    c = Client(a.jid, a.password, a.server, 5222, logf, 15.0)
    try:
        c.login()
        t0 = time.monotonic()
        for d in sorted(want):
            c.send_message("x@" + d, "to nowhere")
        got, deadline = set(), time.time() + a.timeout
        while got != want:
            el = c.next_stanza(deadline)
            if el is None:
                print("FAIL %d/%d bounces within %gs; missing e.g. %s" % (
                    len(got), len(want), a.timeout, sorted(want - got)[:3]), flush=True)
                return 1
            if local(el.tag) != "message" or el.get("type") != "error":
                continue
            d, cond = domain_of(el.get("from")), error_condition(el)
            if d not in want:
                continue
            if cond != "remote-server-not-found":
                print("FAIL bounce from %s with %s" % (d, cond), flush=True)
                return 1
            got.add(d)
        print("BOUNCED %d/%d in %.2f s" % (len(got), len(want), time.monotonic() - t0),
              flush=True)
    except (StreamClosed, StreamError, OSError) as e:
        print("FAIL %s" % e, flush=True)
        return 1
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
