/* s2s/tcpack.c - how many bytes the peer's TCP has acknowledged on a socket.
 * SPDX-License-Identifier: ISC
 * tcpi_bytes_acked (Linux 4.1+, RFC 4898 ThruOctetsAcked) counts every sequence number
 * the peer acknowledged; on a connection we opened that includes our SYN (one), on one
 * we accepted the SYN-ACK is not counted (seen on Linux 6.1 and 6.18). It survives a
 * reset (unlike SIOCOUTQ, whose queue the kernel purges), so it can be read in the
 * connection's last callback. */
#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <linux/tcp.h>

#include "tcpack.h"

#ifndef SOL_TCP
#define SOL_TCP 6
#endif

int
tcp_bytes_acked(int fd, bool initiator, uint64_t *acked)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, SOL_TCP, TCP_INFO, &ti, &len) == -1)
		return -1;
	if (len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked)) {
		errno = ENOTSUP;
		return -1;
	}
	*acked = ti.tcpi_bytes_acked;
	if (initiator && *acked > 0)
		(*acked)--;
	return 0;
}
