"""tests/integ/nostarttls.py - an s2s peer that answers every stream without STARTTLS.
SPDX-License-Identifier: ISC

Plays a server that no longer offers STARTTLS: for each connection it reads up to the
end of the opening stream header, answers with its own header and empty
<stream:features/>, then reads until the other side closes (or --seconds pass) and
prints one line per connection: "conn=N bytes=B eof_after=S ends=TAIL", where TAIL is
the last 16 bytes received (printable ASCII, others as '.') and S the seconds from our
features to the EOF. Tests read it to see what a refused initiator still sent before
it closed. Started with its PID tracked; exits by itself after --seconds.
"""

import argparse
import selectors
import socket
import time

ANSWER = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
          b"xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
          b"from='%s' id='nostarttls-%d' version='1.0'><stream:features/>")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=5269)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(16)
    print("nostarttls listening on %s:%d" % (a.host, a.port), flush=True)
    end = time.time() + a.seconds
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ)
    state = {}
    n = 0
    while time.time() < end:
        for key, _ in sel.select(max(0.05, min(1.0, end - time.time()))):
            s = key.fileobj
            if s is ls:
                c, _ = ls.accept()
                n += 1
                state[c] = {"id": n, "data": b"", "answered": None}
                sel.register(c, selectors.EVENT_READ)
                continue
            st = state[s]
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            if d:
                st["data"] += d
                if st["answered"] is None and b"<stream:stream" in st["data"] and \
                        b">" in st["data"][st["data"].index(b"<stream:stream"):]:
                    s.sendall(ANSWER % (a.domain.encode(), st["id"]))
                    st["answered"] = time.time()
                continue
            after = time.time() - st["answered"] if st["answered"] else -1
            tail = "".join(chr(b) if 32 <= b < 127 else "." for b in st["data"][-16:])
            print("conn=%d bytes=%d eof_after=%.3f ends=%s" %
                  (st["id"], len(st["data"]), after, tail), flush=True)
            sel.unregister(s)
            s.close()
            del state[s]


if __name__ == "__main__":
    main()
