/* tests/unit/test_kvjson.c - quickfedctl -j's conversion of status answers to JSON
 * (ctl/kvjson.c).
 * SPDX-License-Identifier: ISC
 * Answers go in line by line as quickfedctl feeds them; the JSON that comes out is
 * compared byte for byte (escapes, numbers, the error and text members). The integration
 * test tests/integ/63-metrics.sh parses real answers with python3's json module. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/kvjson.h"

/* Convert answer (lines separated by '\n'; its bytes may include NUL: n given). */
static char *
convert(const char *answer, size_t n, bool metrics, int *rc)
{
	struct kvjson j;
	char *s = NULL;
	size_t len = 0, start = 0;
	FILE *f = open_memstream(&s, &len);

	assert_non_null(f);
	kvjson_begin(&j, f, metrics);
	for (size_t i = 0; i <= n; i++)
		if (i == n || answer[i] == '\n') {
			if (i > start || i < n)
				kvjson_line(&j, answer + start, i - start);
			start = i + 1;
		}
	*rc = kvjson_end(&j);
	fclose(f);
	return s;
}

static void
test_members(void **state)
{
	static const char a[] = "conns.in=3\nqueue.out.a.example.b.example.oldest_age=1.5\n"
	    "neg=-2\nlead=007\nbig=123456789012345678901234567890123\nver=1.2.3\n"
	    "empty=\ndns.cache_file=/var/lib/x y\nroute.out.a.b.state=ready\n";
	int rc;
	char *s = convert(a, sizeof(a) - 1, false, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(s, "{\n\"conns.in\": 3,\n"
	    "\"queue.out.a.example.b.example.oldest_age\": 1.5,\n\"neg\": -2,\n"
	    "\"lead\": \"007\",\n\"big\": \"123456789012345678901234567890123\",\n"
	    "\"ver\": \"1.2.3\",\n\"empty\": \"\",\n\"dns.cache_file\": \"/var/lib/x y\",\n"
	    "\"route.out.a.b.state\": \"ready\"\n}\n");
	free(s);
}

/* Quotes, backslashes, control bytes, NUL, CR, valid UTF-8 kept, invalid bytes
 * replaced: in names and values. */
static void
test_escapes(void **state)
{
	static const char a[] = "k\"q=v\\w\x01\x1f\x7f\tz\n"
	    "name=caf\xc3\xa9 \xff \xc3 \xed\xa0\x80 \xf0\x9f\x98\x80 \xc0\xaf\n"
	    "nul=a\0b\n";
	int rc;
	char *s = convert(a, sizeof(a) - 1, false, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(s, "{\n\"k\\\"q\": \"v\\\\w\\u0001\\u001f\\u007f\\tz\",\n"
	    "\"name\": \"caf\xc3\xa9 \\ufffd \\ufffd \\ufffd\\ufffd\\ufffd \xf0\x9f\x98\x80 "
	    "\\ufffd\\ufffd\",\n"
	    "\"nul\": \"a\\u0000b\"\n}\n");
	free(s);
}

static void
test_error(void **state)
{
	static const char a[] = "error: unknown command 'x\"' (try help)\n";
	static const char late[] = "peers=1\npeer.1.state=ready\n\nerror: answer incomplete\n";
	int rc;
	char *s = convert(a, sizeof(a) - 1, false, &rc);

	assert_int_equal(rc, 1);
	assert_string_equal(s, "{\n\"error\": \"unknown command 'x\\\"' (try help)\"\n}\n");
	free(s);
	s = convert(late, sizeof(late) - 1, false, &rc);
	assert_int_equal(rc, 1);
	assert_string_equal(s, "{\n\"peers\": 1,\n\"peer.1.state\": \"ready\",\n"
	    "\"error\": \"answer incomplete\"\n}\n");
	free(s);
}

/* Lines that are not name=value (the help table, whose text may hold '=') are the
 * "text" array, in order, after the members. */
static void
test_text(void **state)
{
	static const char a[] = "help        list the commands\n"
	    "show config the configuration (timeouts.retry=90s)\n=odd\nk=1\r\n";
	int rc;
	char *s = convert(a, sizeof(a) - 1, false, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(s, "{\n\"k\": 1,\n\"text\": [\"help        list the commands\","
	    "\"show config the configuration (timeouts.retry=90s)\",\"=odd\"]\n}\n");
	free(s);
}

static void
test_metrics(void **state)
{
	static const char a[] = "# HELP quickfed_x a thing\n# TYPE quickfed_x counter\n"
	    "quickfed_x_total 3\nquickfed_y_total{a=\"b c\",d=\"=\"} 0\n# EOF\n";
	int rc;
	char *s = convert(a, sizeof(a) - 1, true, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(s, "{\n\"quickfed_x_total\": 3,\n"
	    "\"quickfed_y_total{a=\\\"b c\\\",d=\\\"=\\\"}\": 0\n}\n");
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_members),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_error),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_metrics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
