#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""tests/integ/garbage.py - throw hostile input at a quickfed listener.

Each case opens a TCP connection, writes its bytes (optionally in small pieces), reads
whatever comes back for a bounded time and closes. Prints one line per case with the
first stream error condition seen (or "none"). Standard library only; loopback only.

--set edge runs the edge cases of tests/integ/19-edge.sh instead (a failed TLS
handshake, a header then EOF, bad UTF-8, whitespace and element floods, full JIDs,
a nested header); their lines go on with key=value facts about the answer:
header/features/proceed/end (seen), alert (a TLS alert record right after
<proceed/>), closed (the server closed within --wait), t (seconds from our last
byte to the close or to the stream error), bytes (received).
"""
import argparse
import random
import re
import socket
import time

STARTTLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"

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


def edge_cases(to, frm):
    """(name, pieces, options): pieces are sent with opt gap seconds between them;
    opt eof shuts our side down after the last one."""
    h = HDR.format(frm=frm, to=to)
    nested = h.replace("<?xml version='1.0'?>", "")
    yield "starttls-twice", [(h + STARTTLS + STARTTLS).encode()], {}
    yield "starttls-garbage", [(h + STARTTLS).encode() +
                               b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(1, 64))], {}
    yield "header-only", [h.encode()], {}
    yield "header-eof", [h.encode()], {"eof": True}
    yield "garbage-eof", [h.encode() + b"<<<"], {"eof": True}
    yield "overlong-utf8", [(h + "<message><body>a").encode() + b"\xc0\xbc"], {}
    yield "split-utf8", [(h + "<message><body>").encode() + b"\xe0", b"\x80"], {"gap": 0.3}
    yield "surrogate", [(h + "<message to='").encode() + b"\xed\xa0\x80"], {}
    yield "control-char", [(h + "<message><body>").encode() + b"\x01"], {}
    yield "whitespace-flood", [h.encode(), b" " * (10 << 20)], {}
    yield "element-dense", [(h + "<message>" + "<a/>" * 60000).encode()], {}
    yield "full-jid-from", [HDR.format(frm="user@" + frm + "/res", to=to).encode()], {}
    yield "full-jid-to", [HDR.format(frm=frm, to="user@" + to).encode()], {}
    yield "nested-stream", [(h + nested).encode()], {}
    yield "db-result-full-jid", [(h + "<db:result from='admin@%s' to='%s'>k</db:result>"
                                  % (frm, to)).encode()], {}
    yield "db-verify-full-jid", [(h + "<db:verify from='%s' to='%s/res' id='x'>k</db:verify>"
                                  % (frm, to)).encode()], {}


def run_edge(host, port, pieces, opt, wait, source):
    out = b""
    closed = False
    try:
        s = socket.create_connection((host, port), timeout=3,
                                     source_address=(source, 0) if source else None)
    except OSError as e:
        return "connect-failed:%s" % e.__class__.__name__
    s.settimeout(0.5)
    try:
        for i, p in enumerate(pieces):
            if i > 0 and opt.get("gap"):
                time.sleep(opt["gap"])
            s.sendall(p)
        if opt.get("eof"):
            s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    start = time.monotonic()
    t_err = None
    s.settimeout(0.05)
    while time.monotonic() < start + wait:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        if not d:
            closed = True
            break
        out += d
        if t_err is None and b"<stream:error>" in out:
            t_err = time.monotonic() - start
    t = time.monotonic() - start
    s.close()
    m = re.search(rb"<stream:error><([a-z-]+)", out)
    facts = {
        "header": b"<stream:stream" in out,
        "features": b"<stream:features" in out,
        "proceed": b"<proceed" in out,
        "end": b"</stream:stream>" in out,
        "alert": False,
        "closed": closed,
    }
    i = out.find(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    if i >= 0:
        rest = out[i + len(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"):]
        facts["alert"] = rest[:2] == b"\x15\x03"
    return "%s %s t=%.3f bytes=%d" % (
        m.group(1).decode() if m else "none",
        " ".join("%s=%d" % (k, v) for k, v in facts.items()),
        t_err if t_err is not None and t_err < t else t, len(out))


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
    ap.add_argument("--set", choices=("garbage", "edge"), default="garbage")
    ap.add_argument("--cases", help="comma-separated case names to run (default: all)")
    ap.add_argument("--source", help="local address to connect from")
    a = ap.parse_args()
    only = set(a.cases.split(",")) if a.cases else None
    if a.set == "edge":
        for name, pieces, opt in edge_cases(a.to, a.frm):
            if only is None or name in only:
                print("%s %s" % (name, run_edge(a.host, a.port, pieces, opt, a.wait, a.source)),
                      flush=True)
        return
    for name, data, piece in cases(a.to, a.frm, a.seed):
        if only is not None and name not in only:
            continue
        print("%s %s" % (name, run(a.host, a.port, name, data, piece, a.wait)), flush=True)


if __name__ == "__main__":
    main()
