"""tests/integ/metrics_check.py - scrape and check quickfed's metrics (63-metrics.sh).
SPDX-License-Identifier: ISC

Run inside the test's namespace with Debian's python3 (python3-prometheus-client).
  parse FILE FORMAT          parse FILE (openmetrics or text 0.0.4) with the real parser,
                             print "name{labels} value" per sample
  scrape URL FORMAT OUT      GET URL (FORMAT sets the Accept header), check status,
                             Content-Type, Connection: close, save the body to OUT
  compare METRICS STATS_JSON every numeric member of `quickfedctl -j show stats`
                             (stream error totals aside) equals its metric
  http HOST PORT             the hostile-request checks (404/405/400/431/505, HEAD,
                             pipelining)
  limit HOST PORT N          the client limit: N idle clients hold every slot, the next
                             request waits until one closes, idle clients time out
Exit 0 when every check holds, 1 with a "FAIL ..." line otherwise.
"""

import json
import socket
import sys
import time
import urllib.request

OM_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


def families(text, fmt):
    if fmt == "openmetrics":
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    return list(text_string_to_metric_families(text))


def samples(text, fmt):
    """{(sample name, sorted labels): value}, every sample once (a repeat fails)."""
    out = {}
    for fam in families(text, fmt):
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in out:
                fail("sample %s listed twice" % (key,))
            out[key] = s.value
    return out


def cmd_parse(path, fmt):
    n = 0
    for (name, labels), value in sorted(samples(open(path, encoding="utf-8").read(), fmt).items()):
        lab = ",".join('%s="%s"' % kv for kv in labels)
        print("%s{%s} %s" % (name, lab, repr(value)))
        n += 1
    print("samples=%d" % n)


def cmd_scrape(url, fmt, out):
    req = urllib.request.Request(url)
    if fmt == "openmetrics":
        req.add_header("Accept", "application/openmetrics-text; version=1.0.0")
    with urllib.request.urlopen(req, timeout=5) as r:
        body = r.read()
        if r.status != 200:
            fail("%s: status %d" % (url, r.status))
        ctype = r.headers.get("Content-Type")
        want = OM_TYPE if fmt == "openmetrics" else TEXT_TYPE
        if ctype != want:
            fail("%s: Content-Type %r, want %r" % (url, ctype, want))
        if r.headers.get("Connection", "").lower() != "close":
            fail("%s: no Connection: close" % url)
        if int(r.headers.get("Content-Length", -1)) != len(body):
            fail("%s: Content-Length %s, body %d bytes" % (url, r.headers.get("Content-Length"), len(body)))
    open(out, "wb").write(body)
    samples(body.decode("utf-8"), fmt)   # parses, or raises
    print("scraped %s (%s): %d bytes" % (url, fmt, len(body)))


def metric_value(smp, key):
    name = "quickfed_" + key.replace(".", "_").replace("-", "_")
    for n in (name + "_total", name):
        if (n, ()) in smp:
            return n, smp[(n, ())]
    return name, None


def cmd_compare(metrics_path, stats_path):
    smp = samples(open(metrics_path, encoding="utf-8").read(), "openmetrics")
    stats = json.load(open(stats_path))
    checked = 0
    for key, value in stats.items():
        if not isinstance(value, int):
            fail("show stats -j: %s=%r is not a number" % (key, value))
        if key.startswith("stream_errors."):
            d, cond = key.split(".")[1:3]
            if cond == "total":
                total = sum(v for (n, lab), v in smp.items() if n == "quickfed_stream_errors_total"
                            and dict(lab).get("direction") == d)
                if total != value:
                    fail("%s=%d but the stream error series sum to %d" % (key, value, total))
                continue
            name, got = "quickfed_stream_errors_total", smp.get(
                ("quickfed_stream_errors_total", (("condition", cond), ("direction", d))))
        else:
            name, got = metric_value(smp, key)
        if got is None:
            fail("show stats %s has no metric %s" % (key, name))
        if key == "loop.max_us":
            # the longest turn of a moving window (core/loopwatch.c): it may go down
            if got < 0:
                fail("show stats %s=%d but %s is %r" % (key, value, name, got))
            checked += 1
            continue
        if key.startswith("loop."):
            # the event loop's own counters (core/loopwatch.c) move with every request,
            # these included: the metrics were read first, so they may only be behind
            if not 0 <= got <= value:
                fail("show stats %s=%d but %s is %r (read before it)" % (key, value, name, got))
            checked += 1
            continue
        if got != value:
            fail("show stats %s=%d but %s is %r" % (key, value, name, got))
        checked += 1
    if checked < 40:
        fail("only %d show stats values compared" % checked)
    print("compared %d show stats values with their metrics: all equal" % checked)


def raw(host, port, data, timeout=3.0, shut=False):
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    out = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        out += d
    s.close()
    return out


def status_of(resp):
    line = resp.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) < 2 or parts[0] != b"HTTP/1.1":
        fail("not an HTTP answer: %r" % resp[:80])
    return int(parts[1])


def cmd_http(host, port):
    port = int(port)
    checks = [
        ("another path", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        ("POST", b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 405),
        ("garbage (TLS ClientHello)", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, 400),
        ("HTTP/1.1 without Host", b"GET /metrics HTTP/1.1\r\n\r\n", 400),
        ("HTTP/2.0", b"GET /metrics HTTP/2.0\r\n\r\n", 505),
        ("headers over 8 KiB", b"GET /metrics HTTP/1.0\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n", 431),
        ("a request cut by the client", b"GET /metrics HTTP/1.0\r\nHost: x\r\n", 400),
    ]
    for what, data, want in checks:
        resp = raw(host, port, data, shut=what.startswith("a request cut"))
        got = status_of(resp)
        if got != want:
            fail("%s: status %d, want %d" % (what, got, want))
        if b"\r\nConnection: close\r\n" not in resp:
            fail("%s: no Connection: close" % what)
        if want == 405 and b"\r\nAllow: GET, HEAD\r\n" not in resp:
            fail("405 without Allow")
        print("%s -> %d" % (what, got))
    # HEAD: the headers only
    resp = raw(host, port, b"HEAD /metrics HTTP/1.0\r\n\r\n")
    if status_of(resp) != 200 or not resp.endswith(b"\r\n\r\n") or b"Content-Length: " not in resp:
        fail("HEAD: %r" % resp[:200])
    print("HEAD -> 200, no body")
    # pipelined: one answer (the first request's), then the server closes
    resp = raw(host, port, b"GET /metrics HTTP/1.0\r\n\r\nGET /nope HTTP/1.0\r\n\r\n")
    if status_of(resp) != 200 or resp.count(b"HTTP/1.1 ") != 1 or b"\nquickfed_stanzas_in_total " not in resp:
        fail("pipelined: %d answers, %r" % (resp.count(b"HTTP/1.1 "), resp[:120]))
    print("pipelined requests -> one answer (200)")


def cmd_limit(host, port, n):
    port, n = int(port), int(n)
    idle = [socket.create_connection((host, port), timeout=10) for _ in range(n)]
    time.sleep(0.3)
    t0 = time.time()
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    s.settimeout(1.5)
    try:
        d = s.recv(100)
        fail("a request over the limit of %d clients was answered at once: %r" % (n, d[:40]))
    except socket.timeout:
        pass
    print("with %d idle clients a request waits (no answer in 1.5 s)" % n)
    idle.pop().close()
    s.settimeout(5)
    d = s.recv(100)
    if not d.startswith(b"HTTP/1.1 200"):
        fail("after a slot freed: %r" % d[:40])
    print("a slot freed: answered after %.1f s" % (time.time() - t0))
    s.close()
    # the idle ones are closed by the read timeout (5 s from their accept)
    for c in idle:
        c.settimeout(8)
        try:
            d = c.recv(100)
        except socket.timeout:
            fail("an idle client was not closed by the read timeout")
        if d != b"":
            fail("an idle client got %r" % d[:40])
        c.close()
    print("idle clients closed by the read timeout after %.1f s" % (time.time() - t0))


def main():
    cmds = {"parse": cmd_parse, "scrape": cmd_scrape, "compare": cmd_compare, "http": cmd_http,
            "limit": cmd_limit}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        fail("usage: metrics_check.py parse|scrape|compare|http|limit ...")
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
