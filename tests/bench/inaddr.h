/* tests/bench/inaddr.h - "IP:PORT" to an IPv4 socket address, for the bench's C tools
 * (synthsrv.c, tcprelay.c; each built alone with cc, so this is a header).
 * SPDX-License-Identifier: ISC */
#ifndef QF_BENCH_INADDR_H
#define QF_BENCH_INADDR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* 0, or -1 when s is not IPv4:PORT (port 1..65535). */
static inline int
parse_inaddr(const char *s, struct sockaddr_in *sa)
{
	char host[64], *end;
	const char *colon = strrchr(s, ':');
	long port;

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

#endif
