/* core/atomicfile.h - write a whole file atomically: temp file, fsync, rename.
 * SPDX-License-Identifier: ISC
 * Every state file quickfed keeps (dialback secret, certificates, DNS cache, TLS session
 * store and ticket keys, peer capabilities) is written through this, so a crash never
 * leaves a half-written file and the file never exists with a looser mode. The caches
 * the event loop rewrites while it runs (DNS cache, TLS session store, peer
 * capabilities, backoff) go through atomicfile_write_later: a writer thread does the
 * disk work, so the loop never waits for an fsync. */
#ifndef QF_ATOMICFILE_H
#define QF_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Write n bytes of data to path: a temporary file created next to it with mode, fsync,
 * rename over path, fsync of the directory. A write of path queued by
 * atomicfile_write_later is finished first (the newer content wins). Returns 0, or -1
 * with errno set (the temporary file is removed; path is untouched). Logs nothing:
 * callers say which file and why. */
int atomicfile_write(const char *path, const void *data, size_t n, mode_t mode);

/* The same write, done by a writer thread (started at the first call): data is copied
 * and the call returns at once. A write of path still waiting is replaced by this one
 * (only the newest content is written); writes of one path are done in call order.
 * Returns 0, or -1 with errno (out of memory, path too long); when no thread can be
 * started the write is done at once instead. A background write that fails is logged
 * ("state file PATH not written: REASON") by the next call of this or atomicfile_sync.
 * What a crash can lose: writes still queued or under way (the file keeps its previous
 * complete content, never a partial one). Main thread only. */
int atomicfile_write_later(const char *path, const void *data, size_t n, mode_t mode);

/* For a file other processes read and write under a lock the caller holds across this
 * call (the TLS ticket key files): path is replaced when this returns (temporary file,
 * rename: readers see all of the new content or all of the old), and made durable later
 * by the writer thread (fsync of the file and its directory). Returns 0, or -1 with
 * errno (path untouched). What a crash can lose: content not yet fsynced, which a
 * filesystem may then show empty or short: the readers check (checksums). Main thread
 * only. */
int atomicfile_replace(const char *path, const void *data, size_t n, mode_t mode);

/* Wait until no write of path is queued or under way (path NULL: of any path), and log
 * the background failures. A reader of a file written with atomicfile_write_later calls
 * it before reading; at exit it runs for all (atexit, registered by the first
 * atomicfile_write_later). Main thread only. */
void atomicfile_sync(const char *path);

/* Writes queued or under way; background writes that failed since start (for tests
 * and stats). */
size_t atomicfile_pending(void);
unsigned long atomicfile_failures(void);

#endif
