/* tests/unit/test_listener.c - which peers the local listener serves (s2s/listener.c).
 * SPDX-License-Identifier: ISC
 * The local listener is bound to a loopback address, yet a connection from another
 * address of the host can reach it; listener_loopback_peer() decides on accept. A table
 * of IPv4, IPv6 and IPv4-mapped peers, plus other families and short lengths. And the
 * plan of a reload (listener_plan): which listeners stay open, which open, which close. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cmocka.h>

#include "core/config.h"
#include "s2s/listener.h"

static bool
peer_ok(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(40000);
		return listener_loopback_peer((struct sockaddr *)s4, sizeof(*s4));
	}
	assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(40000);
	return listener_loopback_peer((struct sockaddr *)s6, sizeof(*s6));
}

static void
test_loopback_peers(void **state)
{
	static const char *const yes[] = {
		"127.0.0.1", "127.0.1.1", "127.255.255.254", "::1",
		"::ffff:127.0.0.1", "::ffff:127.9.9.9",   /* IPv4 peers on a dual-stack socket */
	};
	static const char *const no[] = {
		"10.9.9.9", "192.0.2.1", "128.0.0.1", "126.255.255.255", "0.0.0.0",
		"255.255.255.255", "::", "::2", "fe80::1", "2001:db8::1", "::ffff:10.0.0.1",
		"::ffff:128.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!peer_ok(yes[i]))
			fail_msg("%s refused", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (peer_ok(no[i]))
			fail_msg("%s accepted", no[i]);
}

static void
test_other_families(void **state)
{
	struct sockaddr_un sun;
	struct sockaddr_in s4;

	(void)state;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_false(listener_loopback_peer((struct sockaddr *)&sun, sizeof(sun)));
	/* an address shorter than its family needs is not trusted */
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	s4.sin_addr.s_addr = htonl(0x7f000001);
	assert_true(listener_loopback_peer((struct sockaddr *)&s4, sizeof(s4)));
	assert_false(listener_loopback_peer((struct sockaddr *)&s4, 4));
}

/* A reload's plan: listeners with the same address (by value) and port stay open, the
 * kind and limit do not matter; the others are opened, and what no one keeps closes. */
static void
test_reload_plan(void **state)
{
	static const struct cfg_listener cur[] = {
		{ CFG_LISTEN_INTERNET, "0.0.0.0", 5269, 4096, 1 },
		{ CFG_LISTEN_LOCAL, "127.0.0.1", 5270, 1024, 2 },
		{ CFG_LISTEN_DIRECT_TLS, "::", 5223, 4096, 3 },
		{ CFG_LISTEN_INTERNET, "::1", 5269, 4096, 4 },
	};
	static const struct cfg_listener want[] = {
		{ CFG_LISTEN_LOCAL, "127.0.0.1", 5270, 7, 1 },          /* same: kept */
		{ CFG_LISTEN_INTERNET, "0.0.0.0", 5279, 4096, 2 },      /* other port: opened */
		{ CFG_LISTEN_INTERNET, "0:0::1", 5269, 4096, 3 },       /* ::1 spelt otherwise */
		{ CFG_LISTEN_INTERNET, "::", 5223, 4096, 4 },           /* kind changed: kept */
		{ CFG_LISTEN_INTERNET, "127.0.0.2", 5270, 4096, 5 },    /* other address */
	};
	static const int expect[] = { 1, -1, 3, 2, -1 };
	int from[5];
	bool kept[4] = { false };

	(void)state;
	listener_plan(cur, 4, want, 5, from);
	for (size_t j = 0; j < 5; j++) {
		if (from[j] != expect[j])
			fail_msg("want[%zu]: from %d, expected %d", j, from[j], expect[j]);
		if (from[j] >= 0)
			kept[from[j]] = true;
	}
	assert_false(kept[0]);   /* 0.0.0.0:5269 is closed */
	/* nothing current: everything is opened; nothing wanted: nothing kept */
	listener_plan(NULL, 0, want, 2, from);
	assert_int_equal(from[0], -1);
	assert_int_equal(from[1], -1);
	listener_plan(cur, 4, NULL, 0, from);
	/* a current listener is kept at most once */
	{
		static const struct cfg_listener twice[] = {
			{ CFG_LISTEN_LOCAL, "127.0.0.1", 5270, 7, 1 },
			{ CFG_LISTEN_LOCAL, "127.0.0.1", 5270, 7, 2 },
		};

		listener_plan(cur, 4, twice, 2, from);
		assert_int_equal(from[0], 1);
		assert_int_equal(from[1], -1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loopback_peers),
		cmocka_unit_test(test_other_families),
		cmocka_unit_test(test_reload_plan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
