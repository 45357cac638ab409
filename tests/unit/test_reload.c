/* tests/unit/test_reload.c - what a reload may change (core/reload.c) and config lifetimes.
 * SPDX-License-Identifier: ISC
 * reload_keep_fixed() on two real configs read by config_load: the restart-only
 * keywords come back to their running values with one warning each, everything else
 * keeps the new value. And config_hold/config_release: a replaced config lives until
 * its last holder lets go (ASan reports a leak or a double free otherwise). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/reload.h"

static char tmpdir[] = "/tmp/qf-test-reload.XXXXXX";

static const char running_text[] =
    "log_level info\n"
    "listener internet {\n\taddress 127.0.0.1\n\tport 5269\n}\n"
    "state_dir @/state\n"
    "status_socket @/qf.sock\n"
    "resolver {\n\tforwarder 127.0.0.53\n\ttimeout 3s\n\tcache_entries 100\n}\n"
    "tls {\n\tticket_rotation 1h\n\tticket_lifetime 1h\n}\n"
    "limits {\n\tqueue_bytes 1m\n}\n"
    "timeouts {\n\tretry 90s\n}\n"
    "domain example.net { }\n";

/* the same with every kind of change: restart-only ones and reloadable ones */
static const char next_text[] =
    "log_level debug\n"
    "listener internet {\n\taddress 127.0.0.1\n\tport 5279\n}\n"
    "state_dir @/elsewhere\n"
    "status_socket @/other.sock\n"
    "resolver {\n\tforwarder 127.0.0.54\n\tforwarder 127.0.0.55\n\ttimeout 3s\n"
    "\tcache_entries 100\n}\n"
    "tls {\n\tticket_rotation 2h\n\tticket_lifetime 2h\n\tsession_store off\n}\n"
    "limits {\n\tqueue_bytes 2m\n}\n"
    "timeouts {\n\tretry 10s\n}\n"
    "domain example.net { }\n"
    "domain example.org { }\n";

/* Write text (with "@" replaced by the scratch directory) to DIR/name, load it. */
static struct config *
load_text(const char *name, const char *text)
{
	char path[256];
	struct config *cfg = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	assert_non_null(f = fopen(path, "w"));
	for (const char *p = text; *p != '\0'; p++)
		if (*p == '@')
			fputs(tmpdir, f);
		else
			fputc(*p, f);
	assert_int_equal(fclose(f), 0);
	if (config_load(path, stderr, &cfg) != 0)
		fail_msg("%s does not load", path);
	return cfg;
}

static void
test_keep_fixed(void **state)
{
	struct config *run = load_text("run.conf", running_text);
	struct config *next = load_text("next.conf", next_text);
	char *text = NULL, want[512];
	size_t len = 0;
	FILE *warn;

	(void)state;
	assert_non_null(warn = open_memstream(&text, &len));
	assert_int_equal(reload_keep_fixed(run, next, warn), 5);
	fclose(warn);
	/* restart-only: back to the running values, each said once */
	assert_string_equal(next->state_dir, run->state_dir);
	assert_string_equal(next->status_socket, run->status_socket);
	assert_int_equal(next->n_forwarders, 1);
	assert_string_equal(next->forwarders[0], "127.0.0.53");
	assert_int_equal(next->tls_ticket_rotation_ms, 3600 * 1000);
	assert_true(next->tls_session_store);
	snprintf(want, sizeof(want), "warning: %s/next.conf: state_dir changed: takes effect "
	    "at the next restart", tmpdir);
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, ": status_socket changed"));
	assert_non_null(strstr(text, ": resolver changed"));
	assert_non_null(strstr(text, ": tls.ticket_rotation changed"));
	assert_non_null(strstr(text, ": tls.session_store/session_store_entries changed"));
	assert_null(strstr(text, "log_level"));
	free(text);
	/* reloadable: the new values */
	assert_int_equal(next->log_level, LOG_DEBUG);
	assert_int_equal(next->queue_bytes, 2 * 1024 * 1024);
	assert_int_equal(next->retry_ms, 10 * 1000);
	assert_int_equal(next->tls_ticket_lifetime_ms, 2 * 3600 * 1000);
	assert_true(config_is_local(next, "example.org"));
	/* nothing changed: nothing said */
	assert_int_equal(reload_keep_fixed(run, next, NULL), 0);
	config_free(run);
	config_free(next);
}

static void
test_hold_release(void **state)
{
	struct config *cfg = load_text("run.conf", running_text);
	struct config fixed;

	(void)state;
	assert_int_equal(cfg->refs, 1);
	assert_ptr_equal(config_hold(cfg), cfg);   /* a stream opened under it */
	config_release(cfg);                         /* the reload replaced it */
	assert_int_equal(cfg->refs, 1);
	assert_string_equal(cfg->domains->name, "example.net");  /* still there */
	config_release(cfg);                         /* the stream ended: freed */
	/* a config not from config_load is not counted (and never freed) */
	memset(&fixed, 0, sizeof(fixed));
	config_hold(&fixed);
	config_release(&fixed);
	config_release(&fixed);
	assert_int_equal(fixed.refs, 0);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keep_fixed),
		cmocka_unit_test(test_hold_release),
	};

	log_set_level(getenv("QF_TEST_DEBUG") ? LOG_TRACE : LOG_ERR);
	return cmocka_run_group_tests(tests, setup, teardown);
}
