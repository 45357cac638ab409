"""tests/bench/s2sswarm.py - many raw s2s streams from one process (tests/integ/s2sraw.py in threads).
SPDX-License-Identifier: ISC

Run by tests/bench/memory.sh to play N hostile peers at once without N Python
processes: every stream is one s2sraw.session() in its own thread, with the same
options s2sraw.py takes (STARTTLS, --sasl, --flood ...) plus the domains of its
db:results built from a pattern. Stream i (1..N) pipelines one db:result per k (1..K)
for --domain formatted with i and k (e.g. d{i}-{k}.hang.example) and key --key, and,
with --flood, floods from x@ its first domain. Each session ends after --wait seconds;
memory.sh ends the whole swarm earlier by killing this process (by PID), which closes
every stream at once. Output: one line per stream that fails, a summary at the end.
"""

import argparse
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integ"))
import s2sraw  # noqa: E402
from xmppc import StreamClosed, StreamError  # noqa: E402


def stream_args(a, i):
    domains = [a.domain.format(i=i, k=k) for k in range(1, a.results + 1)]
    return argparse.Namespace(
        host=a.host, port=a.port, from_domain=a.from_domain, to_domain=a.to_domain,
        cert=None, key=None, cafile=None, no_tls=a.no_tls, sasl=a.sasl,
        db_result=["%s=-%s" % (d, a.key) for d in domains], send=[],
        flood=a.flood, flood_size=a.flood_size, flood_to=a.flood_to,
        flood_from="x@" + domains[0], wait=a.wait, timeout=a.timeout,
        expect_stream_error=None, log=None, send_after=None)


def run(a, i, failures, lock):
    try:
        s2sraw.session(stream_args(a, i))
    except (StreamError, StreamClosed, OSError) as e:
        with lock:
            failures.append(i)
        print("FAIL stream %d: %s" % (i, e), flush=True)


def main():
    ap = argparse.ArgumentParser(description="many raw s2s streams in one process")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=5269)
    ap.add_argument("--from", dest="from_domain", required=True)
    ap.add_argument("--to", dest="to_domain", required=True)
    ap.add_argument("--streams", type=int, required=True, metavar="N")
    ap.add_argument("--first", type=int, default=1, help="index of the first stream")
    ap.add_argument("--results", type=int, default=1, metavar="K",
                    help="db:results per stream")
    ap.add_argument("--domain", required=True,
                    help="db:result domain pattern, {i} = stream, {k} = 1..K")
    ap.add_argument("--key", default="garbage", help="dialback key sent as is")
    ap.add_argument("--no-tls", action="store_true")
    ap.add_argument("--sasl", choices=["external", "none"], default="none")
    ap.add_argument("--flood", type=int, default=0)
    ap.add_argument("--flood-size", type=int, default=100)
    ap.add_argument("--flood-to", default="nobody@example")
    ap.add_argument("--wait", type=float, default=300.0)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    threading.stack_size(256 * 1024)
    failures, lock, threads = [], threading.Lock(), []
    for i in range(a.first, a.first + a.streams):
        t = threading.Thread(target=run, args=(a, i, failures, lock), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    print("swarm: %d stream(s), %d failed" % (a.streams, len(failures)), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
