"""tests/integ/xmppc.py - minimal XMPP c2s test client (STARTTLS, SASL PLAIN, bind, scripted actions).
SPDX-License-Identifier: ISC

Run by the integration tests (tests/integ/*.sh via lib.sh client/client_bg) to log in
as a user of a local Prosody and send or expect messages with bounded timeouts. The
XmlStream reader below is also imported by s2sraw.py. Exit 0 on success, 1 with a
"FAIL reason" line otherwise.
"""

import argparse
import base64
import os
import select
import sys
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

NS_STREAM = "http://etherx.jabber.org/streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"


class StreamClosed(Exception):
    pass


class StreamError(Exception):
    def __init__(self, condition, elem):
        Exception.__init__(self, "stream error: %s" % condition)
        self.condition = condition
        self.elem = elem


def local(tag):
    return tag.rsplit("}", 1)[-1]


def ns(tag):
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def tostr(elem):
    return ET.tostring(elem, encoding="unicode")


class XmlStream:
    def __init__(self, sock, logf=None):
        self.sock = sock
        self.logf = logf
        self.header = None
        self.restart()

    def log(self, direction, text):
        if self.logf:
            self.logf.write("%.3f %s %s\n" % (time.time(), direction, text))
            self.logf.flush()

    def restart(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.queue = []
        self.header = None

    def send(self, text):
        self.log("SEND", text)
        self.sock.sendall(text.encode("utf-8"))

    def starttls(self, ctx, server_hostname=None):
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.restart()

    def _feed(self, data):
        self.parser.feed(data)
        for ev, el in self.parser.read_events():
            if ev == "start":
                self.depth += 1
                if self.depth == 1:
                    self.header = el
                    self.queue.append(("header", el))
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.queue.append(("stanza", el))
                    if self.header is not None:
                        self.header.remove(el) if el in list(self.header) else None
                elif self.depth == 0:
                    self.queue.append(("close", el))

    def _read_some(self, deadline):
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                return False
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0
            if not pending:
                r, _, _ = select.select([self.sock], [], [], min(remaining, 0.5))
                if not r:
                    continue
            try:
                data = self.sock.recv(65536)
            except ssl.SSLWantReadError:
                continue
            except (ConnectionResetError, BrokenPipeError) as e:
                raise StreamClosed("connection reset: %s" % e)
            if not data:
                raise StreamClosed("connection closed by peer")
            self.log("RECV", data.decode("utf-8", "replace"))
            self._feed(data)
            return True

    def next_event(self, timeout):
        """Return ("header"|"stanza", elem) or None on timeout; raises StreamError/StreamClosed."""
        deadline = time.time() + timeout
        while True:
            if self.queue:
                kind, el = self.queue.pop(0)
                if kind == "close":
                    raise StreamClosed("peer closed the stream")
                if kind == "stanza" and el.tag == "{%s}error" % NS_STREAM:
                    cond = "undefined-condition"
                    for c in el:
                        if ns(c.tag) == NS_STREAMS_ERR and local(c.tag) != "text":
                            cond = local(c.tag)
                            break
                    raise StreamError(cond, el)
                return kind, el
            if not self._read_some(deadline):
                return None

    def expect_header(self, timeout):
        ev = self.next_event(timeout)
        if ev is None or ev[0] != "header":
            raise StreamClosed("no stream header from peer")
        return ev[1]

    def expect_stanza(self, timeout, what):
        ev = self.next_event(timeout)
        if ev is None:
            raise StreamClosed("timed out waiting for %s" % what)
        if ev[0] != "stanza":
            raise StreamClosed("unexpected %s while waiting for %s" % (ev[0], what))
        return ev[1]


def client_tls_context(certfile=None, keyfile=None, cafile=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    return ctx


def connect(host, port, timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    s.settimeout(None)
    s.setblocking(True)
    return s



def bare(jid):
    return (jid or "").split("/", 1)[0]


def domain_of(jid):
    j = bare(jid)
    return j.split("@", 1)[1] if "@" in j else j


def body_of(el):
    for c in el:
        if local(c.tag) == "body":
            return c.text or ""
    return None


def error_condition(el):
    for c in el:
        if local(c.tag) == "error":
            for d in c:
                if ns(d.tag) == NS_STANZAS and local(d.tag) != "text":
                    return local(d.tag)
            return "undefined-condition"
    return None


class Client:
    def __init__(self, jid, password, host, port, logf, timeout):
        self.jid = jid
        self.user, self.domain = bare(jid).split("@", 1)
        self.password = password
        self.host = host
        self.port = port
        self.timeout = timeout
        self.resource = "xmppc"
        self.logf = logf
        self.xs = None
        self.full_jid = None
        self.ids = 0
        self.pending = []

    def newid(self):
        self.ids += 1
        return "x%d" % self.ids

    def open_stream(self):
        self.xs.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                     "xmlns:stream='http://etherx.jabber.org/streams' to=%s version='1.0'>"
                     % quoteattr(self.domain))
        self.xs.expect_header(self.timeout)
        feats = self.xs.expect_stanza(self.timeout, "stream features")
        if feats.tag != "{%s}features" % NS_STREAM:
            raise StreamClosed("expected features, got %s" % feats.tag)
        return feats

    def login(self):
        sock = connect(self.host, self.port, self.timeout)
        self.xs = XmlStream(sock, self.logf)
        feats = self.open_stream()
        if feats.find("{%s}starttls" % NS_TLS) is None:
            raise StreamClosed("server offers no STARTTLS")
        self.xs.send("<starttls xmlns='%s'/>" % NS_TLS)
        r = self.xs.expect_stanza(self.timeout, "proceed")
        if local(r.tag) != "proceed":
            raise StreamClosed("STARTTLS refused: %s" % tostr(r))
        self.xs.starttls(client_tls_context(), server_hostname=self.domain)
        feats = self.open_stream()
        mechs = [m.text for m in feats.iter("{%s}mechanism" % NS_SASL)]
        if "PLAIN" not in mechs:
            raise StreamClosed("no SASL PLAIN offered (got %s)" % mechs)
        cred = base64.b64encode(("\0%s\0%s" % (self.user, self.password)).encode()).decode()
        self.xs.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, cred))
        r = self.xs.expect_stanza(self.timeout, "SASL result")
        if local(r.tag) != "success":
            raise StreamClosed("SASL PLAIN failed: %s" % tostr(r))
        self.xs.restart()
        feats = self.open_stream()
        self.iq("<iq type='set' id='%s'><bind xmlns='%s'><resource>" + escape(self.resource) +
                "</resource></bind></iq>", NS_BIND, bind=True)
        sess = feats.find("{%s}session" % NS_SESSION)
        if sess is not None and sess.find("{%s}optional" % NS_SESSION) is None:
            self.iq("<iq type='set' id='%s'><session xmlns='%s'/></iq>", NS_SESSION)
        self.xs.send("<presence/>")
        # A ping round trip makes sure the server has processed our presence.
        self.iq("<iq type='get' id='%s' to=" + quoteattr(self.domain) + "><ping xmlns='%s'/></iq>",
                "urn:xmpp:ping")

    def iq(self, template, xmlns, bind=False):
        iqid = self.newid()
        self.xs.send(template % (iqid, xmlns))
        deadline = time.time() + self.timeout
        while True:
            ev = self.xs.next_event(max(0.01, deadline - time.time()))
            if ev is None:
                raise StreamClosed("no answer to iq %s" % iqid)
            el = ev[1]
            if local(el.tag) == "iq" and el.get("id") == iqid:
                if el.get("type") != "result":
                    raise StreamClosed("iq %s failed: %s" % (iqid, tostr(el)))
                if bind:
                    j = el.find(".//{%s}jid" % NS_BIND)
                    self.full_jid = j.text if j is not None else None
                return el
            self.pending.append(el)

    def next_stanza(self, deadline):
        if self.pending:
            return self.pending.pop(0)
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                return None
            ev = self.xs.next_event(remaining)
            if ev is None:
                return None
            if ev[0] == "stanza":
                return ev[1]

    def send_message(self, to, body, mid=None):
        self.xs.send("<message type='chat' id='%s' to=%s><body>%s</body></message>"
                     % (mid or self.newid(), quoteattr(to), escape(body)))

    def close(self):
        try:
            self.xs.send("</stream:stream>")
            deadline = time.time() + 1
            while self.next_stanza(deadline) is not None:
                pass
        except Exception:
            pass
        try:
            self.xs.sock.close()
        except Exception:
            pass


def parse_actions(tokens):
    """Turn argv tokens into (name, args, timeout) tuples."""
    arity = {"send": 2, "send-count": 2, "send-paced": 3, "collect-until": 1, "expect-message": 2, "expect-error": 2, "expect-nothing": 0, "sleep": 1,
             "expect-count": 2, "expect-nothing-until": 1}
    actions = []
    i = 0
    while i < len(tokens):
        name = tokens[i]
        if name not in arity:
            raise SystemExit("xmppc: unknown action %r" % name)
        args = tokens[i + 1:i + 1 + arity[name]]
        if len(args) != arity[name]:
            raise SystemExit("xmppc: %s needs %d arguments" % (name, arity[name]))
        i += 1 + arity[name]
        timeout = 10.0
        if i + 1 < len(tokens) and tokens[i] == "--timeout":
            timeout = float(tokens[i + 1])
            i += 2
        actions.append((name, args, timeout))
    return actions


def run_action(c, name, args, timeout):
    if name == "send":
        c.send_message(args[0], args[1])
        return None
    if name in ("send-count", "send-paced"):
        n = int(args[1])
        gap = float(args[2]) / 1000.0 if name == "send-paced" else 0.0
        for i in range(1, n + 1):
            c.send_message(args[0], "%d of %d" % (i, n), mid="n%d" % i)
            if gap > 0:
                time.sleep(gap)
        print("sent %d numbered message(s) to %s" % (n, args[0]), flush=True)
        return None
    if name == "sleep":
        deadline = time.time() + float(args[0])
        while c.next_stanza(deadline) is not None:
            pass
        return None
    deadline = time.time() + timeout
    if name == "expect-count":
        return expect_count(c, args[0], int(args[1]), deadline)
    if name == "expect-nothing-until":
        return expect_nothing_until(c, args[0], deadline, timeout)
    if name == "collect-until":
        return collect_until(c, args[0], deadline, timeout)
    while True:
        el = c.next_stanza(deadline)
        if el is None:
            break
        if local(el.tag) != "message":
            continue
        frm = el.get("from") or ""
        if name == "expect-message":
            if el.get("type") != "error" and bare(frm) == args[0] and body_of(el) == args[1]:
                return None
        elif name == "expect-error":
            cond = error_condition(el)
            if el.get("type") == "error" and (frm == args[0] or bare(frm) == args[0]
                                              or domain_of(frm) == args[0]):
                if cond == args[1]:
                    return None
                return "got error %s from %s, expected %s" % (cond, frm, args[1])
        elif name == "expect-nothing":
            if body_of(el) is not None or el.get("type") == "error":
                return "expected nothing, got: %s" % tostr(el)
    if name == "expect-nothing":
        return None
    return "%s %s: nothing matching within %gs" % (name, " ".join(args), timeout)


def collect_until(c, path, deadline, timeout):
    """Until the file path exists: numbered messages received ("I ..." bodies) and
    numbered messages bounced (errors whose id is "nI", as send-count sends them).
    Prints "delivered I" / "bounced I CONDITION" as each new number comes (so a test can watch),
    "duplicate I" for each further copy of a number already delivered, and at the end
    "delivered=I,J,... bounced=K,..." (distinct numbers, sorted) and "duplicates=N"."""
    got, bounced = set(), set()
    dups = 0
    while not os.path.exists(path):
        if time.time() >= deadline:
            return "collect-until %s: the file did not appear within %gs" % (path, timeout)
        el = c.next_stanza(min(deadline, time.time() + 0.2))
        if el is None or local(el.tag) != "message":
            continue
        if el.get("type") == "error":
            mid = el.get("id") or ""
            if mid.startswith("n") and mid[1:].isdigit() and int(mid[1:]) not in bounced:
                bounced.add(int(mid[1:]))
                print("bounced %s %s" % (mid[1:], error_condition(el)), flush=True)
            continue
        num = (body_of(el) or "").split(" ", 1)[0]
        if not num.isdigit():
            continue
        if int(num) in got:
            dups += 1
            print("duplicate %s" % num, flush=True)
            continue
        got.add(int(num))
        print("delivered %s" % num, flush=True)
    print("delivered=%s bounced=%s" % (",".join(str(i) for i in sorted(got)),
                                        ",".join(str(i) for i in sorted(bounced))), flush=True)
    print("duplicates=%d" % dups, flush=True)
    return None


def expect_nothing_until(c, path, deadline, timeout):
    """No message with a body and no error until the file path exists (the test creates
    it once quickfed's counters show the outcome); the timeout only bounds a broken test."""
    while not os.path.exists(path):
        if time.time() >= deadline:
            return "expect-nothing-until %s: the file did not appear within %gs" % (path, timeout)
        el = c.next_stanza(min(deadline, time.time() + 0.2))
        if el is None or local(el.tag) != "message":
            continue
        if body_of(el) is not None or el.get("type") == "error":
            return "expected nothing, got: %s" % tostr(el)
    return None


def expect_count(c, frm, n, deadline):
    """N distinct numbered messages ("I ...") from bare JID frm; duplicates are reported."""
    seen, dups = set(), 0
    while len(seen) < n:
        el = c.next_stanza(deadline)
        if el is None:
            return "expect-count %s %d: got %d distinct (%d duplicate) before the timeout" % (
                frm, n, len(seen), dups)
        if local(el.tag) != "message" or bare(el.get("from") or "") != frm:
            continue
        if el.get("type") == "error":
            return "expect-count: error from %s: %s" % (frm, error_condition(el))
        num = (body_of(el) or "").split(" ", 1)[0]
        if num in seen:
            dups += 1
        seen.add(num)
    print("counted %d distinct message(s) from %s, %d duplicate(s)" % (n, frm, dups),
          flush=True)
    return None


def main():
    ap = argparse.ArgumentParser(description="XMPP c2s test client")
    ap.add_argument("--log", help="append the XML conversation to this file")
    ap.add_argument("--ready", help="create this file once logged in and available")
    ap.add_argument("--port", type=int, default=5222)
    ap.add_argument("--login-timeout", type=float, default=10.0)
    ap.add_argument("--resource", default="xmppc",
                    help="resource to bind (several clients of one user need distinct ones)")
    ap.add_argument("jid")
    ap.add_argument("password")
    ap.add_argument("server", help="IP address of the c2s server")
    ap.add_argument("actions", nargs=argparse.REMAINDER,
                    help="send TO BODY | send-count TO N (bodies 'I of N', ids 'nI') | "
                         "send-paced TO N MS (the same, MS apart) | collect-until FILE | "
                         "expect-message FROM BODY [--timeout N] | "
                         "expect-error FROM COND [--timeout N] | expect-nothing [--timeout N] | "
                         "expect-nothing-until FILE [--timeout N] | sleep N")
    a = ap.parse_args()
    actions = parse_actions(a.actions)
    logf = open(a.log, "a") if a.log else None
    c = Client(a.jid, a.password, a.server, a.port, logf, a.login_timeout)
    c.resource = a.resource
    try:
        c.login()
        print("logged in as %s" % c.full_jid, flush=True)
        if a.ready:
            open(a.ready, "w").close()
        for name, args, timeout in actions:
            why = run_action(c, name, args, timeout)
            if why:
                print("FAIL %s: %s" % (a.jid, why), flush=True)
                c.close()
                return 1
            print("ok %s %s" % (name, " ".join(args)), flush=True)
    except (StreamClosed, StreamError, OSError, ET.ParseError) as e:
        print("FAIL %s: %s" % (a.jid, e), flush=True)
        return 1
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
