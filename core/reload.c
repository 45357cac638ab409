/* core/reload.c - re-read the configuration while running (SIGHUP, "quickfedctl reload").
 * SPDX-License-Identifier: ISC
 * main.c calls reload_init() with the config it started with; SIGHUP and the status
 * command "reload" call reload_run(). A reload reads the file into a new config, keeps
 * the restart-only keywords at their running values (reload_keep_fixed), builds the TLS
 * credentials and binds the new listeners, and only when all succeeded makes the new
 * config the one in effect: modules decide with it from then on, while each stream keeps
 * the config it was opened with (a reference, config_hold in s2s/link.c), so the
 * replaced config is freed with the last stream opened under it. The event loop waits
 * only for the file reads. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "../s2s/link.h"
#include "../s2s/listener.h"
#include "../s2s/route.h"
#include "../tls/tls.h"
#include "config.h"
#include "log.h"
#include "notify.h"
#include "reload.h"
#include "status.h"

static struct ev_loop *loop;
static struct config *running;      /* in effect: one reference held here */
static struct tls_ctx *tls;
static ev_signal sig_hup;
static bool stopping;
static unsigned long generation;    /* reloads done */

static void hup_cb(EV_P_ ev_signal *, int);
static int status_reload(void *, const char *, struct buf *);
static bool str_differs(const char *, const char *);
static bool keep_str(char **, const char *);
static void log_lines(enum log_level, const char *, const char *);

void
reload_init(struct ev_loop *l, struct config *cfg, struct tls_ctx *t, struct status *st)
{
	loop = l;
	running = cfg;
	tls = t;
	ev_signal_init(&sig_hup, hup_cb, SIGHUP);
	ev_signal_start(loop, &sig_hup);
	if (st != NULL)
		status_register(st, "reload",
		    "reload: re-read the configuration file, certificates and keys now (as "
		    "SIGHUP does); answers reload=ok, or the errors and the configuration in "
		    "effect stays",
		    status_reload, NULL);
}

const struct config *
reload_config(void)
{
	return running;
}

void
reload_shutdown(void)
{
	stopping = true;
}

void
reload_free(void)
{
	if (loop != NULL)
		ev_signal_stop(loop, &sig_hup);
	config_release(running);
	running = NULL;
}

static bool
str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

/* *dst becomes a copy of src when they differ; true then. */
static bool
keep_str(char **dst, const char *src)
{
	char *c = NULL;

	if (!str_differs(*dst, src))
		return false;
	if (src != NULL && (c = strdup(src)) == NULL)
		fatalx("reload: out of memory");
	free(*dst);
	*dst = c;
	return true;
}

/* The HTTP metrics listeners (core/metrics_http.c) are opened once, at start. */
static bool
metrics_listeners_differ(const struct config *a, const struct config *b)
{
	size_t i = 0, j = 0;

	for (;;) {
		while (i < a->n_listeners && a->listeners[i].kind != CFG_LISTEN_METRICS)
			i++;
		while (j < b->n_listeners && b->listeners[j].kind != CFG_LISTEN_METRICS)
			j++;
		if (i == a->n_listeners || j == b->n_listeners)
			return i != a->n_listeners || j != b->n_listeners;
		if (a->listeners[i].port != b->listeners[j].port ||
		    a->listeners[i].max_connections != b->listeners[j].max_connections ||
		    str_differs(a->listeners[i].address, b->listeners[j].address))
			return true;
		i++;
		j++;
	}
}

int
reload_keep_fixed(const struct config *run, struct config *next, FILE *warn)
{
	const char *what[8];
	int n = 0;
	bool res = false;

	if (keep_str(&next->state_dir, run->state_dir))
		what[n++] = "state_dir";
	if (keep_str(&next->status_socket, run->status_socket))
		what[n++] = "status_socket";
	if (keep_str(&next->dialback_secret, run->dialback_secret))
		what[n++] = "dialback_secret";
	if (keep_str(&next->tls_ticket_key_file, run->tls_ticket_key_file))
		what[n++] = "tls.ticket_key_file";
	if (next->tls_session_store != run->tls_session_store ||
	    next->tls_store_entries != run->tls_store_entries) {
		next->tls_session_store = run->tls_session_store;
		next->tls_store_entries = run->tls_store_entries;
		what[n++] = "tls.session_store/session_store_entries";
	}
	if (next->tls_ticket_rotation_ms != run->tls_ticket_rotation_ms) {
		next->tls_ticket_rotation_ms = run->tls_ticket_rotation_ms;
		what[n++] = "tls.ticket_rotation";
	}
	/* the resolver block: libunbound's context, the cache and its file are made once */
	res = next->n_forwarders != run->n_forwarders;
	for (size_t i = 0; !res && i < run->n_forwarders; i++)
		res = str_differs(next->forwarders[i], run->forwarders[i]);
	if (res) {
		for (size_t i = 0; i < next->n_forwarders; i++)
			free(next->forwarders[i]);
		next->n_forwarders = 0;
		for (size_t i = 0; i < run->n_forwarders; i++)
			if ((next->forwarders[next->n_forwarders++] = strdup(run->forwarders[i]))
			    == NULL)
				fatalx("reload: out of memory");
	}
	res |= keep_str(&next->trust_anchor_file, run->trust_anchor_file);
	res |= keep_str(&next->dns_cache_file, run->dns_cache_file);
	if (next->dnssec != run->dnssec || next->dns_timeout_ms != run->dns_timeout_ms ||
	    next->dns_max_queries != run->dns_max_queries ||
	    next->dns_cache_min_ttl_ms != run->dns_cache_min_ttl_ms ||
	    next->dns_cache_max_ttl_ms != run->dns_cache_max_ttl_ms ||
	    next->dns_serve_stale_ms != run->dns_serve_stale_ms ||
	    next->dns_cache_entries != run->dns_cache_entries ||
	    next->dns_auto_trust_anchor != run->dns_auto_trust_anchor) {
		next->dnssec = run->dnssec;
		next->dns_timeout_ms = run->dns_timeout_ms;
		next->dns_max_queries = run->dns_max_queries;
		next->dns_cache_min_ttl_ms = run->dns_cache_min_ttl_ms;
		next->dns_cache_max_ttl_ms = run->dns_cache_max_ttl_ms;
		next->dns_serve_stale_ms = run->dns_serve_stale_ms;
		next->dns_cache_entries = run->dns_cache_entries;
		next->dns_auto_trust_anchor = run->dns_auto_trust_anchor;
		res = true;
	}
	if (res)
		what[n++] = "resolver";
	for (int i = 0; warn != NULL && i < n; i++)
		fprintf(warn, "warning: %s: %s changed: takes effect at the next restart, the running "
		    "value is kept\n", next->path, what[i]);
	if (metrics_listeners_differ(run, next)) {
		if (warn != NULL)
			fprintf(warn, "warning: %s: listener metrics changed: takes effect at the next "
			    "restart (the running metrics listeners stay as they are)\n", next->path);
		n++;
	}
	return n;
}

/* Each line of text to the log, prefixed. */
static void
log_lines(enum log_level lvl, const char *prefix, const char *text)
{
	const char *p = text, *nl;

	while (p != NULL && *p != '\0') {
		nl = strchr(p, '\n');
		log_msg(lvl, "%s%.*s", prefix, (int)(nl != NULL ? nl - p : (long)strlen(p)), p);
		p = nl != NULL ? nl + 1 : NULL;
	}
}

int
reload_run(struct buf *out)
{
	struct config *next = NULL;
	char *errtext = NULL, *warntext = NULL;
	size_t errlen = 0, warnlen = 0;
	FILE *errs, *warn;
	struct timespec ts;
	char msg[64];
	int nerr, rc = -1;

	if (stopping) {
		if (out != NULL)
			buf_puts(out, "reload refused: quickfed is shutting down\n");
		log_warnx("reload refused: shutting down");
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
	notify_send(msg);
	log_info("reload: reading %s", running->path);
	if ((errs = open_memstream(&errtext, &errlen)) == NULL ||
	    (warn = open_memstream(&warntext, &warnlen)) == NULL)
		fatalx("reload: out of memory");
	nerr = config_load(running->path, errs, &next);
	if (nerr == 0) {
		reload_keep_fixed(running, next, warn);
		if (listener_reload_prepare(next, errs) == -1) {
			nerr = 1;
		} else if (tls_ctx_reload(tls, next, errs) == -1) {
			listener_reload_abort(next);
			nerr = 1;
		}
	}
	fclose(errs);
	fclose(warn);
	if (nerr > 0) {
		log_lines(LOG_WARN, "reload refused: ", errtext);
		log_warnx("reload refused: the configuration in effect is unchanged");
		if (out != NULL) {
			buf_printf(out, "reload refused, the configuration in effect is "
			    "unchanged:\n%s", errtext);
		}
		config_free(next);
	} else {
		const struct config *old = running;

		running = next;
		listener_reload_commit(next);
		link_set_config(next);
		route_set_config(next);
		log_set_level((enum log_level)next->log_level);
		config_release(old);   /* freed once no stream opened under it remains */
		generation++;
		log_lines(LOG_WARN, "reload ", warntext);
		log_info("reload: done (%lu since start); streams already open keep the "
		    "configuration they were opened with", generation);
		if (out != NULL)
			buf_printf(out, "reload=ok\nreloads=%lu\n%s", generation, warntext);
		rc = 0;
	}
	free(errtext);
	free(warntext);
	notify_send("READY=1\nSTATUS=listening");
	return rc;
}

static void
hup_cb(EV_P_ ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	log_info("signal SIGHUP: reload");
	(void)reload_run(NULL);
}

static int
status_reload(void *arg, const char *args, struct buf *out)
{
	(void)arg;
	if (args != NULL && args[0] != '\0') {
		buf_puts(out, "reload takes no arguments\n");
		return -1;
	}
	return reload_run(out);
}
