"""tests/integ/s2sraw.py - raw XMPP s2s initiator for attack tests.
SPDX-License-Identifier: ISC

Used by tests/integ/13-abuse.sh and friends: connects to a server's s2s port, opens a
stream from/to given domains, does STARTTLS with a client certificate and SASL
EXTERNAL, then sends raw stanzas given on the command line (at once, or with
--send-after FILE once FILE exists, on the same stream) and prints everything it
receives. With --expect-stream-error COND it exits 0 only if the peer sent a
<stream:error> with that condition; otherwise 0 means authenticated and sent.
"""

import argparse
import base64
import hashlib
import hmac
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xmppc import (NS_SASL, NS_STREAM, NS_TLS, StreamClosed, StreamError,  # noqa: E402
                   XmlStream, client_tls_context, connect, local, quoteattr, tostr)


def open_stream(xs, a):
    xs.send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
            "xmlns:stream='http://etherx.jabber.org/streams' from=%s to=%s version='1.0'>"
            % (quoteattr(a.from_domain), quoteattr(a.to_domain)))
    hdr = xs.expect_header(a.timeout)
    print("stream header: id=%s from=%s" % (hdr.get("id"), hdr.get("from")), flush=True)
    feats = xs.expect_stanza(a.timeout, "stream features")
    print("features: %s" % tostr(feats), flush=True)
    a.stream_id = hdr.get("id") or ""
    return feats


def dialback_key(secret, receiving, originating, stream_id):
    """XEP-0185: hex(HMAC-SHA256(hex(SHA256(secret)), receiving ' ' originating ' ' id))."""
    k = hashlib.sha256(secret.encode()).hexdigest().encode()
    msg = ("%s %s %s" % (receiving, originating, stream_id)).encode()
    return hmac.new(k, msg, hashlib.sha256).hexdigest()


def db_results(a):
    """--db-result DOMAIN=SECRET (a key the authoritative server for DOMAIN will confirm
    when it shares SECRET) or DOMAIN=-garbage (a key nobody will confirm)."""
    out = []
    for spec in a.db_result:
        domain, _, secret = spec.partition("=")
        if secret.startswith("-"):
            key = secret[1:] or "0" * 64
        else:
            key = dialback_key(secret, a.to_domain, domain, a.stream_id)
        out.append("<db:result xmlns:db='jabber:server:dialback' from=%s to=%s>%s</db:result>"
                   % (quoteattr(domain), quoteattr(a.to_domain), key))
    return out


def session(a):
    sock = connect(a.host, a.port, a.timeout)
    xs = XmlStream(sock, open(a.log, "a") if a.log else None)
    feats = open_stream(xs, a)
    if not a.no_tls:
        if feats.find("{%s}starttls" % NS_TLS) is None:
            raise StreamClosed("no STARTTLS offered")
        xs.send("<starttls xmlns='%s'/>" % NS_TLS)
        r = xs.expect_stanza(a.timeout, "proceed")
        if local(r.tag) != "proceed":
            raise StreamClosed("STARTTLS refused: %s" % tostr(r))
        xs.starttls(client_tls_context(a.cert, a.key, a.cafile), server_hostname=a.to_domain)
        print("TLS up: %s" % xs.sock.version(), flush=True)
        feats = open_stream(xs, a)
        if a.sasl == "external":
            mechs = [m.text for m in feats.iter("{%s}mechanism" % NS_SASL)]
            if "EXTERNAL" not in mechs:
                raise StreamClosed("SASL EXTERNAL not offered (mechanisms %s)" % mechs)
            authzid = base64.b64encode(a.from_domain.encode()).decode()
            xs.send("<auth xmlns='%s' mechanism='EXTERNAL'>%s</auth>" % (NS_SASL, authzid))
            r = xs.expect_stanza(a.timeout, "SASL result")
            if local(r.tag) != "success":
                raise StreamClosed("SASL EXTERNAL failed: %s" % tostr(r))
            print("SASL EXTERNAL success as %s" % a.from_domain, flush=True)
            xs.restart()
            open_stream(xs, a)
    later = a.send if a.send_after else []
    for s in db_results(a) + (a.send if not a.send_after else []):
        xs.send(s)
    print("AUTHENTICATED-AND-SENT %d stanza(s)" % (len(a.send) - len(later)), flush=True)
    if a.flood:
        flood(xs, a)
    deadline = time.time() + a.wait
    while True:
        if later and os.path.exists(a.send_after):
            for s in later:
                xs.send(s)
            print("SENT-AFTER %s %d stanza(s)" % (a.send_after, len(later)), flush=True)
            later = []
            deadline = min(deadline, time.time() + 2.0)
        step = max(0.0, deadline - time.time())
        ev = xs.next_event(min(step, 0.2) if later else step)
        if ev is None:
            if time.time() < deadline:
                continue
            break
        print("received: %s" % tostr(ev[1]), flush=True)
    if later:
        raise StreamClosed("%s did not appear within %gs" % (a.send_after, a.wait))
    xs.send("</stream:stream>")
    xs.sock.close()


def flood(xs, a):
    """--flood N: N numbered messages ("I padding") to --flood-to, written in batches
    without logging; sendall blocks while the receiver applies backpressure."""
    frm = a.flood_from or ("flood@" + a.from_domain)
    pad = "x" * a.flood_size
    batch = []
    for i in range(a.flood):
        if a.flood_ns:   # the padding as a namespace of its own in every message
            batch.append("<message from=%s to=%s type='chat' id='f%d'><x xmlns='urn:flood:%d:%s'/>"
                         "</message>" % (quoteattr(frm), quoteattr(a.flood_to), i, i, pad))
            if len(batch) >= 64 or i == a.flood - 1:
                xs.sock.sendall("".join(batch).encode())
                batch = []
            continue
        batch.append("<message from=%s to=%s type='chat' id='f%d'><body>%d %s</body></message>"
                     % (quoteattr(frm), quoteattr(a.flood_to), i, i, pad))
        if len(batch) >= 64 or i == a.flood - 1:
            xs.sock.sendall("".join(batch).encode())
            batch = []
    print("FLOODED %d message(s) of %d bytes" % (a.flood, a.flood_size), flush=True)


def main():
    ap = argparse.ArgumentParser(description="raw s2s initiator for attack tests")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=5269)
    ap.add_argument("--from", dest="from_domain", required=True)
    ap.add_argument("--to", dest="to_domain", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--cafile", help="verify the server certificate against this CA")
    ap.add_argument("--no-tls", action="store_true", help="skip STARTTLS (and SASL)")
    ap.add_argument("--sasl", choices=["external", "none"], default="external")
    ap.add_argument("--db-result", action="append", default=[], metavar="DOMAIN=SECRET",
                    help="pipeline a db:result for DOMAIN before the stanzas; the key is "
                         "computed from SECRET (XEP-0185), or DOMAIN=-KEY sends KEY as is")
    ap.add_argument("--send", action="append", default=[], help="raw stanza to send (repeatable)")
    ap.add_argument("--flood", type=int, default=0, metavar="N",
                    help="after --send, write N numbered messages to --flood-to")
    ap.add_argument("--flood-size", type=int, default=100, help="padding bytes per message")
    ap.add_argument("--flood-to", default="nobody@example")
    ap.add_argument("--flood-from", help="sender JID (default flood@FROM)")
    ap.add_argument("--flood-ns", action="store_true",
                    help="each flood message carries <x/> in a namespace of its own "
                    "(urn:flood:I:padding) instead of a body")
    ap.add_argument("--wait", type=float, default=5.0, help="seconds to read after sending")
    ap.add_argument("--send-after", metavar="FILE",
                    help="hold the --send stanzas until FILE exists (within --wait), send "
                         "them on the open stream, then read 2 s more")
    ap.add_argument("--timeout", type=float, default=10.0, help="per step timeout")
    ap.add_argument("--expect-stream-error", metavar="COND")
    ap.add_argument("--log")
    a = ap.parse_args()
    try:
        session(a)
    except StreamError as e:
        print("stream error: %s (%s)" % (e.condition, tostr(e.elem)), flush=True)
        if a.expect_stream_error:
            if e.condition == a.expect_stream_error:
                print("OK got expected stream error %s" % e.condition, flush=True)
                return 0
            print("FAIL expected stream error %s, got %s" % (a.expect_stream_error, e.condition))
            return 1
        print("FAIL unexpected stream error %s" % e.condition)
        return 1
    except (StreamClosed, OSError) as e:
        print("FAIL %s" % e, flush=True)
        return 1
    if a.expect_stream_error:
        print("FAIL no stream error %s within %gs" % (a.expect_stream_error, a.wait), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
