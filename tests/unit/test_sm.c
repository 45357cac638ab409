/* tests/unit/test_sm.c - XEP-0198 counters and elements on one stream (s2s/sm.c).
 * SPDX-License-Identifier: ISC
 * Drives struct sm alone with the urn:xmpp:sm:3 elements a peer sends: enable and its
 * answers in both roles, what is counted when, <r/> and <a h/> (also malformed h and
 * an h above what was sent), the 2^32 wraparound, when an ack is asked for, and the
 * elements that arrive out of turn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "s2s/sm.h"
#include "s2s/xnode.h"

#define ENABLED "<enabled xmlns='urn:xmpp:sm:3'/>"
#define FAILED  "<failed xmlns='urn:xmpp:sm:3'><unexpected-request " \
	"xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
#define R       "<r xmlns='urn:xmpp:sm:3'/>"

/* One element from the peer; h (may be NULL) is the h attribute. The answer, if any,
 * is appended to out; *n and *why as sm_element left them. */
static enum sm_event
el(struct sm *m, const char *name, const char *h, bool may_enable, struct buf *out,
    uint32_t *n, const char **why)
{
	struct xnode *x = xnode_new(name, NS_SM);
	enum sm_event ev;

	assert_non_null(x);
	if (h != NULL)
		assert_int_equal(xnode_set_attr(x, "h", h), 0);
	*why = NULL;
	ev = sm_element(m, x, may_enable, out, n, why);
	xnode_free(x);
	return ev;
}

/* An <a h='h'/> from the peer: the event, with *n the stanzas it acknowledged. */
static enum sm_event
ack(struct sm *m, const char *h, uint32_t *n, const char **why)
{
	struct buf out;
	enum sm_event ev;

	buf_init(&out, 1024);
	ev = el(m, "a", h, false, &out, n, why);
	assert_int_equal(out.len, 0);        /* an <a/> is never answered */
	buf_free(&out);
	return ev;
}

/* An initiator whose <enable/> the peer answered <enabled/>. */
static void
initiator_on(struct sm *m)
{
	struct buf out;
	const char *why;
	uint32_t n;

	memset(m, 0, sizeof(*m));
	buf_init(&out, 1024);
	sm_enable(m, &out);
	assert_int_equal(el(m, "enabled", NULL, false, &out, &n, &why), SM_DONE);
	assert_true(m->on);
	buf_free(&out);
}

/* Receiver: <enable/> from an authenticated peer is answered <enabled/> and both sides
 * count from there; from one that may not (unauthenticated, policy), <failed/>. A
 * second <enable/> once on is refused too. */
static void
test_receiver_enable(void **state)
{
	struct sm m = { 0 };
	struct buf out;
	const char *why;
	uint32_t n = 99;

	(void)state;
	buf_init(&out, 1024);
	assert_int_equal(el(&m, "enable", NULL, false, &out, &n, &why), SM_DONE);
	assert_string_equal(out.data, FAILED);
	assert_int_equal(n, 0);
	assert_false(m.on);
	assert_false(sm_tracking(&m));
	buf_reset(&out);

	assert_int_equal(el(&m, "enable", NULL, true, &out, &n, &why), SM_DONE);
	assert_string_equal(out.data, ENABLED);
	assert_true(m.on);
	assert_true(sm_tracking(&m));
	assert_int_equal(m.in, 0);
	assert_int_equal(m.out, 0);
	buf_reset(&out);

	assert_int_equal(el(&m, "enable", NULL, true, &out, &n, &why), SM_DONE);
	assert_string_equal(out.data, FAILED);
	assert_true(m.on);                   /* the first one stands */
	buf_free(&out);
}

/* Initiator: sm_enable writes <enable/> once and counting starts with it (asked);
 * <enabled/> turns it on. Before asking, nothing sent is counted. */
static void
test_initiator_enable_and_counting(void **state)
{
	struct sm m = { 0 };
	struct buf out;
	const char *why;
	uint32_t n;

	(void)state;
	buf_init(&out, 1024);
	assert_false(sm_tracking(&m));
	sm_sent(&m);
	sm_sent(&m);
	assert_int_equal(m.out, 0);          /* not asked: not counted */
	assert_int_equal(sm_unacked(&m), 0);

	sm_enable(&m, &out);
	assert_string_equal(out.data, "<enable xmlns='urn:xmpp:sm:3'/>");
	assert_true(m.asked);
	assert_false(m.on);
	assert_true(sm_tracking(&m));
	buf_reset(&out);
	sm_enable(&m, &out);                 /* once only */
	assert_int_equal(out.len, 0);

	sm_sent(&m);                         /* sent behind <enable/>: the peer counts it */
	assert_int_equal(m.out, 1);
	assert_int_equal(sm_unacked(&m), 1);
	sm_handled(&m);                      /* ... but we count theirs only once on */
	assert_int_equal(m.in, 0);

	assert_int_equal(el(&m, "enabled", NULL, false, &out, &n, &why), SM_DONE);
	assert_true(m.on);
	assert_int_equal(m.out, 1);          /* kept across <enabled/> */
	sm_sent(&m);
	assert_int_equal(sm_unacked(&m), 2);
	sm_handled(&m);
	assert_int_equal(m.in, 1);
	buf_free(&out);
}

/* <r/> is answered with the count of stanzas handled since enabled; handled stanzas
 * before that do not count. */
static void
test_r_answered_with_h(void **state)
{
	struct sm m = { 0 };
	struct buf out;
	const char *why;
	uint32_t n;

	(void)state;
	buf_init(&out, 1024);
	sm_handled(&m);                      /* off: not counted */
	sm_handled(&m);
	assert_int_equal(el(&m, "enable", NULL, true, &out, &n, &why), SM_DONE);
	buf_reset(&out);
	assert_int_equal(el(&m, "r", NULL, false, &out, &n, &why), SM_DONE);
	assert_string_equal(out.data, "<a xmlns='urn:xmpp:sm:3' h='0'/>");
	buf_reset(&out);
	for (int i = 0; i < 3; i++)
		sm_handled(&m);
	assert_int_equal(el(&m, "r", NULL, false, &out, &n, &why), SM_DONE);
	assert_string_equal(out.data, "<a xmlns='urn:xmpp:sm:3' h='3'/>");
	assert_int_equal(n, 0);
	buf_reset(&out);
	/* near the top: the largest value prints whole */
	m.in = m.done = UINT32_MAX;
	assert_int_equal(el(&m, "r", NULL, false, &out, &n, &why), SM_DONE);
	assert_string_equal(out.data, "<a xmlns='urn:xmpp:sm:3' h='4294967295'/>");
	buf_reset(&out);
	sm_handled(&m);                      /* wraps to 0 (XEP-0198 §5) */
	assert_int_equal(el(&m, "r", NULL, false, &out, &n, &why), SM_DONE);
	assert_string_equal(out.data, "<a xmlns='urn:xmpp:sm:3' h='0'/>");
	buf_free(&out);
}

/* <a h/> acknowledges h minus the last h; a repeated h acknowledges nothing; an h
 * above what was sent is a protocol violation. */
static void
test_a_acknowledges(void **state)
{
	struct sm m;
	const char *why;
	uint32_t n;

	(void)state;
	initiator_on(&m);
	for (int i = 0; i < 5; i++)
		sm_sent(&m);
	assert_int_equal(ack(&m, "2", &n, &why), SM_ACKED);
	assert_int_equal(n, 2);
	assert_int_equal(sm_unacked(&m), 3);
	assert_int_equal(ack(&m, "2", &n, &why), SM_DONE);   /* nothing new */
	assert_int_equal(n, 0);
	assert_int_equal(ack(&m, "5", &n, &why), SM_ACKED);
	assert_int_equal(n, 3);
	assert_int_equal(sm_unacked(&m), 0);
	assert_null(why);

	assert_int_equal(ack(&m, "6", &n, &why), SM_ERROR);   /* only 5 were sent */
	assert_string_equal(why, "handled-count-too-high");
	assert_int_equal(n, 0);
	assert_int_equal(m.acked, 5);                          /* unchanged */
	/* below the last h: as far above what was sent, modulo 2^32 */
	assert_int_equal(ack(&m, "4", &n, &why), SM_ERROR);
	assert_string_equal(why, "handled-count-too-high");
}

/* h must be a plain decimal 32-bit number: no sign, no blanks, no hex, not empty, at
 * most 10 digits and at most 4294967295. Each bad one is an error and changes
 * nothing. */
static void
test_a_bad_h(void **state)
{
	static const char *bad[] = {
		"",
		"+1",
		"-1",
		" 1",
		"1 ",
		"0x1",
		"1a",
		"one",
		"1.0",
		"00000000001",      /* 11 digits, even if the value is small */
		"12345678901",      /* 11 digits */
		"4294967296",       /* 2^32 */
		"99999999999999999999999",
	};
	struct sm m;
	const char *why;
	uint32_t n;

	(void)state;
	initiator_on(&m);
	m.out = 3;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ack(&m, bad[i], &n, &why), SM_ERROR);
		assert_string_equal(why, "<a/> without a valid h");
		assert_int_equal(m.acked, 0);
	}
	assert_int_equal(ack(&m, NULL, &n, &why), SM_ERROR);      /* no h at all */
	assert_string_equal(why, "<a/> without a valid h");
	/* ten digits with leading zeros are still a number */
	assert_int_equal(ack(&m, "0000000003", &n, &why), SM_ACKED);
	assert_int_equal(n, 3);
}

/* The counters wrap at 2^32: unacked and the delta of an <a/> are computed modulo
 * 2^32, so acks keep working across the wrap and a too-high h is still caught. */
static void
test_wraparound(void **state)
{
	struct sm m;
	const char *why;
	uint32_t n;

	(void)state;
	initiator_on(&m);
	m.out = m.acked = UINT32_MAX - 1;
	assert_int_equal(sm_unacked(&m), 0);
	for (int i = 0; i < 4; i++)
		sm_sent(&m);                      /* out: 2^32 - 2 + 4 = 2 */
	assert_int_equal(m.out, 2);
	assert_int_equal(sm_unacked(&m), 4);
	assert_int_equal(ack(&m, "4294967295", &n, &why), SM_ACKED);   /* 2^32 - 1 */
	assert_int_equal(n, 1);
	assert_int_equal(sm_unacked(&m), 3);
	assert_int_equal(ack(&m, "1", &n, &why), SM_ACKED);            /* across 2^32 */
	assert_int_equal(n, 2);
	assert_int_equal(sm_unacked(&m), 1);
	assert_int_equal(ack(&m, "3", &n, &why), SM_ERROR);            /* out is 2 */
	assert_string_equal(why, "handled-count-too-high");
	assert_int_equal(ack(&m, "4294967295", &n, &why), SM_ERROR);   /* behind acked */
	assert_string_equal(why, "handled-count-too-high");
	assert_int_equal(ack(&m, "2", &n, &why), SM_ACKED);
	assert_int_equal(n, 1);
	assert_int_equal(sm_unacked(&m), 0);

	/* one <a/> covering the whole wrap */
	m.out = m.acked = UINT32_MAX - 2;
	for (int i = 0; i < 6; i++)
		sm_sent(&m);
	assert_int_equal(ack(&m, "3", &n, &why), SM_ACKED);
	assert_int_equal(n, 6);
	assert_int_equal(sm_unacked(&m), 0);
}

/* <r/> goes out only when on, with something unacknowledged and none outstanding; an
 * <a/> (answer or not) lets the next one go. */
static void
test_request(void **state)
{
	struct sm m = { 0 };
	struct buf out;
	const char *why;
	uint32_t n;

	(void)state;
	buf_init(&out, 1024);
	sm_request(&m, &out);                 /* off */
	assert_int_equal(out.len, 0);
	sm_enable(&m, &out);
	buf_reset(&out);
	sm_sent(&m);
	sm_request(&m, &out);                 /* asked, not on yet */
	assert_int_equal(out.len, 0);
	assert_false(m.r_pending);
	/* <enabled/> asks about what went out behind <enable/> at once */
	assert_int_equal(el(&m, "enabled", NULL, false, &out, &n, &why), SM_DONE);
	assert_string_equal(out.data, R);
	assert_true(m.r_pending);
	buf_reset(&out);
	sm_sent(&m);
	sm_request(&m, &out);                 /* one outstanding */
	assert_int_equal(out.len, 0);
	assert_int_equal(ack(&m, "1", &n, &why), SM_ACKED);
	assert_false(m.r_pending);
	sm_request(&m, &out);                 /* one still unacked */
	assert_string_equal(out.data, R);
	buf_reset(&out);
	assert_int_equal(ack(&m, "2", &n, &why), SM_ACKED);
	sm_request(&m, &out);                 /* all acked */
	assert_int_equal(out.len, 0);
	buf_free(&out);

	/* nothing sent behind <enable/>: <enabled/> asks for nothing */
	memset(&m, 0, sizeof(m));
	buf_init(&out, 1024);
	sm_enable(&m, &out);
	buf_reset(&out);
	assert_int_equal(el(&m, "enabled", NULL, false, &out, &n, &why), SM_DONE);
	assert_int_equal(out.len, 0);
	assert_false(m.r_pending);
	sm_request(&m, &out);
	assert_int_equal(out.len, 0);
	sm_sent(&m);
	sm_request(&m, &out);
	assert_string_equal(out.data, R);
	buf_free(&out);
}

/* <failed/> after our <enable/>: SM_FAILED, and nothing is counted any more; an
 * <enabled/> or <failed/> we did not ask for, and the others before enabled, are
 * errors. */
static void
test_failed_and_unexpected(void **state)
{
	struct sm m = { 0 };
	struct buf out;
	const char *why;
	uint32_t n;

	(void)state;
	buf_init(&out, 1024);
	assert_int_equal(el(&m, "enabled", NULL, false, &out, &n, &why), SM_ERROR);
	assert_string_equal(why, "unexpected <enabled/>");
	assert_int_equal(el(&m, "failed", NULL, false, &out, &n, &why), SM_ERROR);
	assert_string_equal(why, "unexpected <failed/>");
	assert_int_equal(el(&m, "r", NULL, false, &out, &n, &why), SM_ERROR);
	assert_string_equal(why, "<r/> before stream management was enabled");
	assert_int_equal(el(&m, "a", "0", false, &out, &n, &why), SM_ERROR);
	assert_string_equal(why, "<a/> before stream management was enabled");
	assert_int_equal(el(&m, "resume", NULL, false, &out, &n, &why), SM_ERROR);
	assert_string_equal(why, "unknown stream management element");
	assert_int_equal(out.len, 0);

	sm_enable(&m, &out);
	sm_sent(&m);
	sm_sent(&m);
	assert_int_equal(sm_unacked(&m), 2);
	assert_int_equal(el(&m, "failed", NULL, false, &out, &n, &why), SM_FAILED);
	assert_false(sm_tracking(&m));
	assert_false(m.on);
	assert_int_equal(sm_unacked(&m), 0);
	sm_sent(&m);
	assert_int_equal(m.out, 0);
	assert_int_equal(el(&m, "failed", NULL, false, &out, &n, &why), SM_ERROR);
	assert_int_equal(el(&m, "enabled", NULL, false, &out, &n, &why), SM_ERROR);
	/* an <a/> while asked but before <enabled/> */
	memset(&m, 0, sizeof(m));
	sm_enable(&m, &out);
	assert_int_equal(el(&m, "a", "0", false, &out, &n, &why), SM_ERROR);

	/* once on, <enabled/> and <failed/> are out of turn */
	initiator_on(&m);
	assert_int_equal(el(&m, "enabled", NULL, false, &out, &n, &why), SM_ERROR);
	assert_string_equal(why, "unexpected <enabled/>");
	assert_int_equal(el(&m, "failed", NULL, false, &out, &n, &why), SM_ERROR);
	assert_string_equal(why, "unexpected <failed/>");
	assert_true(m.on);
	/* a receiver that is on never expects them either */
	memset(&m, 0, sizeof(m));
	buf_reset(&out);
	assert_int_equal(el(&m, "enable", NULL, true, &out, &n, &why), SM_DONE);
	assert_int_equal(el(&m, "enabled", NULL, false, &out, &n, &why), SM_ERROR);
	assert_int_equal(el(&m, "failed", NULL, false, &out, &n, &why), SM_ERROR);
	/* an initiator that asked refuses the peer's own <enable/> */
	memset(&m, 0, sizeof(m));
	sm_enable(&m, &out);
	buf_reset(&out);
	assert_int_equal(el(&m, "enable", NULL, true, &out, &n, &why), SM_DONE);
	assert_string_equal(out.data, FAILED);
	assert_false(m.on);
	buf_free(&out);
}

/* The gate (internet streams): h counts only what was released, in order. An <r/>
 * waits (SM_OWED) until everything taken before it is released, out of order or not;
 * repeated and unknown releases change nothing; the ring grows past its first 64 bits
 * and wraps with the counters; at SM_PENDING_MAX the oldest is counted (forced). */
static void
test_gate(void **state)
{
	struct sm m = { .gate = true };
	struct buf out;
	const char *why;
	uint32_t n, seq[3];

	(void)state;
	buf_init(&out, 1024);
	assert_int_equal(el(&m, "enable", NULL, true, &out, &n, &why), SM_DONE);
	buf_reset(&out);
	for (int i = 0; i < 3; i++)
		seq[i] = sm_handled(&m);
	assert_int_equal(seq[0], 0);
	assert_int_equal(seq[2], 2);
	assert_int_equal(el(&m, "r", NULL, false, &out, &n, &why), SM_OWED);
	assert_int_equal(out.len, 0);                     /* nothing released yet */
	assert_false(sm_released(&m, seq[1]));            /* out of order: done stays 0 */
	assert_int_equal(m.done, 0);
	assert_false(sm_released(&m, seq[1]));            /* repeated: nothing */
	assert_false(sm_released(&m, 7));                 /* never taken: nothing */
	assert_false(sm_released(&m, seq[0]));            /* done 2, the <r/> came at 3 */
	assert_int_equal(m.done, 2);
	sm_handled(&m);                                   /* after the <r/>: not waited for */
	assert_true(sm_released(&m, seq[2]));
	sm_answer(&m, &out);
	assert_string_equal(out.data, "<a xmlns='urn:xmpp:sm:3' h='3'/>");
	buf_reset(&out);
	sm_answer(&m, &out);                              /* answered once */
	assert_int_equal(out.len, 0);
	/* nothing pending before it: answered at once with what is done */
	assert_true(sm_released(&m, 3) == false);
	assert_int_equal(el(&m, "r", NULL, false, &out, &n, &why), SM_DONE);
	assert_string_equal(out.data, "<a xmlns='urn:xmpp:sm:3' h='4'/>");
	buf_reset(&out);
	/* the ring grows: 1000 taken, released newest first */
	for (uint32_t i = 0; i < 1000; i++)
		sm_handled(&m);
	for (uint32_t i = 1000; i-- > 1;)
		sm_released(&m, 4 + i);
	assert_int_equal(m.done, 4);
	sm_released(&m, 4);
	assert_int_equal(m.done, 1004);
	/* across the 2^32 wrap */
	m.in = m.done = UINT32_MAX - 2;
	for (int i = 0; i < 5; i++)
		sm_handled(&m);
	for (uint32_t i = 5; i-- > 0;)
		sm_released(&m, UINT32_MAX - 2 + i);
	assert_int_equal(m.done, 2);
	assert_int_equal(m.in, 2);
	/* at the cap the oldest is counted without its release */
	for (uint32_t i = 0; i < SM_PENDING_MAX + 1; i++)
		sm_handled(&m);
	assert_int_equal(m.forced, 1);
	assert_int_equal(m.in - m.done, SM_PENDING_MAX);
	sm_free(&m);
	buf_free(&out);
}

/* Without the gate (the loopback leg) h follows what was taken, as before. */
static void
test_no_gate(void **state)
{
	struct sm m = { 0 };
	struct buf out;
	const char *why;
	uint32_t n;

	(void)state;
	buf_init(&out, 1024);
	assert_int_equal(el(&m, "enable", NULL, true, &out, &n, &why), SM_DONE);
	buf_reset(&out);
	sm_handled(&m);
	assert_false(sm_released(&m, 0));
	assert_int_equal(el(&m, "r", NULL, false, &out, &n, &why), SM_DONE);
	assert_string_equal(out.data, "<a xmlns='urn:xmpp:sm:3' h='1'/>");
	assert_null(m.pend);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_receiver_enable),
		cmocka_unit_test(test_initiator_enable_and_counting),
		cmocka_unit_test(test_r_answered_with_h),
		cmocka_unit_test(test_a_acknowledges),
		cmocka_unit_test(test_a_bad_h),
		cmocka_unit_test(test_wraparound),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_failed_and_unexpected),
		cmocka_unit_test(test_gate),
		cmocka_unit_test(test_no_gate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
