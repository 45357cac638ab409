/* core/zeropages.h - give the kernel back the all-zero pages inside a live heap block.
 * SPDX-License-Identifier: ISC
 * For tls/session.c: Debian's wolfSSL allocates, for every connection, a session object
 * with room for two peer certificate chains (2 x 9 x 2 KiB) and zeroes all of it; a
 * peer's real chain fills a few of those pages. The pages that are still all zero
 * after the handshake are returned with madvise(MADV_DONTNEED), which Linux defines,
 * for private anonymous memory (every heap), to read back as zeros: the block's
 * contents do not change, only the RSS. A page written later is faulted in again. */
#ifndef QF_ZEROPAGES_H
#define QF_ZEROPAGES_H

#include <stddef.h>

/* Return the pages lying wholly inside [p, p + n) that hold only zero bytes; p must be
 * memory this process owns and may write (a live heap block). Returns the bytes given
 * back (0 when none, or when the kernel refuses). */
size_t zeropages_release(void *p, size_t n);

/* The same for a whole block from malloc (its usable size, malloc_usable_size). */
size_t zeropages_release_block(void *block);

#endif
