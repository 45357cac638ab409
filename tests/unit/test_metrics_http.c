/* tests/unit/test_metrics_http.c - the metrics listener's request parser
 * (metrics_http_parse in core/metrics_http.c), with hostile input.
 * SPDX-License-Identifier: ISC
 * A table of requests, good and bad, each with the answer it must get; every good one is
 * also fed split at every byte (each prefix must ask for more, never answer early). The
 * listener itself (sockets, limits, timeouts) is tested by tests/integ/63-metrics.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/metrics.h"
#include "core/metrics_http.h"

struct reqcase {
	const char *what;
	const char *req;
	int         status;
	int         head;
	int         openmetrics;
};

static const struct reqcase cases[] = {
	{ "plain GET 1.1", "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200, 0, 0 },
	{ "GET 1.0 without Host", "GET /metrics HTTP/1.0\r\n\r\n", 200, 0, 0 },
	{ "bare LF line ends", "GET /metrics HTTP/1.1\nHost: x\n\n", 200, 0, 0 },
	{ "query string", "GET /metrics?x=1 HTTP/1.0\r\n\r\n", 200, 0, 0 },
	{ "HEAD", "HEAD /metrics HTTP/1.0\r\n\r\n", 200, 1, 0 },
	{ "Prometheus's Accept", "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:5280\r\n"
	    "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
	    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n", 200, 0, 1 },
	{ "Accept in any case", "GET /metrics HTTP/1.0\r\naccept:Application/OpenMetrics-Text\r\n\r\n",
	    200, 0, 1 },
	{ "text/plain Accept", "GET /metrics HTTP/1.0\r\nAccept: text/plain\r\n\r\n", 200, 0, 0 },
	{ "another path", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404, 0, 0 },
	{ "a longer path", "GET /metricsx HTTP/1.0\r\n\r\n", 404, 0, 0 },
	{ "POST", "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, 0, 0 },
	{ "lower-case get (methods are case-sensitive)", "get /metrics HTTP/1.0\r\n\r\n", 405, 0, 0 },
	{ "DELETE elsewhere", "DELETE /x HTTP/1.0\r\n\r\n", 405, 0, 0 },
	{ "HTTP/2.0", "GET /metrics HTTP/2.0\r\n\r\n", 505, 0, 0 },
	{ "HTTP/0.9 style", "GET /metrics\r\n\r\n", 400, 0, 0 },
	{ "1.1 without Host", "GET /metrics HTTP/1.1\r\n\r\n", 400, 0, 0 },
	{ "two Hosts", "GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, 0, 0 },
	{ "absolute form", "GET http://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400, 0, 0 },
	{ "two spaces", "GET  /metrics HTTP/1.0\r\n\r\n", 400, 0, 0 },
	{ "blank before colon", "GET /metrics HTTP/1.0\r\nHost : x\r\n\r\n", 400, 0, 0 },
	{ "no colon", "GET /metrics HTTP/1.0\r\nHost x\r\n\r\n", 400, 0, 0 },
	{ "folded header", "GET /metrics HTTP/1.0\r\nX: a\r\n b\r\n\r\n", 400, 0, 0 },
	{ "bare CR in a value", "GET /metrics HTTP/1.0\r\nX: a\rb\r\n\r\n", 400, 0, 0 },
	{ "control byte in target", "GET /met\x01rics HTTP/1.0\r\n\r\n", 400, 0, 0 },
	{ "TLS ClientHello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, 0, 0 },
	{ "XMPP stream", "<?xml version='1.0'?><stream:stream>", 400, 0, 0 },
	{ "empty line first", "\r\nGET /metrics HTTP/1.0\r\n\r\n", 400, 0, 0 },
};

static void
test_table(void **state)
{
	struct metrics_http_req req;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct reqcase *c = &cases[i];
		size_t len = strlen(c->req);
		int rc = metrics_http_parse(c->req, len, &req);

		if (rc != 1 || req.status != c->status)
			fail_msg("%s: rc=%d status=%d, want 1 and %d", c->what, rc, req.status,
			    c->status);
		if (c->status == 200) {
			assert_int_equal(req.head, c->head);
			assert_int_equal(req.fmt, c->openmetrics ? METRICS_OPENMETRICS :
			    METRICS_PROMETHEUS);
			assert_int_equal(req.length, len);
		}
	}
}

/* A good request split anywhere: every prefix asks for more. */
static void
test_partial(void **state)
{
	struct metrics_http_req req;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct reqcase *c = &cases[i];
		size_t len = strlen(c->req);

		if (c->status != 200)
			continue;
		for (size_t k = 0; k < len; k++)
			if (metrics_http_parse(c->req, k, &req) != 0)
				fail_msg("%s: answered after %zu of %zu bytes (status %d)", c->what,
				    k, len, req.status);
	}
}

/* Garbage is refused at once, not after the timeout or 8 KiB. */
static void
test_garbage_early(void **state)
{
	struct metrics_http_req req;

	assert_int_equal(metrics_http_parse("\x16\x03", 2, &req), 1);
	assert_int_equal(req.status, 400);
	assert_int_equal(metrics_http_parse("GET /x\0", 7, &req), 1);
	assert_int_equal(req.status, 400);
	assert_int_equal(metrics_http_parse("GET /metrics HTTP/1.1\r\n", 23, &req), 0);
	assert_int_equal(metrics_http_parse("GET /metrics HTTX/1.1\r\n", 23, &req), 1);
	assert_int_equal(req.status, 400);
}

/* Headers over METRICS_HTTP_HEADER_MAX: 431, whether they end or not. */
static void
test_oversized(void **state)
{
	struct metrics_http_req req;
	size_t n = METRICS_HTTP_HEADER_MAX + 100;
	char *big = malloc(n);
	const char *head = "GET /metrics HTTP/1.0\r\nX-Pad: ";
	size_t hl = strlen(head);

	assert_non_null(big);
	memcpy(big, head, hl);
	memset(big + hl, 'a', n - hl);
	/* no end in sight: more is wanted until the limit, then 431 */
	assert_int_equal(metrics_http_parse(big, METRICS_HTTP_HEADER_MAX - 1, &req), 0);
	assert_int_equal(metrics_http_parse(big, METRICS_HTTP_HEADER_MAX, &req), 1);
	assert_int_equal(req.status, 431);
	/* complete, but longer than the limit */
	memcpy(big + n - 4, "\r\n\r\n", 4);
	assert_int_equal(metrics_http_parse(big, n, &req), 1);
	assert_int_equal(req.status, 431);
	/* a request line alone that long */
	memcpy(big, "GET /", 5);
	memset(big + 5, 'm', n - 5);
	assert_int_equal(metrics_http_parse(big, METRICS_HTTP_HEADER_MAX, &req), 1);
	assert_int_equal(req.status, 431);
	free(big);
}

/* Pipelined requests and a body: only the first request counts; its length says where
 * it ended (the server answers it and closes). */
static void
test_pipelined(void **state)
{
	static const char two[] = "GET /metrics HTTP/1.0\r\n\r\nPOST /x HTTP/1.0\r\n\r\n";
	static const char body[] = "POST /metrics HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello";
	static const char first404[] = "GET /nope HTTP/1.0\r\n\r\nGET /metrics HTTP/1.0\r\n\r\n";
	struct metrics_http_req req;

	assert_int_equal(metrics_http_parse(two, sizeof(two) - 1, &req), 1);
	assert_int_equal(req.status, 200);
	assert_int_equal(req.length, strlen("GET /metrics HTTP/1.0\r\n\r\n"));
	assert_int_equal(metrics_http_parse(body, sizeof(body) - 1, &req), 1);
	assert_int_equal(req.status, 405);
	assert_int_equal(metrics_http_parse(first404, sizeof(first404) - 1, &req), 1);
	assert_int_equal(req.status, 404);
}

/* Every byte value after a good request line: never a crash, always an answer or a
 * request for more, and a status the server knows. */
static void
test_all_bytes(void **state)
{
	struct metrics_http_req req;
	char b[64];

	for (int c = 0; c < 256; c++) {
		int n = snprintf(b, sizeof(b), "GET /metrics HTTP/1.0\r\nX: ");

		b[n++] = (char)c;
		memcpy(b + n, "\r\n\r\n", 4);
		n += 4;
		assert_int_equal(metrics_http_parse(b, (size_t)n, &req), 1);
		/* '\n' ends the header line ("X:" is empty), and leaves a blank line */
		if (req.status != (c == '\t' || c == '\n' || (c >= 0x20 && c != 0x7f) ? 200 : 400))
			fail_msg("byte 0x%02x: status %d", c, req.status);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_partial),
		cmocka_unit_test(test_garbage_early),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_all_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
