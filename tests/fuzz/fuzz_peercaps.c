/* tests/fuzz/fuzz_peercaps.c - libFuzzer target for the peer capabilities file loader.
 * SPDX-License-Identifier: ISC
 * Built by `make fuzz`. Each input is written as state_dir/peercaps in a private
 * temporary directory (each "NOW" replaced by the current time + 1h, so that seeds stay
 * fresh) and loaded with peercaps_init on a libev loop; entries are looked
 * up, one is learnt so that peercaps_free saves the file, and the saved file is loaded
 * again: it must give back the same status lines. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include <ev.h>

#include "core/buf.h"
#include "core/log.h"
#include "s2s/peercaps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Status lines without the ttl_left field (time moves between the two loads), sorted
 * (the order of entries is not kept across a save). */
static void
format_stable(struct buf *out)
{
	struct buf b;
	char *line, *save = NULL, **lines = NULL;
	size_t n = 0;

	buf_init(&b, 1 << 22);
	peercaps_format(&b);
	if (b.data != NULL && (lines = calloc(b.len, sizeof(*lines))) == NULL)
		abort();
	if (b.data != NULL)
		for (line = strtok_r(b.data, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			char *t = strstr(line, ",ttl_left:");

			if (t != NULL)
				*t = '\0';
			lines[n++] = line;
		}
	if (n > 0)
		qsort(lines, n, sizeof(*lines), cmp_str);
	for (size_t i = 0; i < n; i++)
		buf_printf(out, "%s\n", lines[i]);
	free(lines);
	buf_free(&b);
}

/* A temporary directory template, in memory (/dev/shm) when possible: files are
 * written and fsynced for every input. */
static char *
fuzz_tmpl(char *buf, size_t n, const char *what)
{
	snprintf(buf, n, "%s/qf-fuzz-%s.XXXXXX",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", what);
	return buf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[64], path[64];
	static struct ev_loop *loop;
	struct peercaps c = { .pipelining = true, .starttls = true, .tls_rounds = 1 };
	struct buf before, after;
	FILE *f;

	if (loop == NULL) {
		log_set_level(LOG_ERR);
		if (mkdtemp(fuzz_tmpl(dir, sizeof(dir), "peercaps")) == NULL || (loop = ev_loop_new(EVFLAG_AUTO)) == NULL)
			abort();
		snprintf(path, sizeof(path), "%s/peercaps", dir);
	}
	if ((f = fopen(path, "wb")) == NULL)
		abort();
	for (size_t i = 0; i < size; i++) {
		if (size - i >= 3 && memcmp(data + i, "NOW", 3) == 0) {
			fprintf(f, "%lld", (long long)time(NULL) + 3600);
			i += 2;
		} else {
			fputc(data[i], f);
		}
	}
	fclose(f);

	if (peercaps_init(loop, path, 86400) != 0)
		abort();
	(void)peercaps_get("example.org");
	(void)peercaps_get("");
	peercaps_forget("forget.example", "fuzz");
	peercaps_learn("learnt.example", &c);
	if (peercaps_get("learnt.example") == NULL)
		abort();
	buf_init(&before, 1 << 22);
	format_stable(&before);
	peercaps_free();   /* saves: learn() armed the timer */

	if (peercaps_init(loop, path, 86400) != 0)
		abort();
	buf_init(&after, 1 << 22);
	format_stable(&after);
	peercaps_free();
	if (before.len != after.len || (before.len > 0 &&
	    memcmp(before.data, after.data, before.len) != 0)) {
		fprintf(stderr, "reload differs:\n%s---\n%s", before.data ? before.data : "",
		    after.data ? after.data : "");
		abort();
	}
	buf_free(&before);
	buf_free(&after);
	return 0;
}
