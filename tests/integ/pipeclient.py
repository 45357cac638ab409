"""tests/integ/pipeclient.py - a pipelining (XEP-0305) s2s initiator for attack tests.
SPDX-License-Identifier: ISC

Used by tests/integ/41-pipelining-refused.sh. It drives TLS through ssl.MemoryBIO so
that it controls every socket write: flight 1 is stream header + <starttls/> +
ClientHello in ONE write; after the handshake, the client Finished and the pipelined
header + <auth EXTERNAL/> + restarted header + stanzas (or header + <db:result/> +
stanzas) leave in ONE write. It prints what each flight carried and what the server
answered, and exits 0 only if every --expect was seen (sasl-failure, sasl-success,
db-invalid, db-valid, stream-error:COND, closed).
"""

import argparse
import base64
import re
import select
import socket
import ssl
import sys
import time

NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"


class Closed(Exception):
    pass


def header(frm, to, db=False):
    return ("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
            "xmlns:stream='http://etherx.jabber.org/streams'%s from='%s' to='%s' "
            "version='1.0'>" % (" xmlns:db='jabber:server:dialback'" if db else "", frm, to))


def start_tags(text):
    """Names of the start tags in TEXT, prefixes kept (stream:stream, db:result)."""
    return [m.group(1) for m in re.finditer(r"<([A-Za-z][\w:.-]*)", text)]


def tls_records(data):
    """Describe TLS records: hs:ClientHello, hs:ServerHello, ccs, data, alert."""
    hs = {1: "ClientHello", 2: "ServerHello", 4: "NewSessionTicket", 8: "EncryptedExtensions",
          11: "Certificate", 13: "CertificateRequest", 15: "CertificateVerify", 20: "Finished"}
    out = []
    i = 0
    while i + 5 <= len(data):
        typ = data[i]
        ln = int.from_bytes(data[i + 3:i + 5], "big")
        if typ == 22 and i + 5 < len(data):
            out.append("hs:" + hs.get(data[i + 5], str(data[i + 5])))
        elif typ == 20:
            out.append("ccs")
        elif typ == 21:
            out.append("alert")
        elif typ == 23:
            out.append("data")
        else:
            out.append("?%d" % typ)
        i += 5 + ln
    return out


class Pipe:
    def __init__(self, a):
        self.a = a
        self.logf = open(a.log, "a") if a.log else None
        self.sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
        self.sock.setblocking(True)
        self.writes = 0
        self.inner = ""

    def log(self, what, data):
        if self.logf:
            if isinstance(data, bytes):
                data = data.decode("utf-8", "replace")
            self.logf.write("%.3f %s %s\n" % (time.time(), what, data))
            self.logf.flush()

    def write(self, data, clear, tls, inner):
        """One socket write = one flight; print what it carries."""
        self.writes += 1
        self.sock.sendall(data)
        print("flight=%d out bytes=%d clear=[%s] tls=[%s] inner=[%s]" % (
            self.writes, len(data), ",".join(start_tags(clear)), ",".join(tls_records(tls)),
            ",".join(start_tags(inner))), flush=True)
        self.log("SEND", clear + inner)

    def recv(self, deadline):
        while True:
            left = deadline - time.time()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], min(left, 0.5))
            if not r:
                continue
            try:
                d = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                raise Closed("connection reset")
            if not d:
                raise Closed("connection closed by peer")
            return d

    def run(self):
        a = self.a
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if a.cafile:
            ctx.load_verify_locations(a.cafile)
            ctx.verify_mode = ssl.CERT_REQUIRED
        if a.cert:
            ctx.load_cert_chain(a.cert, a.key)
        inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(inc, outg, server_hostname=a.to_domain)
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outg.read()
        clear = header(a.from_domain, a.to_domain, a.mode == "dialback") + \
            "<starttls xmlns='%s'/>" % NS_TLS
        # Flight 1: header + <starttls/> + ClientHello in one write.
        self.write(clear.encode() + hello, clear, hello, "")

        # The server's first answer: header + features + proceed + ServerHello.
        deadline = time.time() + a.timeout
        buf = b""
        recvs = 0
        m = None
        while m is None:
            d = self.recv(deadline)
            if d is None:
                raise Closed("no <proceed/> within %gs (got %r)" % (a.timeout, buf[:300]))
            recvs += 1
            buf += d
            if b"<failure" in buf:
                raise Closed("STARTTLS refused: %r" % buf)
            m = re.search(rb"<proceed[^>]*/>|<proceed[^>]*>\s*</proceed>", buf)
        cleartext = buf[:m.end()].decode("utf-8", "replace")
        rest = buf[m.end():]
        print("answer=1 in recvs=%d bytes=%d clear=[%s] tls=[%s]" % (
            recvs, len(buf), ",".join(start_tags(cleartext)), ",".join(tls_records(rest))),
            flush=True)
        self.log("RECV", cleartext)
        if not rest:
            print("note: the ServerHello did not arrive with <proceed/>", flush=True)

        # Finish the handshake; the client's last handshake flight is held back so that
        # it leaves together with the pipelined stream data.
        inc.write(rest)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = outg.read()
                if pending:
                    self.write(pending, "", pending, "")
                d = self.recv(deadline)
                if d is None:
                    raise Closed("TLS handshake did not complete")
                inc.write(d)
        print("TLS up: %s cipher=%s" % (tls.version(), tls.cipher()[0]), flush=True)

        # Flight 2: auth (or db:result), restart and stanzas in one TLS write.
        if a.mode == "external":
            authz = base64.b64encode((a.authzid or a.from_domain).encode()).decode()
            inner = header(a.from_domain, a.to_domain) + \
                "<auth xmlns='%s' mechanism='EXTERNAL'>%s</auth>" % (NS_SASL, authz) + \
                header(a.from_domain, a.to_domain)
        else:
            inner = header(a.from_domain, a.to_domain, True) + \
                "<db:result from='%s' to='%s'>%s</db:result>" % (
                    a.from_domain, a.to_domain, a.dbkey)
        inner += "".join(a.send)
        tls.write(inner.encode())
        data = outg.read()
        self.write(data, "", data, inner)

        # Read what the server says until it closes or --wait runs out.
        seen = set()
        text = ""
        deadline = time.time() + a.wait
        try:
            while time.time() < deadline:
                d = self.recv(deadline)
                if d is None:
                    break
                inc.write(d)
                while True:
                    try:
                        chunk = tls.read(65536)
                    except ssl.SSLWantReadError:
                        break
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                        raise Closed("TLS closed by peer")
                    if not chunk:
                        raise Closed("TLS closed by peer")
                    self.log("RECV", chunk)
                    text += chunk.decode("utf-8", "replace")
                if "</stream:stream>" in text:
                    raise Closed("peer closed the stream")
        except Closed as e:
            print("closed: %s" % e, flush=True)
            seen.add("closed")
        print("received: %s" % text, flush=True)
        sasl = re.search(r"<(failure|success)\s+xmlns=['\"]%s['\"]" % re.escape(NS_SASL), text)
        if sasl:
            seen.add("sasl-" + sasl.group(1))
        for m in re.finditer(r"<db:result\b[^>]*\btype=['\"](\w+)['\"]", text):
            seen.add("db-" + m.group(1))
        for m in re.finditer(r"<stream:error>\s*<([\w-]+)\s+xmlns=['\"]%s['\"]"
                             % re.escape(NS_STREAMS_ERR), text):
            seen.add("stream-error:" + m.group(1))
        print("seen: %s" % " ".join(sorted(seen)), flush=True)
        missing = [e for e in a.expect if e not in seen]
        if missing:
            print("FAIL expected %s, saw %s" % (" ".join(missing), " ".join(sorted(seen))),
                  flush=True)
            return 1
        forbidden = [e for e in a.forbid if e in seen]
        if forbidden:
            print("FAIL saw %s" % " ".join(forbidden), flush=True)
            return 1
        print("OK", flush=True)
        return 0


def main():
    ap = argparse.ArgumentParser(description="pipelining s2s initiator for attack tests")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=5269)
    ap.add_argument("--from", dest="from_domain", required=True)
    ap.add_argument("--to", dest="to_domain", required=True)
    ap.add_argument("--mode", choices=["external", "dialback"], default="external")
    ap.add_argument("--authzid", help="SASL EXTERNAL authorization identity (default --from)")
    ap.add_argument("--dbkey", default="0" * 64, help="dialback key to present")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--cafile")
    ap.add_argument("--send", action="append", default=[], help="stanza to pipeline")
    ap.add_argument("--expect", action="append", default=[],
                    help="sasl-failure|sasl-success|db-invalid|db-valid|stream-error:COND|closed")
    ap.add_argument("--forbid", action="append", default=[], help="like --expect, must not occur")
    ap.add_argument("--wait", type=float, default=8.0)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--log")
    a = ap.parse_args()
    try:
        return Pipe(a).run()
    except (Closed, OSError, ssl.SSLError) as e:
        print("FAIL %s" % e, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
