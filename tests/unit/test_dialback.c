/* tests/unit/test_dialback.c - dialback keys against published vectors, key checks, secret file.
 * SPDX-License-Identifier: ISC
 * Links s2s/dialback.c (plus log and wolfSSL). The vectors are the only proof that the key
 * matches what other servers compute: hashing the secret to raw bytes instead of hex, or
 * swapping the domains, gives keys that are self-consistent but wrong. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "s2s/dialback.h"

#define SECRET "s3cr3tf0rd14lb4ck"

struct vector {
	const char *receiving, *originating, *stream_id, *key;
	const char *source;
};

static const struct vector vectors[] = {
	/* XEP-0185 1.0 section 3 (Example): receiving xmpp.example.com, originating
	 * example.org; hex(SHA256(secret)) = a7136eb1...9acc. */
	{ "xmpp.example.com", "example.org", "D60000229F",
	  "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643", "XEP-0185 1.0" },
	/* Earlier XEP-0185 example values (receiving example.net, originating example.com),
	 * as used by Twisted Words' test suite. */
	{ "example.net", "example.com", "D60000229F",
	  "008c689ff366b50c63d69a3e2d2c0e0e1f8404b0118eb688a0102c87cb691bdc", "XEP-0185 draft" },
	/* XEP-0220 section 2.1.1: receiving montague.example, originating capulet.example. */
	{ "montague.example", "capulet.example", "D60000229F",
	  "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3", "XEP-0220" },
};

static char tmpdir[64];

static int
setup_secret(void **state)
{
	assert_int_equal(dialback_set_secret(SECRET, strlen(SECRET)), 0);
	return 0;
}

static void
test_vectors(void **state)
{
	char key[DIALBACK_KEY_LEN + 1];

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const struct vector *v = &vectors[i];

		print_message("vector %s\n", v->source);
		assert_int_equal(dialback_key(v->receiving, v->originating, v->stream_id, key), 0);
		assert_int_equal(strlen(key), DIALBACK_KEY_LEN);
		assert_string_equal(key, v->key);
		assert_true(dialback_key_valid(v->receiving, v->originating, v->stream_id, v->key));
		/* The roles are not interchangeable. */
		assert_false(dialback_key_valid(v->originating, v->receiving, v->stream_id, v->key));
	}
}

static void
test_inputs_change_key(void **state)
{
	char base[DIALBACK_KEY_LEN + 1], k[DIALBACK_KEY_LEN + 1];

	assert_int_equal(dialback_key("recv.example", "orig.example", "abc", base), 0);
	assert_int_equal(dialback_key("recv2.example", "orig.example", "abc", k), 0);
	assert_string_not_equal(base, k);
	assert_int_equal(dialback_key("recv.example", "orig2.example", "abc", k), 0);
	assert_string_not_equal(base, k);
	assert_int_equal(dialback_key("recv.example", "orig.example", "abd", k), 0);
	assert_string_not_equal(base, k);
	/* The space delimiter keeps "a b" + "c" apart from "a" + "b c". */
	assert_int_equal(dialback_key("a b", "c", "x", base), 0);
	assert_int_equal(dialback_key("a", "b c", "x", k), 0);
	/* Same HMAC input ("a b c x"): documents the ambiguity XEP-0185 accepts; domains
	 * never contain spaces, so this cannot be exploited. */
	assert_string_equal(base, k);

	/* Another secret gives another key. */
	assert_int_equal(dialback_key("recv.example", "orig.example", "abc", base), 0);
	assert_int_equal(dialback_set_secret("other", 5), 0);
	assert_int_equal(dialback_key("recv.example", "orig.example", "abc", k), 0);
	assert_string_not_equal(base, k);
	assert_false(dialback_key_valid("recv.example", "orig.example", "abc", base));
	assert_int_equal(dialback_set_secret(SECRET, strlen(SECRET)), 0);
	assert_true(dialback_key_valid("recv.example", "orig.example", "abc", base));
}

static void
test_key_valid(void **state)
{
	const struct vector *v = &vectors[0];
	char k[DIALBACK_KEY_LEN + 8];
	/* Garbage of every kind is refused, not crashed on. */
	static const char *const bad[] = {
		"",
		"37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b8932307564",    /* 63 */
		"37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b893230756433",  /* 65 */
		"37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075644",   /* last nibble */
		"g7c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643",   /* not hex */
		"37c69b1cf07a3f67c04a5ef5902fa511 f2c76fe4a2686482ba5b89323075643",   /* inner space */
		"0000000000000000000000000000000000000000000000000000000000000000",
		"<db:result/>",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(dialback_key_valid(v->receiving, v->originating, v->stream_id, bad[i]));
	assert_false(dialback_key_valid(v->receiving, v->originating, v->stream_id, NULL));
	/* Another stream id invalidates the key. */
	assert_false(dialback_key_valid(v->receiving, v->originating, "D60000229E", v->key));

	/* Upper-case hex and surrounding XML whitespace (element text) are accepted. */
	for (size_t i = 0; i <= DIALBACK_KEY_LEN; i++)
		k[i] = (char)(v->key[i] >= 'a' && v->key[i] <= 'f' ? v->key[i] - 32 : v->key[i]);
	assert_true(dialback_key_valid(v->receiving, v->originating, v->stream_id, k));
	snprintf(k, sizeof(k), "\n  %s\n", v->key);
	assert_true(dialback_key_valid(v->receiving, v->originating, v->stream_id, k));
}

static void
test_set_secret_refused(void **state)
{
	assert_int_equal(dialback_set_secret(NULL, 3), -1);
	assert_int_equal(dialback_set_secret("", 0), -1);
	/* A refused secret leaves the previous one in force. */
	assert_true(dialback_key_valid(vectors[0].receiving, vectors[0].originating,
	    vectors[0].stream_id, vectors[0].key));
}

static void
test_secret_file(void **state)
{
	char path[128], key1[DIALBACK_KEY_LEN + 1], key2[DIALBACK_KEY_LEN + 1];
	char data[256];
	struct stat sb;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/secret", tmpdir);
	unlink(path);
	assert_int_equal(dialback_load_or_create_secret(path), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_non_null(f = fopen(path, "r"));
	n = fread(data, 1, sizeof(data) - 1, f);
	fclose(f);
	data[n] = '\0';
	/* 32 random bytes as hex plus a newline. */
	assert_int_equal(n, 65);
	assert_int_equal(data[64], '\n');
	assert_int_equal(strspn(data, "0123456789abcdef"), 64);
	assert_int_equal(dialback_key("a.example", "b.example", "id1", key1), 0);

	/* The created secret is what is loaded next time: keys survive a restart. */
	assert_int_equal(dialback_set_secret("something else", 14), 0);
	assert_int_equal(dialback_load_or_create_secret(path), 0);
	assert_int_equal(dialback_key("a.example", "b.example", "id1", key2), 0);
	assert_string_equal(key1, key2);
	/* The trailing newline is not part of the secret. */
	data[64] = '\0';
	assert_int_equal(dialback_set_secret(data, 64), 0);
	assert_int_equal(dialback_key("a.example", "b.example", "id1", key2), 0);
	assert_string_equal(key1, key2);
	assert_int_equal(unlink(path), 0);

	/* A second create makes a different secret. */
	assert_int_equal(dialback_load_or_create_secret(path), 0);
	assert_int_equal(dialback_key("a.example", "b.example", "id1", key2), 0);
	assert_string_not_equal(key1, key2);

	/* A hand-written secret file is used as is (minus the newline). */
	assert_non_null(f = fopen(path, "w"));
	fputs(SECRET "\n", f);
	fclose(f);
	assert_int_equal(dialback_load_or_create_secret(path), 0);
	assert_true(dialback_key_valid(vectors[0].receiving, vectors[0].originating,
	    vectors[0].stream_id, vectors[0].key));

	/* Empty and oversized files are errors. */
	assert_non_null(f = fopen(path, "w"));
	fputs("\n", f);
	fclose(f);
	assert_int_equal(dialback_load_or_create_secret(path), -1);
	assert_non_null(f = fopen(path, "w"));
	for (int i = 0; i < 1025; i++)
		fputc('x', f);
	fclose(f);
	assert_int_equal(dialback_load_or_create_secret(path), -1);
	assert_int_equal(unlink(path), 0);

	/* A directory where the file should be is refused. */
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(dialback_load_or_create_secret(path), -1);
	assert_int_equal(rmdir(path), 0);
	/* Unwritable location: missing parent. */
	snprintf(path, sizeof(path), "%s/missing/secret", tmpdir);
	assert_int_equal(dialback_load_or_create_secret(path), -1);
	assert_int_equal(dialback_set_secret(SECRET, strlen(SECRET)), 0);
}

static void
test_stream_id(void **state)
{
	char ids[64][33];

	for (int i = 0; i < 64; i++) {
		dialback_stream_id(ids[i]);
		assert_int_equal(strlen(ids[i]), 32);
		assert_int_equal(strspn(ids[i], "0123456789abcdef"), 32);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(ids[i], ids[j]);
	}
}

static void
test_no_secret(void **state)
{
	/* Runs first: before any secret is set, no key can be made or accepted. */
	char key[DIALBACK_KEY_LEN + 1];

	assert_int_equal(dialback_key("a", "b", "c", key), -1);
	assert_false(dialback_key_valid(vectors[0].receiving, vectors[0].originating,
	    vectors[0].stream_id, vectors[0].key));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_secret),
		cmocka_unit_test_setup(test_vectors, setup_secret),
		cmocka_unit_test_setup(test_inputs_change_key, setup_secret),
		cmocka_unit_test_setup(test_key_valid, setup_secret),
		cmocka_unit_test_setup(test_set_secret_refused, setup_secret),
		cmocka_unit_test(test_secret_file),
		cmocka_unit_test(test_stream_id),
	};
	int rc;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/qf-dialback-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(tmpdir);
	return rc;
}
