#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""tests/integ/garbage.py - throw hostile input at a quickfed listener.

Each case opens a TCP connection, writes its bytes (optionally in small pieces), reads
whatever comes back for a bounded time and closes. Prints one line per case with the
first stream error condition seen (or "none"). Standard library only; loopback only.
"""
import argparse
import random
import re
import socket
import time

HDR = ("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
       "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
       "version='1.0' from='{frm}' to='{to}'>")


def cases(to, frm, seed):
    rnd = random.Random(seed)
    h = HDR.format(frm=frm, to=to)
    yield "random-bytes", bytes(rnd.getrandbits(8) for _ in range(4096)), 0
    yield "tls-record-first", b"\x16\x03\x01\x02\x00" + bytes(512), 0
    yield "doctype", ("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>" + h).encode(), 0
    yield "billion-laughs", ("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
                             "<!ENTITY lol2 '&lol;&lol;&lol;&lol;'>]>" + h).encode(), 0
    yield "entity-ref", (h + "<message>&lol;</message>").encode(), 0
    yield "comment", (h + "<!-- hi -->").encode(), 0
    yield "pi", (h + "<?evil?>").encode(), 0
    yield "deep", (h + "<a>" * 5000).encode(), 0
    yield "huge-attribute", (h + "<message to='" + "x" * (2 << 20)).encode(), 0
    yield "many-attributes", (h + "<message " + " ".join("a%d='1'" % i for i in range(500))
                              + "/>").encode(), 0
    yield "bad-namespace", h.replace("jabber:server'", "jabber:client'").encode(), 0
    yield "unknown-host", HDR.format(frm=frm, to="nothere.example").encode(), 0
    yield "bad-utf8", (h + "<message>").encode() + b"\xff\xfe\xc0\x80" + b"</message>", 0
    yield "split-1-byte", (h + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
                           ).encode() + bytes(64), 1
    yield "stanza-before-auth", (h + "<message from='x@" + frm + "' to='u@" + to +
                                 "'><body>x</body></message>").encode(), 0
    yield "close-early", h[:40].encode(), 0


def run(host, port, name, data, piece, wait):
    out = b""
    try:
        s = socket.create_connection((host, port), timeout=3)
    except OSError as e:
        return "connect-failed:%s" % e.__class__.__name__
    s.settimeout(0.2)
    try:
        if piece:
            for i in range(0, len(data), piece):
                s.sendall(data[i:i + piece])
        else:
            s.sendall(data)
    except OSError:
        pass
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not d:
            break
        out += d
        if len(out) > 1 << 20:
            break
    s.close()
    m = re.search(rb"<stream:error><([a-z-]+)", out)
    return m.group(1).decode() if m else "none"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--from", dest="frm", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--wait", type=float, default=1.5)
    a = ap.parse_args()
    for name, data, piece in cases(a.to, a.frm, a.seed):
        print("%s %s" % (name, run(a.host, a.port, name, data, piece, a.wait)), flush=True)


if __name__ == "__main__":
    main()
