/* core/main.c - quickfed's entry point: arguments, start-up, signals, the event loop.
 * SPDX-License-Identifier: ISC
 * `quickfed -c FILE` runs in the foreground logging to stderr; `quickfed -t -c FILE`
 * checks the config and exits. SIGTERM/SIGINT shut down gracefully: listeners close,
 * queued stanzas are bounced, streams end with <system-shutdown/>, bounded in time.
 * SIGHUP reloads the configuration (core/reload.c). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>

#include "../core/config.h"
#include "../core/handle.h"
#include "../core/log.h"
#include "../core/loopwatch.h"
#include "../core/memtrim.h"
#include "../core/metrics.h"
#include "../core/metrics_http.h"
#include "../core/notify.h"
#include "../core/reload.h"
#include "../core/stats.h"
#include "../core/status.h"
#include "../dns/resolver.h"
#include "../s2s/admit.h"
#include "../s2s/backoff.h"
#include "../s2s/conn.h"
#include "../s2s/dialback.h"
#include "../s2s/link.h"
#include "../s2s/listener.h"
#include "../s2s/peercaps.h"
#include "../s2s/remotes.h"
#include "../s2s/route.h"
#include "../tls/tls.h"

static struct ev_loop *loop;
static ev_signal sig_term, sig_int;
static ev_timer shutdown_timer, shutdown_poll, trim_timer, state_timer;
static bool stopping;

static void
usage(void)
{
	fprintf(stderr, "usage: quickfed [-t] -c FILE\n"
	    "  -c FILE  configuration file\n"
	    "  -t       check the configuration and exit\n");
	exit(64);
}

static void
shutdown_poll_cb(EV_P_ ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	if (route_busy())
		return;   /* bounces still on their way to the local server */
	/* then the local server's streams end our direction (also those it opened
	 * meanwhile), read on until it closes them: what arrives is relayed or bounced.
	 * The local listener closes first: a stream the local server opened now would be
	 * cut by our exit with what it wrote on it; refused, it bounces what it holds
	 * (the links carrying our bounces to it are verified already) */
	listener_close_all();
	link_close_all(LINKS_LOCAL_IN);
	if (link_count_set(LINKS_LOCAL_IN) > 0)
		return;
	if (route_busy())
		return;
	listener_close_all();
	link_close_all(LINKS_ALL);
	if (conn_count() == 0)
		ev_break(EV_A, EVBREAK_ALL);
}

static void
shutdown_timer_cb(EV_P_ ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	log_warnx("shutdown: %lu connection(s) still open after the timeout, exiting",
	    conn_count());
	ev_break(EV_A, EVBREAK_ALL);
}

/* After a burst (many lookups, connections or stanzas at once) the heap keeps its peak
 * size: free pages go back to the system (core/memtrim.c, glibc malloc_trim) once the
 * traffic has been quiet for a whole tick (TRIM_TICK: no stanza, TLS handshake,
 * authentication, nor a connection gone quiet, which frees its parser and buffers 2 s
 * after its last input), or at most every TRIM_FORCE under steady traffic.
 * malloc_trim walks the whole heap with its locks held (3-4 ms with 1,000 idle links,
 * 60 MB of heap), and under traffic the heap is in use anyway. (An A/B of make
 * bench-synth at SYNTH_LAT_RATE=2000, 3 runs each, showed no difference in added p99
 * latency beyond the noise of a shared 2-CPU box: 0.2-2.3 ms with either rule.) */
#define TRIM_TICK  1.0     /* s */
#define TRIM_FORCE 300.0   /* s */

static void
trim_cb(EV_P_ ev_timer *w, int revents)
{
	static unsigned long last_sig;
	static bool dirty;         /* traffic since the last trim */
	static double last_trim = -1;
	unsigned long sig = qf_stats.stanzas_in + qf_stats.stanzas_out + qf_stats.bounces +
	    qf_stats.tls_handshakes + qf_stats.auth_external + qf_stats.auth_dialback +
	    qf_stats.auth_failures + qf_stats.conns_quieted;
	double now = ev_now(EV_A);

	(void)w;
	(void)revents;
	if (last_trim < 0)
		last_trim = now;
	if (sig != last_sig) {
		last_sig = sig;
		dirty = true;
		qf_stats.heap_trim_due = 1;
		if (now - last_trim < TRIM_FORCE)
			return;            /* busy: later, when quiet */
	}
	if (!dirty)
		return;                /* nothing since the last trim */
	dirty = false;
	last_trim = now;
	memtrim_heap();
	qf_stats.heap_trims++;
	qf_stats.heap_trim_due = 0;
}

/* Once a second: the client TLS session store's changes go to disk (one rewrite a
 * second however many handshakes completed). */
static void
state_cb(EV_P_ ev_timer *w, int revents)
{
	(void)revents;
	tls_ctx_sync(w->data);
}

static void
signal_cb(EV_P_ ev_signal *w, int revents)
{
	(void)revents;
	if (stopping) {
		log_warnx("second signal %d: exiting now", w->signum);
		ev_break(EV_A, EVBREAK_ALL);
		return;
	}
	stopping = true;
	reload_shutdown();
	log_info("signal %d: shutting down (%lu connection(s))", w->signum, conn_count());
	notify_send("STOPPING=1");
	/* the order that loses nothing: no new internet streams; internet links end (after
	 * their acks); once no route is busy (bounces delivered), the local server's streams
	 * end our direction and are read until it closes them, what arrives meanwhile being
	 * relayed or bounced over the links to it, which stay up (with the local listener,
	 * where the local server verifies them) until then (shutdown_poll_cb) */
	listener_close_internet();
	route_shutdown();
	link_close_all(LINKS_INTERNET);
	ev_timer_set(&shutdown_timer, reload_config()->shutdown_timeout_ms / 1000.0, 0.);
	ev_timer_start(EV_A, &shutdown_timer);
	ev_timer_start(EV_A, &shutdown_poll);
}

static int
status_peercaps(void *arg, const char *args, struct buf *out)
{
	(void)arg;
	(void)args;
	peercaps_format(out);
	return 0;
}

/* The configuration quickfed runs with (the last reload's), streamed: peers and domains
 * may be many. */
static int
status_config(void *arg, const char *args, struct buf *out, uint64_t *cursor)
{
	(void)arg;
	(void)args;
	return config_format(reload_config(), out, STATUS_RECORD_MAX, cursor);
}

static int
ensure_state_dir(const char *dir)
{
	struct stat sb;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		log_warn("cannot create state_dir %s", dir);
		return -1;
	}
	if (stat(dir, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
		log_warnx("state_dir %s is not a directory", dir);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	bool check_only = false;
	struct config *cfg = NULL;
	struct tls_ctx *tls = NULL;
	struct resolver *res = NULL;
	struct status *status = NULL;
	char secret_path[4096];
	int ch, nerr;

	while ((ch = getopt(argc, argv, "c:th")) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 't': check_only = true; break;
		default: usage();
		}
	}
	if (path == NULL || optind != argc)
		usage();
	nerr = config_load(path, stderr, &cfg);
	if (nerr > 0) {
		fprintf(stderr, "%s: %d error(s)\n", path, nerr);
		return 1;
	}
	if (check_only) {
		printf("%s: configuration ok\n", path);
		config_free(cfg);
		return 0;
	}
	log_set_level((enum log_level)cfg->log_level);
	signal(SIGPIPE, SIG_IGN);
	if (ensure_state_dir(cfg->state_dir) == -1)
		return 1;
	if (cfg->dialback_secret != NULL) {
		if (dialback_set_secret(cfg->dialback_secret, strlen(cfg->dialback_secret)) == -1)
			fatalx("bad dialback_secret");
	} else {
		snprintf(secret_path, sizeof(secret_path), "%s/dialback.secret", cfg->state_dir);
		if (dialback_load_or_create_secret(secret_path) == -1)
			fatalx("cannot set up the dialback secret in %s", secret_path);
	}
	if ((loop = ev_default_loop(EVFLAG_AUTO)) == NULL)
		fatalx("cannot initialise libev");
	if ((tls = tls_ctx_new(cfg)) == NULL)
		fatalx("cannot set up TLS");
	if ((res = resolver_new(loop, cfg)) == NULL)
		fatalx("cannot set up the resolver");
	if ((status = status_new(loop, cfg->status_socket)) == NULL)
		fatalx("cannot open the status socket %s", cfg->status_socket);
	snprintf(secret_path, sizeof(secret_path), "%s/peercaps", cfg->state_dir);
	peercaps_init(loop, secret_path, 86400);
	snprintf(secret_path, sizeof(secret_path), "%s/backoff", cfg->state_dir);
	backoff_init(loop, secret_path);
	status_register(status, "show peercaps",
	    "show peercaps: what each remote server supports (pipelining, EXTERNAL, dialback)",
	    status_peercaps, NULL);
	status_register_stream(status, "show config",
	    "show config: the configuration in effect, defaults included (no secrets)",
	    status_config, NULL);
	tls_register_status(tls, status);
	resolver_register_status(res, status);
	link_init(loop, cfg, tls, res, status);
	route_init(loop, cfg, res, status);
	if (listener_open_all(loop, cfg) == -1)
		fatalx("cannot open listeners");
	listener_register_status(status);
	/* metrics: the numbers of show stats, show dns, show tls, and per remote domain */
	if (metrics_add(route_emit, NULL) == -1 || metrics_add(resolver_emit, res) == -1 ||
	    metrics_add(tls_emit, tls) == -1 || metrics_add(remotes_emit, NULL) == -1 ||
	    metrics_register_status(status) == -1)
		fatalx("cannot set up the metrics");
	if (metrics_http_open_all(loop, cfg) == -1)
		fatalx("cannot open the metrics listener");
	reload_init(loop, cfg, tls, status);   /* owns cfg from here on */

	ev_signal_init(&sig_term, signal_cb, SIGTERM);
	ev_signal_init(&sig_int, signal_cb, SIGINT);
	ev_signal_start(loop, &sig_term);
	ev_signal_start(loop, &sig_int);
	ev_timer_init(&shutdown_timer, shutdown_timer_cb, cfg->shutdown_timeout_ms / 1000.0, 0.);
	ev_timer_init(&shutdown_poll, shutdown_poll_cb, 0.05, 0.05);
	ev_timer_init(&trim_timer, trim_cb, TRIM_TICK, TRIM_TICK);
	ev_timer_start(loop, &trim_timer);
	ev_timer_init(&state_timer, state_cb, 1., 1.);
	state_timer.data = tls;
	ev_timer_start(loop, &state_timer);
	loopwatch_start(loop);
	log_info("quickfed started: config=%s state_dir=%s status=%s", path, cfg->state_dir,
	    cfg->status_socket);
	/* Listeners bound and listening, status socket answering from the first loop turn:
	 * a service manager (systemd Type=notify) may now start what depends on us. */
	notify_send("READY=1\nSTATUS=listening");

	ev_run(loop, 0);
	loopwatch_stop(loop);

	log_info("quickfed stopped: %lu stanza(s) in, %lu out, %lu bounce(s)",
	    qf_stats.stanzas_in, qf_stats.stanzas_out, qf_stats.bounces);
	listener_close_all();
	metrics_http_close_all();
	metrics_clear();
	conn_destroy_all();
	admit_free_all();
	route_free_all();
	handle_free_all();
	peercaps_free();
	status_free(status);
	resolver_free(res);
	tls_ctx_free(tls);
	reload_free();
	ev_loop_destroy(loop);
	return 0;
}
