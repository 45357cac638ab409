/* tests/unit/test_connect.c - Happy Eyeballs target ordering and attempt racing.
 * SPDX-License-Identifier: ISC
 * Drives s2s/connect.c with fake attempts (no sockets): the RFC 8305 family
 * interleaving per SRV target, the staggered start on a real libev timer, the winner
 * closing the others, failures starting the next attempt at once, and the retry order
 * after a winner fails later. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ev.h>

#include "../../s2s/connect.h"

static void
mk(struct resolve_target *t, const char *host, unsigned port, const char *ip)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->host, sizeof(t->host), "%s", host);
	t->port = (uint16_t)port;
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->addr;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(t->port);
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
		t->addrlen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&t->addr;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(t->port);
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
		t->addrlen = sizeof(*s4);
	}
}

static const char *
ip_of(const struct resolve_target *t, char *s, size_t len)
{
	if (t->addr.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&t->addr)->sin6_addr, s, len);
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&t->addr)->sin_addr, s, len);
	return s;
}

/* "host/ip" for each target, space separated */
static void
order_str(const struct resolve_target *t, size_t n, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			strncat(out, " ", len - strlen(out) - 1);
		strncat(out, t[i].host, len - strlen(out) - 1);
		strncat(out, "/", len - strlen(out) - 1);
		strncat(out, ip_of(&t[i], ip, sizeof(ip)), len - strlen(out) - 1);
	}
}

static void
test_interleave_per_srv_target(void **state)
{
	struct resolve_target t[9];
	char s[512];

	(void)state;
	/* the resolver's order: SRV order, IPv6 before IPv4 per host */
	mk(&t[0], "a.x", 5269, "2001:db8::1");
	mk(&t[1], "a.x", 5269, "2001:db8::2");
	mk(&t[2], "a.x", 5269, "192.0.2.1");
	mk(&t[3], "a.x", 5269, "192.0.2.2");
	mk(&t[4], "a.x", 5269, "192.0.2.3");
	mk(&t[5], "b.x", 5269, "192.0.2.9");    /* next SRV target: a run of its own */
	mk(&t[6], "b.x", 5269, "2001:db8::9");  /* IPv4 listed first: IPv6 still leads */
	mk(&t[7], "b.x", 5270, "2001:db8::a");  /* same host, other port: another run */
	mk(&t[8], "b.x", 5270, "192.0.2.10");
	connect_interleave(t, 9);
	order_str(t, 9, s, sizeof(s));
	assert_string_equal(s,
	    "a.x/2001:db8::1 a.x/192.0.2.1 a.x/2001:db8::2 a.x/192.0.2.2 a.x/192.0.2.3 "
	    "b.x/2001:db8::9 b.x/192.0.2.9 b.x/2001:db8::a b.x/192.0.2.10");
}

static void
test_interleave_single_family_and_tls_mode(void **state)
{
	struct resolve_target t[4];
	char s[512];

	(void)state;
	mk(&t[0], "a.x", 5269, "192.0.2.1");
	mk(&t[1], "a.x", 5269, "192.0.2.2");
	mk(&t[2], "a.x", 5269, "192.0.2.3");
	mk(&t[3], "a.x", 5269, "2001:db8::1");
	t[3].direct_tls = true;   /* xmpps target on the same host and port: separate */
	connect_interleave(t, 4);
	order_str(t, 4, s, sizeof(s));
	assert_string_equal(s, "a.x/192.0.2.1 a.x/192.0.2.2 a.x/192.0.2.3 a.x/2001:db8::1");
	assert_true(t[3].direct_tls);
	assert_false(t[0].direct_tls);
	connect_interleave(t, 0);   /* nothing to do, nothing touched */
}

/* ---- the race, with fake attempts ---- */

/* A fake attempt: connect.c holds links as opaque pointers; the owner's drop callback
 * detaches (route = NULL) and closes them. */
struct link {
	void *route;                /* the owner while attached */
	const char *dropped;        /* the reason it was dropped with, or NULL */
};

struct fake {
	struct ev_loop *loop;
	struct link conns[16];
	size_t n_started;
	char started[16][64];       /* the IP each attempt went to */
	bool fail_start[64];        /* attempt to this target index returns NULL */
	int exhausted;
	const struct resolve_target *base;
};

static struct link *
fake_attempt(void *owner, const struct resolve_target *t)
{
	struct fake *f = owner;
	struct link *c;
	char ip[INET6_ADDRSTRLEN];

	ip_of(t, ip, sizeof(ip));
	if (f->fail_start[ip[strlen(ip) - 1] - '0'])   /* keyed by the last digit */
		return NULL;
	assert_true(f->n_started < 16);
	c = &f->conns[f->n_started];
	memset(c, 0, sizeof(*c));
	c->route = f;
	snprintf(f->started[f->n_started], sizeof(f->started[0]), "%s", ip);
	f->n_started++;
	return c;
}

static void
fake_drop(void *owner, struct link *c, const char *reason)
{
	assert_ptr_equal(c->route, owner);
	c->route = NULL;
	c->dropped = reason;
}

static void
fake_exhausted(void *owner)
{
	((struct fake *)owner)->exhausted++;
}

static void
targets4(struct resolve_target *t)
{
	mk(&t[0], "s.x", 5269, "2001:db8::1");
	mk(&t[1], "s.x", 5269, "2001:db8::2");
	mk(&t[2], "s.x", 5269, "192.0.2.3");
	mk(&t[3], "s.x", 5269, "192.0.2.4");
}

/* run the loop until the attempt delay fired once more */
static void
wait_delay(struct fake *f, struct connector *cx)
{
	size_t before = f->n_started;
	double t0 = ev_time();

	assert_true(ev_is_active(&cx->delay));
	while (f->n_started == before && ev_time() - t0 < 2.0 && ev_is_active(&cx->delay))
		ev_run(f->loop, EVRUN_ONCE);
	assert_true(ev_time() - t0 >= 0.009);   /* not before the delay */
}

static void
test_staggered_start_and_winner(void **state)
{
	struct fake f = { 0 };
	struct connector cx;
	struct resolve_target t[4];

	(void)state;
	f.loop = ev_loop_new(EVFLAG_AUTO);
	targets4(t);
	connector_init(&cx, f.loop, 10, fake_attempt, fake_drop, fake_exhausted, &f);
	assert_int_equal(connector_set_targets(&cx, t, 4), 4);
	assert_int_equal(connector_next(&cx), 0);
	assert_int_equal(f.n_started, 1);
	assert_string_equal(f.started[0], "2001:db8::1");
	assert_true(connector_busy(&cx));

	wait_delay(&f, &cx);   /* the first did not connect within 10 ms */
	assert_int_equal(f.n_started, 2);
	assert_string_equal(f.started[1], "192.0.2.3");   /* families alternate */
	assert_int_equal(cx.n_att, 2);                    /* the first is kept */

	/* the second connects first: it wins, the first is detached and closed */
	assert_false(connector_connected(&cx, &f.conns[5]));   /* not an attempt */
	assert_true(connector_connected(&cx, &f.conns[1]));
	assert_null(f.conns[0].route);
	assert_ptr_equal(f.conns[1].route, &f);
	assert_int_equal(cx.n_att, 0);
	assert_int_equal(cx.lost, 1);
	assert_int_equal(cx.won_idx, 1);
	assert_false(connector_busy(&cx));                 /* no timer any more */

	/* the winner fails later (TLS, auth): the loser gets its turn, then the rest,
	 * never the winner again */
	assert_int_equal(connector_next(&cx), 0);
	assert_string_equal(f.started[2], "2001:db8::1");
	assert_int_equal(connector_attempt_closed(&cx, &f.conns[2]), 0);
	assert_string_equal(f.started[3], "2001:db8::2");  /* a failure: next at once */
	assert_int_equal(connector_attempt_closed(&cx, &f.conns[3]), 0);
	assert_string_equal(f.started[4], "192.0.2.4");
	assert_int_equal(connector_attempt_closed(&cx, &f.conns[4]), -1);
	assert_int_equal(f.n_started, 5);
	assert_false(connector_busy(&cx));
	assert_int_equal(f.exhausted, 0);
	/* the target list lives only while connecting: cancel frees it */
	assert_non_null(cx.t);
	connector_cancel(&cx, "test");
	assert_null(cx.t);
	assert_int_equal(cx.n, 0);
	ev_loop_destroy(f.loop);
}

static void
test_failures_skip_dead_and_rewind(void **state)
{
	struct fake f = { 0 };
	struct connector cx;
	struct resolve_target t[4];

	(void)state;
	f.loop = ev_loop_new(EVFLAG_AUTO);
	targets4(t);
	f.fail_start[2] = true;   /* 2001:db8::2 cannot even get a socket */
	connector_init(&cx, f.loop, 10, fake_attempt, fake_drop, fake_exhausted, &f);
	connector_set_targets(&cx, t, 4);   /* order ::1 .3 ::2 .4 */
	assert_int_equal(connector_next(&cx), 0);
	/* ::1 refused at once: .3 starts without waiting for the delay */
	assert_int_equal(connector_attempt_closed(&cx, &f.conns[0]), 0);
	assert_int_equal(f.n_started, 2);
	assert_string_equal(f.started[1], "192.0.2.3");
	assert_int_equal(connector_attempt_closed(&cx, &f.conns[7]), 1);   /* not ours */
	wait_delay(&f, &cx);      /* ::2 fails to start, so .4 is the racer */
	assert_int_equal(f.n_started, 3);
	assert_string_equal(f.started[2], "192.0.2.4");
	assert_true(connector_connected(&cx, &f.conns[2]));
	assert_null(f.conns[1].route);

	/* pipelining retry of the same target */
	connector_rewind(&cx, cx.won_idx);
	assert_int_equal(connector_next(&cx), 0);
	assert_string_equal(f.started[3], "192.0.2.4");
	/* now the retry fails: .3 lost the race earlier but never failed: tried again;
	 * ::1 and ::2 failed before and are skipped */
	assert_int_equal(connector_attempt_closed(&cx, &f.conns[3]), 0);
	assert_int_equal(f.n_started, 5);
	assert_string_equal(f.started[4], "192.0.2.3");

	/* cancel detaches every attempt and stops the timer */
	connector_cancel(&cx, "test");
	assert_null(f.conns[4].route);
	assert_false(connector_busy(&cx));
	assert_int_equal(cx.n_att, 0);
	ev_loop_destroy(f.loop);
}

static void
test_all_fail_to_start(void **state)
{
	struct fake f = { 0 };
	struct connector cx;
	struct resolve_target t[2];

	(void)state;
	f.loop = ev_loop_new(EVFLAG_AUTO);
	mk(&t[0], "s.x", 5269, "192.0.2.1");
	mk(&t[1], "s.x", 5269, "192.0.2.2");
	f.fail_start[1] = f.fail_start[2] = true;
	connector_init(&cx, f.loop, 10, fake_attempt, fake_drop, fake_exhausted, &f);
	connector_set_targets(&cx, t, 2);
	assert_int_equal(connector_next(&cx), -1);
	assert_int_equal(f.n_started, 0);
	assert_false(connector_busy(&cx));
	connector_set_targets(&cx, t, 0);
	assert_int_equal(connector_next(&cx), -1);
	connector_cancel(&cx, "test");
	ev_loop_destroy(f.loop);
}

/* More targets than attempts allowed in flight: the cap holds, the timer keeps going. */
static void
test_attempt_cap(void **state)
{
	struct fake f = { 0 };
	struct connector cx;
	struct resolve_target t[CONNECT_MAX_ATTEMPTS + 2];
	char ip[32];

	(void)state;
	f.loop = ev_loop_new(EVFLAG_AUTO);
	for (size_t i = 0; i < CONNECT_MAX_ATTEMPTS + 2; i++) {
		snprintf(ip, sizeof(ip), "192.0.2.%zu", 10 * (i + 1));   /* last digit 0 */
		mk(&t[i], "s.x", 5269, ip);
	}
	connector_init(&cx, f.loop, 10, fake_attempt, fake_drop, fake_exhausted, &f);
	connector_set_targets(&cx, t, CONNECT_MAX_ATTEMPTS + 2);
	assert_int_equal(connector_next(&cx), 0);
	for (size_t i = 1; i < CONNECT_MAX_ATTEMPTS; i++)
		wait_delay(&f, &cx);
	assert_int_equal(cx.n_att, CONNECT_MAX_ATTEMPTS);
	assert_int_equal(connector_next(&cx), 0);          /* full: nothing new */
	assert_int_equal(f.n_started, CONNECT_MAX_ATTEMPTS);
	assert_int_equal(connector_attempt_closed(&cx, &f.conns[0]), 0);
	assert_int_equal(f.n_started, CONNECT_MAX_ATTEMPTS + 1);
	connector_cancel(&cx, "test");
	for (size_t i = 1; i < f.n_started; i++)   /* [0] closed by itself */
		assert_null(f.conns[i].route);
	ev_loop_destroy(f.loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interleave_per_srv_target),
		cmocka_unit_test(test_interleave_single_family_and_tls_mode),
		cmocka_unit_test(test_staggered_start_and_winner),
		cmocka_unit_test(test_failures_skip_dead_and_rewind),
		cmocka_unit_test(test_all_fail_to_start),
		cmocka_unit_test(test_attempt_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
