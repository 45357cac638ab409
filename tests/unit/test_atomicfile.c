/* tests/unit/test_atomicfile.c - core/atomicfile.c: whole-file atomic writes.
 * SPDX-License-Identifier: ISC
 * The file appears complete with the asked mode, replaces an existing one, and a failed
 * write leaves neither a temporary file nor a changed target behind. Writes queued for
 * the writer thread (atomicfile_write_later) are done by another thread, in order, the
 * newest data winning, with at most one waiting per path; failures are counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/atomicfile.h"

static size_t
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
slurp(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
}

static void
test_write_replace_and_modes(void **state)
{
	char dir[] = "/tmp/qf-atomic-XXXXXX", path[256], got[64];
	struct stat sb;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/state.file", dir);
	umask(022);
	assert_int_equal(atomicfile_write(path, "first\n", 6, 0600), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	slurp(path, got, sizeof(got));
	assert_string_equal(got, "first\n");
	assert_int_equal(atomicfile_write(path, "second", 6, 0644), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644);
	slurp(path, got, sizeof(got));
	assert_string_equal(got, "second");
	assert_int_equal(atomicfile_write(path, "", 0, 0600), 0);   /* empty is a file too */
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 0);
	assert_int_equal(count_entries(dir), 1);                    /* no temporary left */
	unlink(path);
	rmdir(dir);
}

static void
test_failures_leave_nothing(void **state)
{
	char dir[] = "/tmp/qf-atomic-XXXXXX", path[256], got[64], longp[5000];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/missing/state.file", dir);
	assert_int_equal(atomicfile_write(path, "x", 1, 0600), -1);
	assert_int_equal(errno, ENOENT);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(atomicfile_write(longp, "x", 1, 0600), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	/* a directory in the way: rename fails, the directory and the dir stay clean */
	snprintf(path, sizeof(path), "%s/taken", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(got, sizeof(got), "%s/taken/keep", dir);
	assert_int_equal(atomicfile_write(got, "k", 1, 0600), 0);
	assert_int_equal(atomicfile_write(path, "x", 1, 0600), -1);
	assert_int_equal(count_entries(dir), 1);
	unlink(got);
	rmdir(path);
	rmdir(dir);
}

static size_t
count_tasks(void)
{
	return count_entries("/proc/self/task");
}

static void
test_write_later(void **state)
{
	char dir[] = "/tmp/qf-atomic-XXXXXX", a[256], b[256], bad[256], got[64], data[64];
	size_t tasks = count_tasks();
	unsigned long failures = atomicfile_failures();
	struct stat sb;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(a, sizeof(a), "%s/a.state", dir);
	snprintf(b, sizeof(b), "%s/b.state", dir);
	assert_int_equal(atomicfile_write_later(a, "one", 3, 0640), 0);
	assert_true(count_tasks() > tasks);                /* the writer thread */
	tasks = count_tasks();
	atomicfile_sync(a);
	assert_int_equal(atomicfile_pending(), 0);
	assert_int_equal(stat(a, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0640);
	slurp(a, got, sizeof(got));
	assert_string_equal(got, "one");
	/* a burst on two paths: the queue never holds more than one waiting write per
	 * path besides the one under way, and each file ends with its newest data */
	for (int i = 0; i < 500; i++) {
		int n = snprintf(data, sizeof(data), "%s %d", i % 2 ? "b" : "a", i);

		assert_int_equal(atomicfile_write_later(i % 2 ? b : a, data, (size_t)n, 0600), 0);
		assert_true(atomicfile_pending() <= 3);
	}
	atomicfile_sync(NULL);
	slurp(a, got, sizeof(got));
	assert_string_equal(got, "a 498");
	slurp(b, got, sizeof(got));
	assert_string_equal(got, "b 499");
	assert_int_equal(count_entries(dir), 2);           /* no temporary left */
	/* a synchronous write after a queued one of the same path lands last */
	assert_int_equal(atomicfile_write_later(a, "queued", 6, 0600), 0);
	assert_int_equal(atomicfile_write(a, "direct", 6, 0600), 0);
	atomicfile_sync(NULL);
	slurp(a, got, sizeof(got));
	assert_string_equal(got, "direct");
	/* a write that fails in the background is counted (and logged); nothing left */
	snprintf(bad, sizeof(bad), "%s/missing/c.state", dir);
	assert_int_equal(atomicfile_write_later(bad, "x", 1, 0600), 0);
	atomicfile_sync(bad);
	assert_int_equal(atomicfile_failures(), failures + 1);
	assert_int_equal(count_entries(dir), 2);
	assert_int_equal(count_tasks(), tasks);            /* still one writer thread */
	unlink(a);
	unlink(b);
	rmdir(dir);
}

/* atomicfile_replace: the new content is in place when it returns (readers under the
 * caller's lock see it at once); only the fsync is left to the writer thread. */
static void
test_replace(void **state)
{
	char dir[] = "/tmp/qf-atomic-XXXXXX", path[256], got[64];
	struct stat sb;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/keys", dir);
	for (int i = 0; i < 50; i++) {
		char data[16];
		int n = snprintf(data, sizeof(data), "v%d", i);

		assert_int_equal(atomicfile_replace(path, data, (size_t)n, 0600), 0);
		slurp(path, got, sizeof(got));           /* no sync: already there */
		assert_string_equal(got, data);
		assert_true(atomicfile_pending() <= 2);  /* one fsync under way, one waiting */
	}
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	atomicfile_sync(NULL);
	assert_int_equal(atomicfile_pending(), 0);
	assert_int_equal(count_entries(dir), 1);
	snprintf(path, sizeof(path), "%s/missing/keys", dir);
	assert_int_equal(atomicfile_replace(path, "x", 1, 0600), -1);   /* at once */
	assert_int_equal(errno, ENOENT);
	snprintf(path, sizeof(path), "%s/keys", dir);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_replace_and_modes),
		cmocka_unit_test(test_failures_leave_nothing),
		cmocka_unit_test(test_write_later),
		cmocka_unit_test(test_replace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
