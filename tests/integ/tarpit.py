"""tests/integ/tarpit.py - accept TCP connections, read and never answer; exit after N seconds.
SPDX-License-Identifier: ISC

Plays an s2s peer that hangs (slow.example in the integration tests) so quickfed's
setup timeout fires. Started by a test through lib.sh with its PID tracked; it also
exits by itself after --seconds so nothing outlives a broken test.
"""

import argparse
import select
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.4.1")
    ap.add_argument("--port", type=int, default=5269)
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(16)
    print("tarpit listening on %s:%d for %gs" % (a.host, a.port, a.seconds), flush=True)
    end = time.time() + a.seconds
    conns = []
    while time.time() < end:
        r, _, _ = select.select([ls] + conns, [], [], max(0.05, min(1.0, end - time.time())))
        for s in r:
            if s is ls:
                c, addr = ls.accept()
                print("accepted %s:%d" % addr, flush=True)
                conns.append(c)
            else:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    conns.remove(s)
                    s.close()
                else:
                    print("read %d bytes (not answering)" % len(data), flush=True)
    for c in conns:
        c.close()
    ls.close()


if __name__ == "__main__":
    main()
