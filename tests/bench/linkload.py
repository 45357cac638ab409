"""tests/bench/linkload.py - make a local server open one federated link per remote domain.
SPDX-License-Identifier: ISC

Run by tests/bench/memory.sh (scenario m4) in the bench's namespace: logs in as a c2s
user of the local Prosody (tests/integ/xmppc.py's Client) and sends COUNT messages of
SIZE body bytes to x@<pattern with {i}> for each i in FIRST..FIRST+N-1, then leaves.
The messages are of type 'error', which no server answers with an error (RFC 6120
8.3.1): the remote side may fail to deliver them without sending bounces back, so the
only connections made are the ones toward the N domains. Exit 0 once all are written
("SENT n message(s) to N domain(s)"), 1 on a stream or socket error.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
from xmppc import Client, StreamClosed, StreamError, quoteattr  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="one message (or COUNT) to each of N domains")
    ap.add_argument("jid")
    ap.add_argument("password")
    ap.add_argument("server", help="IP address of the c2s server")
    ap.add_argument("--domain", required=True, help="domain pattern, {i} = index")
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--count", type=int, default=1, help="messages per domain")
    ap.add_argument("--size", type=int, default=10, help="body bytes per message")
    ap.add_argument("--log", help="append the XML conversation to this file")
    a = ap.parse_args()
    logf = open(a.log, "a") if a.log else None
    c = Client(a.jid, a.password, a.server, 5222, logf, 15.0)
    body = "x" * a.size
    try:
        c.login()
        batch = []
        for k in range(a.count):
            for i in range(a.first, a.first + a.n):
                to = "x@" + a.domain.format(i=i)
                batch.append("<message type='error' id='m%d-%d' to=%s><body>%s</body></message>"
                             % (i, k, quoteattr(to), body))
                if len(batch) >= 64:
                    c.xs.send("".join(batch))
                    batch = []
        if batch:
            c.xs.send("".join(batch))
        c.close()
    except (StreamClosed, StreamError, OSError) as e:
        print("FAIL %s" % e, flush=True)
        return 1
    print("SENT %d message(s) to %d domain(s)" % (a.count * a.n, a.n), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
