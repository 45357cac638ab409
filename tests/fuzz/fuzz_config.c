/* tests/fuzz/fuzz_config.c - libFuzzer target for the configuration file parser.
 * SPDX-License-Identifier: ISC
 * Built by `make fuzz`. Each input is written to a file in a private temporary directory
 * (created once) and loaded with config_load; errors go to /dev/null. A loaded config is
 * queried and freed, so leaks and overreads in either path are caught. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	static FILE *devnull;
	struct config *cfg = NULL;
	FILE *f;
	int rc;

	if (devnull == NULL) {
		log_set_level(LOG_ERR);
		if (mkdtemp(fuzz_tmpl(dir, sizeof(dir), "config")) == NULL || (devnull = fopen("/dev/null", "w")) == NULL)
			abort();
		snprintf(path, sizeof(path), "%s/q.conf", dir);
	}
	if ((f = fopen(path, "wb")) == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	rc = config_load(path, devnull, &cfg);
	if (rc < 0 || (rc == 0) != (cfg != NULL))
		abort();
	if (cfg != NULL) {
		if (cfg->domains == NULL)
			abort();
		(void)config_domain(cfg, cfg->domains->name);
		(void)config_is_local(cfg, "A.Example.");
		(void)config_peer(cfg, "b.example");
		config_free(cfg);
	}
	return 0;
}
