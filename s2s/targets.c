/* s2s/targets.c - where to connect without DNS: the local server, or a peer's fixed address.
 * SPDX-License-Identifier: ISC
 * Fills one struct resolve_target from the config, the same shape the resolver hands
 * route.c and verify.c, so the connector (connect.c) treats both alike. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "../core/config.h"
#include "../dns/resolver.h"
#include "targets.h"

/* address must be a numeric IPv4/IPv6 address. */
static bool
numeric_target(struct resolve_target *t, const char *address, uint16_t port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&t->addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->addr;

	memset(t, 0, sizeof(*t));
	snprintf(t->host, sizeof(t->host), "%s", address);
	t->port = port;
	if (inet_pton(AF_INET, address, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		t->addrlen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, address, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		t->addrlen = sizeof(*s6);
	} else {
		return false;
	}
	return true;
}

bool
targets_local_server(const struct config *cfg, struct resolve_target *t)
{
	return numeric_target(t, cfg->local_server_address, cfg->local_server_port);
}

bool
targets_static(const struct config *cfg, const char *domain, struct resolve_target *t)
{
	const struct cfg_peer *p = config_peer(cfg, domain);

	if (p == NULL || p->address == NULL)
		return false;
	return numeric_target(t, p->address, p->port ? p->port : 5269);
}
