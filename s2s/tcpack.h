/* s2s/tcpack.h - how many bytes the peer's TCP has acknowledged on a socket.
 * SPDX-License-Identifier: ISC
 * For conn.c: a link without XEP-0198 keeps what it wrote until the peer's TCP has
 * acknowledged it (Linux TCP_INFO tcpi_bytes_acked), so that what a dying link leaves
 * unproven is bounced, never silently lost. Apart from conn.c because <linux/tcp.h>
 * and <netinet/tcp.h> cannot be included together. */
#ifndef QF_TCPACK_H
#define QF_TCPACK_H

#include <stdbool.h>
#include <stdint.h>

/* Data bytes the peer acknowledged on fd (the SYN not counted: initiator true when we
 * connected). Returns 0, or -1 (errno) when the kernel cannot tell. */
int tcp_bytes_acked(int fd, bool initiator, uint64_t *acked);

#endif
