/* tests/unit/test_metrics.c - the exposition (core/metrics.c, core/sample.c, core/stats.c)
 * and the per-remote gauges (s2s/remotes.c).
 * SPDX-License-Identifier: ISC
 * Emitters here play modules; the renderer's output is compared with the text the
 * OpenMetrics and 0.0.4 formats require. route_foreach is defined here (the real route.c
 * stays out of the link), so remotes_emit sums a route table the test chooses. The
 * integration test tests/integ/63-metrics.sh parses real scrapes with Debian's
 * python3-prometheus-client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/metrics.h"
#include "core/sample.h"
#include "core/stats.h"
#include "s2s/remotes.h"
#include "s2s/route.h"

static const struct sample_family fam_req = { "requests", SAMPLE_COUNTER,
	"requests \"served\" \\ by\nkind" };
static const struct sample_family fam_temp = { NULL, SAMPLE_GAUGE, "a gauge named by its key" };

static void
emit_basic(void *arg, struct sample_sink *sink)
{
	struct sample_label lab[2] = { { "kind", "get" }, { "who", "a\"b\\c\nd" } };

	sink->put(sink, "req.get", &fam_req, lab, 2, 5);
	lab[0].value = "head";
	lab[1].value = "caf\xc3\xa9 \xff\xfe x";   /* valid é, then two bytes that are not UTF-8 */
	sink->put(sink, NULL, &fam_req, lab, 2, 1);
	sample_put(sink, "temp.now-ish", &fam_temp, -3);
	sample_put(sink, "only.kv", NULL, 9);      /* not a metric */
}

/* A family that comes back after another: the format forbids it. */
static void
emit_repeat(void *arg, struct sample_sink *sink)
{
	sample_put(sink, NULL, &fam_req, 1);
	sample_put(sink, "temp", &fam_temp, 2);
	sample_put(sink, NULL, &fam_req, 3);
}

static char *
render(const struct metrics_source *src, size_t n, enum metrics_format fmt, size_t max,
    int *rc)
{
	struct buf b;
	char *s;

	buf_init(&b, max);
	*rc = metrics_render_sources(&b, fmt, src, n);
	s = strdup(b.data != NULL ? b.data : "");
	buf_free(&b);
	return s;
}

static void
test_openmetrics_text(void **state)
{
	struct metrics_source src[] = { { emit_basic, NULL } };
	int rc;
	char *s = render(src, 1, METRICS_OPENMETRICS, 65536, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(s,
	    "# HELP quickfed_requests requests \\\"served\\\" \\\\ by\\nkind\n"
	    "# TYPE quickfed_requests counter\n"
	    "quickfed_requests_total{kind=\"get\",who=\"a\\\"b\\\\c\\nd\"} 5\n"
	    "quickfed_requests_total{kind=\"head\",who=\"caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd x\"} 1\n"
	    "# HELP quickfed_temp_now_ish a gauge named by its key\n"
	    "# TYPE quickfed_temp_now_ish gauge\n"
	    "quickfed_temp_now_ish -3\n"
	    "# EOF\n");
	free(s);
}

/* 0.0.4: TYPE and HELP name the counter's _total series, HELP escapes no quote, no EOF. */
static void
test_prometheus_text(void **state)
{
	struct metrics_source src[] = { { emit_basic, NULL } };
	int rc;
	char *s = render(src, 1, METRICS_PROMETHEUS, 65536, &rc);

	assert_int_equal(rc, 0);
	assert_non_null(strstr(s, "# HELP quickfed_requests_total requests \"served\" \\\\ by\\nkind\n"
	    "# TYPE quickfed_requests_total counter\n"));
	assert_non_null(strstr(s, "# TYPE quickfed_temp_now_ish gauge\n"));
	assert_null(strstr(s, "# EOF"));
	free(s);
}

static void
test_family_repeated(void **state)
{
	struct metrics_source src[] = { { emit_repeat, NULL } };
	int rc;
	char *s = render(src, 1, METRICS_OPENMETRICS, 65536, &rc);

	assert_string_equal(s,
	    "# HELP quickfed_requests requests \\\"served\\\" \\\\ by\\nkind\n"
	    "# TYPE quickfed_requests counter\n"
	    "quickfed_requests_total 1\n"
	    "# HELP quickfed_temp a gauge named by its key\n"
	    "# TYPE quickfed_temp gauge\n"
	    "quickfed_temp 2\n"
	    "# EOF\n");
	free(s);
	/* two sources with the same family: the second is left out the same way */
	{
		struct metrics_source two[] = { { emit_basic, NULL }, { emit_basic, NULL } };
		char *t = render(two, 2, METRICS_OPENMETRICS, 65536, &rc);
		char *one = render(two, 1, METRICS_OPENMETRICS, 65536, &rc);

		assert_string_equal(t, one);
		free(t);
		free(one);
	}
}

/* An exposition over the buffer says so (the HTTP listener answers 500). */
static void
test_too_large(void **state)
{
	struct metrics_source src[] = { { stats_emit, NULL } };
	int rc;
	char *s = render(src, 1, METRICS_OPENMETRICS, 1000, &rc);

	assert_int_equal(rc, -1);
	free(s);
}

/* Every counter of show stats is a metric with the value show stats prints, named after
 * its key; stream errors are one labelled family with a series per condition. */
static void
test_stats_same_numbers(void **state)
{
	struct metrics_source src[] = { { stats_emit, NULL } };
	struct buf kv;
	char *s, *line, *save = NULL, name[160], want[200];
	int rc, nkeys = 0;

	memset(&qf_stats, 0, sizeof(qf_stats));
	qf_stats.stanzas_in = 7;
	qf_stats.conns_open = 3;
	qf_stats.route_retries = 11;
	stats_stream_error("invalid-from", 1);
	stats_stream_error("no-such-condition", 0);
	s = render(src, 1, METRICS_OPENMETRICS, 1 << 20, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(s, "\nquickfed_stanzas_in_total 7\n"));
	assert_non_null(strstr(s, "# TYPE quickfed_conns_open gauge\nquickfed_conns_open 3\n"));
	assert_non_null(strstr(s, "\nquickfed_routes_retries_total 11\n"));
	assert_non_null(strstr(s,
	    "quickfed_stream_errors_total{direction=\"sent\",condition=\"invalid-from\"} 1\n"));
	assert_non_null(strstr(s,
	    "quickfed_stream_errors_total{direction=\"received\",condition=\"other\"} 1\n"));
	assert_non_null(strstr(s,
	    "quickfed_stream_errors_total{direction=\"sent\",condition=\"bad-format\"} 0\n"));
	/* each key=value of show stats (but the totals) has its metric and value */
	buf_init(&kv, 1 << 20);
	stats_format(&kv);
	assert_non_null(strstr(kv.data, "stanzas.in=7\n"));
	assert_non_null(strstr(kv.data, "stream_errors.sent.invalid-from=1\n"));
	assert_non_null(strstr(kv.data, "stream_errors.sent.total=1\n"));
	assert_null(strstr(kv.data, "stream_errors.sent.bad-format"));  /* zero: not listed */
	for (line = strtok_r(kv.data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');

		assert_non_null(eq);
		*eq = '\0';
		if (strncmp(line, "stream_errors.", 14) == 0)
			continue;
		snprintf(name, sizeof(name), "quickfed_%s", line);
		for (char *p = name; *p; p++)
			if (*p == '.')
				*p = '_';
		snprintf(want, sizeof(want), "\n%s_total %s\n", name, eq + 1);
		if (strstr(s, want) == NULL) {
			snprintf(want, sizeof(want), "\n%s %s\n", name, eq + 1);
			if (strstr(s, want) == NULL)
				fail_msg("show stats %s=%s has no metric %s", line, eq + 1, name);
		}
		nkeys++;
	}
	assert_true(nkeys >= 35);
	buf_free(&kv);
	free(s);
	memset(&qf_stats, 0, sizeof(qf_stats));
}

/* ---- per-remote gauges over a route table of the test's choosing ---- */

static struct route_info *routes;
static size_t nroutes;

void
route_foreach(void (*fn)(void *, const struct route_info *), void *arg)
{
	for (size_t i = 0; i < nroutes; i++)
		fn(arg, &routes[i]);
}

/* 30 remote domains, r00..r29 with 100 + i stanzas queued: the 20 with the most are
 * listed, the other 10 summed into "(other)"; r29 has two OUT routes on two links
 * and an IN route, one ready. */
static void
test_remotes_top(void **state)
{
	struct metrics_source src[] = { { remotes_emit, NULL } };
	static char names[30][16];
	char *s, want[200];
	unsigned long other_q = 0;
	int rc;
	size_t series = 0;

	routes = calloc(33, sizeof(*routes));
	assert_non_null(routes);
	for (int i = 0; i < 30; i++) {
		snprintf(names[i], sizeof(names[i]), "r%02d.example", i);
		routes[i] = (struct route_info){ true, "a.example", names[i], false,
		    (unsigned)(100 + i), (size_t)(1000 * (i + 1)), 0 };
		if (i < 10)
			other_q += 100 + i;
	}
	routes[29].link = 5;
	routes[29].ready = true;
	routes[30] = (struct route_info){ true, "b.example", names[29], false, 1, 10, 6 };
	routes[31] = (struct route_info){ false, "a.example", names[29], false, 2, 20, 7 };
	routes[32] = (struct route_info){ true, "c.example", names[29], true, 0, 0, 5 };
	nroutes = 33;
	s = render(src, 1, METRICS_OPENMETRICS, 1 << 20, &rc);
	assert_int_equal(rc, 0);
	for (const char *p = s; (p = strstr(p, "quickfed_remote_queued_stanzas{")) != NULL; p++)
		series++;
	assert_int_equal(series, REMOTES_TOP + 1);
	/* r29: 129 + 1 + 2 queued, 4 routes, 2 ready, links 5 and 6 (7 is an IN route's) */
	assert_non_null(strstr(s, "quickfed_remote_queued_stanzas{remote=\"r29.example\"} 132\n"));
	assert_non_null(strstr(s, "quickfed_remote_routes{remote=\"r29.example\"} 4\n"));
	assert_non_null(strstr(s, "quickfed_remote_routes_ready{remote=\"r29.example\"} 2\n"));
	assert_non_null(strstr(s, "quickfed_remote_connections{remote=\"r29.example\"} 2\n"));
	/* the most queued first; r10 is the 20th, r09 went to (other) */
	assert_true(strstr(s, "remote=\"r29.example\"} 132") < strstr(s, "remote=\"r28.example\"} 128"));
	assert_non_null(strstr(s, "quickfed_remote_queued_stanzas{remote=\"r10.example\"} 110\n"));
	assert_null(strstr(s, "r09.example"));
	snprintf(want, sizeof(want), "quickfed_remote_queued_stanzas{remote=\"(other)\"} %lu\n",
	    other_q);
	assert_non_null(strstr(s, want));
	assert_non_null(strstr(s, "quickfed_remote_routes{remote=\"(other)\"} 10\n"));
	free(s);
	/* no routes: no series at all */
	nroutes = 0;
	s = render(src, 1, METRICS_OPENMETRICS, 1 << 20, &rc);
	assert_string_equal(s, "# EOF\n");
	free(s);
	free(routes);
	routes = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openmetrics_text),
		cmocka_unit_test(test_prometheus_text),
		cmocka_unit_test(test_family_repeated),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_stats_same_numbers),
		cmocka_unit_test(test_remotes_top),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
