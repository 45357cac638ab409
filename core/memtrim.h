/* core/memtrim.h - give the kernel back memory the process holds but does not use.
 * SPDX-License-Identifier: ISC
 * Two kinds, for two callers:
 * - the all-zero pages inside a live heap block (tls/session.c): Debian's wolfSSL
 *   allocates, for every connection, a session object with room for two peer
 *   certificate chains (2 x 9 x 2 KiB) and zeroes all of it; a peer's real chain fills
 *   a few of those pages. The pages still all zero after the handshake are returned
 *   with madvise(MADV_DONTNEED), which Linux defines, for private anonymous memory
 *   (every heap), to read back as zeros: the block's contents do not change, only the
 *   RSS. A page written later is faulted in again.
 * - the free pages of the heap (core/main.c, once traffic is quiet): after a burst the
 *   freed buffers are free chunks between live ones, which glibc keeps resident;
 *   malloc_trim() gives back every whole free page, not only the top of the heap. */
#ifndef QF_MEMTRIM_H
#define QF_MEMTRIM_H

#include <stddef.h>

/* Return the pages lying wholly inside [p, p + n) that hold only zero bytes; p must be
 * memory this process owns and may write (a live heap block). Returns the bytes given
 * back (0 when none, or when the kernel refuses). */
size_t memtrim_zero_pages(void *p, size_t n);

/* The same for a whole block from malloc (its usable size, malloc_usable_size). */
size_t memtrim_block(void *block);

/* Give the free pages of every malloc arena back (malloc_trim). Returns 1 if glibc
 * released any memory. Costs a walk of the free chunks: call it now and then, not per
 * event. */
int memtrim_heap(void);

#endif
