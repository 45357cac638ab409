"""tests/integ/tarpit.py - accept TCP connections, read and never answer; exit after N seconds.
SPDX-License-Identifier: ISC

Plays an s2s peer that hangs (slow.example in the integration tests) so quickfed's
setup timeout fires. Started by a test through lib.sh with its PID tracked; it also
exits by itself after --seconds so nothing outlives a broken test. It uses epoll (via
selectors) and a deep listen backlog, so tests/bench/memory.sh can park hundreds of
quickfed's verify connections on it at once.
"""

import argparse
import selectors
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.4.1")
    ap.add_argument("--port", type=int, default=5269)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--backlog", type=int, default=1024, help="listen(2) backlog")
    a = ap.parse_args()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(a.backlog)
    print("tarpit listening on %s:%d for %gs" % (a.host, a.port, a.seconds), flush=True)
    end = time.time() + a.seconds
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ)
    conns = []
    while time.time() < end:
        for key, _ in sel.select(max(0.05, min(1.0, end - time.time()))):
            s = key.fileobj
            if s is ls:
                try:
                    c, addr = ls.accept()
                except OSError as e:      # EMFILE: leave it in the backlog
                    print("accept: %s" % e, flush=True)
                    time.sleep(0.1)
                    continue
                print("accepted %s:%d" % addr, flush=True)
                conns.append(c)
                sel.register(c, selectors.EVENT_READ)
            else:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    conns.remove(s)
                    s.close()
                else:
                    print("read %d bytes (not answering)" % len(data), flush=True)
    for c in conns:
        c.close()
    sel.close()
    ls.close()


if __name__ == "__main__":
    main()
