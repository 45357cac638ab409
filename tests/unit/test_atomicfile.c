/* tests/unit/test_atomicfile.c - core/atomicfile.c: whole-file atomic writes.
 * SPDX-License-Identifier: ISC
 * The file appears complete with the asked mode, replaces an existing one, and a failed
 * write leaves neither a temporary file nor a changed target behind. */
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_replace_and_modes),
		cmocka_unit_test(test_failures_leave_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
