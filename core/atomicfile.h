/* core/atomicfile.h - write a whole file atomically: temp file, fsync, rename.
 * SPDX-License-Identifier: ISC
 * Every state file quickfed keeps (dialback secret, certificates, DNS cache, TLS session
 * store and ticket keys, peer capabilities) is written through this, so a crash never
 * leaves a half-written file and the file never exists with a looser mode. */
#ifndef QF_ATOMICFILE_H
#define QF_ATOMICFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Write n bytes of data to path: a temporary file created next to it with mode, fsync,
 * rename over path, fsync of the directory. Returns 0, or -1 with errno set (the
 * temporary file is removed; path is untouched). Logs nothing: callers say which file
 * and why. */
int atomicfile_write(const char *path, const void *data, size_t n, mode_t mode);

#endif
