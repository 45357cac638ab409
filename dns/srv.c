/* dns/srv.c - RFC 2782 SRV rdata parsing and target ordering (priority, weighted random).
 * SPDX-License-Identifier: ISC
 * resolver.c parses each SRV answer with srv_parse_rdata() and orders the merged
 * _xmpp-server/_xmpps-server records with srv_order() before it resolves addresses.
 * Both functions are pure (the random source is injected), so tests drive them directly. */
#include <stdlib.h>
#include <string.h>

#include "srv.h"

#define SRV_FIXED_LEN 6     /* priority, weight, port */
#define SRV_MAX_NAME  255   /* RFC 1035 §3.1: wire-format name length limit */

static void srv_sort_priority(struct srv_record *, size_t);
static void srv_order_group(struct srv_record *, size_t, srv_rand_fn, void *);
static int srv_label_byte_ok(unsigned char);

/* Stable insertion sort by priority: SRV answers are capped small by the caller. */
static void
srv_sort_priority(struct srv_record *recs, size_t n)
{
	struct srv_record tmp;

	for (size_t i = 1; i < n; i++) {
		size_t j = i;

		if (recs[j - 1].priority <= recs[j].priority)
			continue;
		tmp = recs[i];
		while (j > 0 && recs[j - 1].priority > tmp.priority) {
			recs[j] = recs[j - 1];
			j--;
		}
		recs[j] = tmp;
	}
}

/* RFC 2782 selection within one priority group: zero-weight records go first, then
 * repeatedly pick the first record whose running weight sum reaches rnd(sum + 1). */
static void
srv_order_group(struct srv_record *g, size_t n, srv_rand_fn rnd, void *rnd_arg)
{
	struct srv_record tmp;
	size_t zeros = 0;

	/* Move zero-weight records to the front, keeping relative order. */
	for (size_t i = 0; i < n; i++) {
		if (g[i].weight != 0)
			continue;
		tmp = g[i];
		memmove(&g[zeros + 1], &g[zeros], (i - zeros) * sizeof(*g));
		g[zeros++] = tmp;
	}

	for (size_t start = 0; start + 1 < n; start++) {
		uint32_t sum = 0, pick, run = 0;
		size_t chosen = n - 1;

		for (size_t i = start; i < n; i++)
			sum += g[i].weight;     /* at most 64k records * 65535: fits */
		pick = rnd(rnd_arg, sum + 1);
		if (pick > sum)
			pick = sum;             /* defend against a broken random source */
		for (size_t i = start; i < n; i++) {
			run += g[i].weight;
			if (run >= pick) {
				chosen = i;
				break;
			}
		}
		if (chosen != start) {
			tmp = g[chosen];
			memmove(&g[start + 1], &g[start], (chosen - start) * sizeof(*g));
			g[start] = tmp;
		}
	}
}

void
srv_order(struct srv_record *recs, size_t n, srv_rand_fn rnd, void *rnd_arg)
{
	size_t i = 0;

	if (recs == NULL || n < 2)
		return;
	srv_sort_priority(recs, n);
	while (i < n) {
		size_t j = i + 1;

		while (j < n && recs[j].priority == recs[i].priority)
			j++;
		if (j - i > 1)
			srv_order_group(&recs[i], j - i, rnd, rnd_arg);
		i = j;
	}
}

/* A host name label byte we are willing to put into a dotted string: printable, and
 * neither the separator nor a byte that would change the name's meaning. */
static int
srv_label_byte_ok(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '.' && c != '\\';
}

int
srv_parse_rdata(const unsigned char *rdata, size_t len, struct srv_record *out)
{
	size_t pos = SRV_FIXED_LEN, outlen = 0, wirelen = 0;
	struct srv_record rec;

	if (rdata == NULL || out == NULL || len < SRV_FIXED_LEN + 1)
		return -1;
	memset(&rec, 0, sizeof(rec));
	rec.priority = (uint16_t)(rdata[0] << 8 | rdata[1]);
	rec.weight = (uint16_t)(rdata[2] << 8 | rdata[3]);
	rec.port = (uint16_t)(rdata[4] << 8 | rdata[5]);

	for (;;) {
		size_t ll;

		if (pos >= len)
			return -1;              /* name runs past the rdata */
		ll = rdata[pos++];
		wirelen += 1 + ll;
		if (wirelen > SRV_MAX_NAME)
			return -1;
		if (ll == 0)
			break;
		if (ll > 63)
			return -1;              /* compression pointer or extended label */
		if (ll > len - pos)
			return -1;              /* label past the end */
		if (outlen != 0)
			rec.target[outlen++] = '.';
		for (size_t i = 0; i < ll; i++) {
			if (!srv_label_byte_ok(rdata[pos + i]))
				return -1;
			rec.target[outlen++] = (char)rdata[pos + i];
		}
		pos += ll;
	}
	if (pos != len)
		return -1;                      /* trailing bytes after the target */
	rec.target[outlen] = '\0';              /* outlen < 255 by the wirelen bound */
	*out = rec;
	return 0;
}
