"""tests/integ/synhole.py - a TCP address where connect() hangs: SYNs are dropped.
SPDX-License-Identifier: ISC

Listens with a backlog of 0, fills the accept queue with its own connections and never
accepts, so the kernel drops every further SYN and a connecting peer sees no answer
(no RST) until its own timeout: the "unreachable first address" of the Happy Eyeballs
test. Started through lib.sh with its PID tracked; exits by itself after --seconds.
"""

import argparse
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.6.1")
    ap.add_argument("--port", type=int, default=5269)
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(0)
    fillers = []
    # fill the accept queue: with a backlog of 0 one (sometimes two) queued connection(s)
    # make it full; a connect that does not complete at once means SYNs are dropped now
    for _ in range(4):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((a.host, a.port))
        except BlockingIOError:
            pass
        fillers.append(s)
        time.sleep(0.1)
    print("synhole on %s:%d: accept queue full, SYNs dropped, for %gs"
          % (a.host, a.port, a.seconds), flush=True)
    time.sleep(a.seconds)
    for s in fillers:
        s.close()
    ls.close()


if __name__ == "__main__":
    main()
