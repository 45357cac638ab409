/* tests/unit/test_admit.c - unit tests for connection admission (s2s/admit.c).
 * SPDX-License-Identifier: ISC
 * Drives the per-listener, internet-wide and per-address limits and the choice of the
 * connection to shed with fake owners (a flag says "authenticated") and virtual time;
 * no sockets. Each test starts from admit_init and ends with every record released
 * and admit_free_all, so ASan sees any leak. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "s2s/admit.h"

/* A fake connection: the predicate reads its flag. */
struct owner {
	bool protected;   /* authenticated (or closing) */
	struct admit_entry *e;
};

static bool
fake_protected(void *owner)
{
	return ((struct owner *)owner)->protected;
}

static struct sockaddr_storage
addr(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	} else {
		assert_int_equal(inet_pton(AF_INET6, ip,
		    &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
	}
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

/* Accept the way listener.c does: room (shedding the victim if told), address, add. */
static void
add(struct admit_listener *al, struct owner *o, const char *ip)
{
	struct sockaddr_storage ss = addr(ip, 40000);

	o->e = admit_add(al, SA(ss), o);
	assert_non_null(o->e);
	assert_ptr_equal(admit_owner(o->e), o);
}

static void
release(struct owner *o)
{
	admit_release(o->e);
	o->e = NULL;
}

/* Each listener counts its own connections; a local listener at its limit is full,
 * never sheds, and the internet side does not count it. */
static void
test_listener_limits(void **state)
{
	struct admit_listener *inet, *local;
	struct owner o[6] = { { 0 } };
	struct sockaddr_storage lo = addr("127.0.0.1", 1);
	struct admit_entry *v;

	admit_init(100, 100, fake_protected);
	inet = admit_listener_new("internet:0.0.0.0:5269", 3, true);
	local = admit_listener_new("local:127.0.0.1:5270", 2, false);
	assert_string_equal(admit_listener_name(local), "local:127.0.0.1:5270");
	assert_int_equal(admit_listener_max(local), 2);

	add(local, &o[0], "127.0.0.1");
	assert_int_equal(admit_room(local, &v), ADMIT_ROOM);
	assert_null(v);
	add(local, &o[1], "127.0.0.1");
	assert_int_equal(admit_listener_count(local), 2);
	assert_int_equal(admit_room(local, &v), ADMIT_FULL);   /* unauthenticated: no shed */
	assert_null(v);
	assert_int_equal(admit_internet_count(), 0);
	assert_int_equal(admit_source_count(SA(lo)), 0);   /* no per-address count */
	assert_int_equal(admit_sources(), 0);

	/* the internet listener is unaffected by the full local one, and vice versa */
	add(inet, &o[2], "192.0.2.1");
	add(inet, &o[3], "192.0.2.2");
	assert_int_equal(admit_room(inet, &v), ADMIT_ROOM);
	add(inet, &o[4], "192.0.2.3");
	assert_int_equal(admit_internet_count(), 3);
	assert_int_equal(admit_room(inet, &v), ADMIT_SHED);
	assert_ptr_equal(v, o[2].e);                        /* the oldest */
	release(&o[1]);
	assert_int_equal(admit_room(local, &v), ADMIT_ROOM);
	release(&o[2]);                                     /* shed: freed by its owner */
	assert_int_equal(admit_room(inet, &v), ADMIT_ROOM);
	assert_int_equal(admit_listener_count(inet), 2);

	release(&o[0]);
	release(&o[3]);
	release(&o[4]);
	assert_int_equal(admit_internet_count(), 0);
	assert_int_equal(admit_sources(), 0);
	admit_listener_close(inet);
	admit_listener_close(local);
	admit_free_all();
}

/* The victim is the oldest connection that is not protected; authenticated ones are
 * never chosen, and when every one is, the listener is full. */
static void
test_shed_oldest_unauthenticated(void **state)
{
	struct admit_listener *inet;
	struct owner o[5] = { { 0 } };
	struct admit_entry *v;

	admit_init(100, 100, fake_protected);
	inet = admit_listener_new("internet", 4, true);
	for (int i = 0; i < 4; i++)
		add(inet, &o[i], "192.0.2.1");
	o[0].protected = true;    /* authenticated: stays */
	o[2].protected = true;
	assert_int_equal(admit_room(inet, &v), ADMIT_SHED);
	assert_ptr_equal(v, o[1].e);
	release(&o[1]);
	add(inet, &o[4], "192.0.2.9");
	assert_int_equal(admit_room(inet, &v), ADMIT_SHED);
	assert_ptr_equal(v, o[3].e);                         /* older than o[4] */
	release(&o[3]);
	add(inet, &o[1], "192.0.2.9");
	assert_int_equal(admit_room(inet, &v), ADMIT_SHED);
	assert_ptr_equal(v, o[4].e);
	o[4].protected = true;
	o[1].protected = true;
	assert_int_equal(admit_room(inet, &v), ADMIT_FULL);  /* all authenticated: pause */
	assert_null(v);
	/* a protected connection closing makes room as usual */
	release(&o[2]);
	assert_int_equal(admit_room(inet, &v), ADMIT_ROOM);
	release(&o[0]);
	release(&o[1]);
	release(&o[4]);
	admit_listener_close(inet);
	admit_free_all();
}

/* The internet-wide cap counts internet and direct_tls listeners together and sheds
 * the oldest of both; the local listener is outside it. */
static void
test_internet_cap(void **state)
{
	struct admit_listener *starttls, *direct, *local;
	struct owner o[7] = { { 0 } };
	struct admit_entry *v;

	admit_init(4, 100, fake_protected);
	starttls = admit_listener_new("internet", 10, true);
	direct = admit_listener_new("direct_tls", 10, true);
	local = admit_listener_new("local", 10, false);
	assert_int_equal(admit_internet_max(), 4);
	add(direct, &o[0], "2001:db8::1");
	add(starttls, &o[1], "192.0.2.1");
	add(direct, &o[2], "2001:db8::2");
	add(starttls, &o[3], "192.0.2.2");
	assert_int_equal(admit_internet_count(), 4);
	/* starttls has room of its own (2 of 10) but the cap is reached: the oldest
	 * unauthenticated connection of the internet side goes, on the other listener */
	assert_int_equal(admit_room(starttls, &v), ADMIT_SHED);
	assert_ptr_equal(v, o[0].e);
	o[0].protected = true;
	assert_int_equal(admit_room(starttls, &v), ADMIT_SHED);
	assert_ptr_equal(v, o[1].e);
	/* the local listener accepts whatever the internet side does */
	add(local, &o[4], "127.0.0.1");
	add(local, &o[5], "127.0.0.1");
	assert_int_equal(admit_room(local, &v), ADMIT_ROOM);
	o[1].protected = o[2].protected = o[3].protected = true;
	assert_int_equal(admit_room(direct, &v), ADMIT_FULL);
	assert_int_equal(admit_room(local, &v), ADMIT_ROOM);
	release(&o[3]);
	assert_int_equal(admit_room(direct, &v), ADMIT_ROOM);
	for (int i = 0; i < 6; i++)
		if (o[i].e != NULL)
			release(&o[i]);
	admit_listener_close(starttls);
	admit_listener_close(direct);
	admit_listener_close(local);
	admit_free_all();
}

/* connections_per_address: IPv4 per address, IPv6 per /64, IPv4-mapped as IPv4, all
 * internet listeners together; refusal lines at most once per 10 s per source. */
static void
test_per_address(void **state)
{
	struct admit_listener *inet, *direct, *local;
	struct owner o[8] = { { 0 } };
	struct sockaddr_storage a1 = addr("192.0.2.1", 1), mapped = addr("::ffff:192.0.2.1", 2);
	struct sockaddr_storage v6a = addr("2001:db8:1:2::1", 3);
	struct sockaddr_storage v6b = addr("2001:db8:1:2:ffff:ffff:ffff:9", 4);
	struct sockaddr_storage v6c = addr("2001:db8:1:3::1", 5), a2 = addr("192.0.2.2", 6);
	struct admit_refusal r;
	char s[64];

	admit_init(100, 2, fake_protected);
	inet = admit_listener_new("internet", 100, true);
	direct = admit_listener_new("direct_tls", 100, true);
	local = admit_listener_new("local", 100, false);

	assert_true(admit_source_ok(inet, SA(a1), 100.0, &r));
	add(inet, &o[0], "192.0.2.1");
	assert_true(admit_source_ok(direct, SA(mapped), 100.0, &r));
	add(direct, &o[1], "::ffff:192.0.2.1");           /* the same source */
	assert_int_equal(admit_source_count(SA(a1)), 2);
	assert_false(admit_source_ok(inet, SA(a1), 100.0, &r));
	assert_true(r.log);
	assert_int_equal(r.count, 2);
	assert_int_equal(r.suppressed, 0);
	assert_false(admit_source_ok(direct, SA(mapped), 101.0, &r));
	assert_false(r.log);                               /* within 10 s */
	assert_false(admit_source_ok(inet, SA(a1), 109.9, &r));
	assert_false(r.log);
	assert_false(admit_source_ok(inet, SA(a1), 110.0, &r));
	assert_true(r.log);
	assert_int_equal(r.suppressed, 2);
	/* the local listener has no per-address limit and does not count */
	assert_true(admit_source_ok(local, SA(a1), 110.0, &r));
	add(local, &o[2], "192.0.2.1");
	assert_int_equal(admit_source_count(SA(a1)), 2);
	/* another address is fine */
	assert_true(admit_source_ok(inet, SA(a2), 110.0, &r));

	/* IPv6: per /64 */
	add(inet, &o[3], "2001:db8:1:2::1");
	add(inet, &o[4], "2001:db8:1:2:ffff:ffff:ffff:9");
	assert_int_equal(admit_source_count(SA(v6a)), 2);
	assert_false(admit_source_ok(inet, SA(v6b), 110.0, &r));
	assert_true(r.log);
	assert_true(admit_source_ok(inet, SA(v6c), 110.0, &r));
	admit_source_str(SA(v6b), s, sizeof(s));
	assert_string_equal(s, "2001:db8:1:2::/64");
	admit_source_str(SA(mapped), s, sizeof(s));
	assert_string_equal(s, "192.0.2.1");
	assert_int_equal(admit_sources(), 2);

	/* A source that was logged is remembered without connections, so closing and
	 * reopening does not earn another line within 10 s ... */
	release(&o[0]);
	release(&o[1]);
	assert_int_equal(admit_source_count(SA(a1)), 0);
	assert_int_equal(admit_sources(), 2);
	add(inet, &o[0], "192.0.2.1");
	add(inet, &o[1], "192.0.2.1");
	assert_false(admit_source_ok(inet, SA(a1), 115.0, &r));
	assert_false(r.log);
	assert_int_equal(r.suppressed, 0);
	release(&o[0]);
	release(&o[1]);
	/* ... and forgotten by the next sweep once the 10 s are over */
	assert_true(admit_source_ok(inet, SA(v6c), 121.0, &r));
	assert_int_equal(admit_sources(), 1);             /* the /64 still has two */
	release(&o[3]);
	release(&o[4]);
	assert_int_equal(admit_sources(), 1);             /* logged at 110: kept */
	assert_true(admit_source_ok(inet, SA(v6c), 131.0, &r));
	assert_int_equal(admit_sources(), 0);
	release(&o[2]);
	admit_listener_close(inet);
	admit_listener_close(direct);
	admit_listener_close(local);
	admit_free_all();
}

/* A closed listener's accounting lives until its last connection goes; many sources
 * grow the table; admit_free_all frees remembered sources. */
static void
test_lifetime_and_growth(void **state)
{
	static struct owner o[1000];
	struct admit_listener *inet;
	struct admit_refusal r;
	char ip[64];

	memset(o, 0, sizeof(o));
	admit_init(5000, 1, fake_protected);
	inet = admit_listener_new("internet", 5000, true);
	for (int i = 0; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "2001:db8:%x:%x::1", i / 7, i);
		add(inet, &o[i], ip);
	}
	assert_int_equal(admit_sources(), 1000);
	assert_int_equal(admit_internet_count(), 1000);
	for (int i = 0; i < 1000; i++) {
		struct sockaddr_storage ss;

		snprintf(ip, sizeof(ip), "2001:db8:%x:%x::77", i / 7, i);
		ss = addr(ip, 1);
		assert_int_equal(admit_source_count(SA(ss)), 1);
		if (i % 100 == 0) {
			assert_false(admit_source_ok(inet, SA(ss), 5.0, &r));
			assert_true(r.log);
		}
	}
	admit_listener_close(inet);      /* the socket is gone, the connections not */
	assert_int_equal(admit_listener_count(inet), 1000);
	for (int i = 0; i < 1000; i++)
		release(&o[i]);              /* the last one frees inet */
	assert_int_equal(admit_internet_count(), 0);
	assert_int_equal(admit_sources(), 10);   /* the ten logged ones, for their 10 s */
	admit_free_all();
	assert_int_equal(admit_sources(), 0);
	admit_release(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listener_limits),
		cmocka_unit_test(test_shed_oldest_unauthenticated),
		cmocka_unit_test(test_internet_cap),
		cmocka_unit_test(test_per_address),
		cmocka_unit_test(test_lifetime_and_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
