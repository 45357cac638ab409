/* core/atomicfile.c - write a whole file atomically: temp file, fsync, rename.
 * SPDX-License-Identifier: ISC
 * Used by every module that keeps state on disk (see atomicfile.h). The writes the
 * event loop asks for while it runs are queued for one writer thread (started on first
 * use), which does them in order with the same temp/fsync/rename steps; the queue holds
 * at most one waiting write per path (a newer one replaces its data), so it is bounded
 * by the number of state files. The thread touches nothing but the job it took: no
 * logging (failures are handed back and logged on the main thread), no libev. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "log.h"

/* One queued write; data and path owned. */
struct job {
	char         *path;
	void         *data;
	size_t        n;
	mode_t        mode;
	int           err;          /* errno of a failed write (on the failed list) */
	bool          fsync_only;   /* atomicfile_replace wrote it: only make it durable */
	struct job   *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;   /* a job was queued */
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;   /* a job was finished */
static struct job *queue_head, *queue_tail;               /* waiting, in call order */
static struct job *current;                               /* being written */
static struct job *failed;                                /* to be logged */
static bool started, start_failed;
static unsigned long nfailed;                             /* failed background writes */

static int write_now(const char *, const void *, size_t, mode_t, bool);
static int fsync_path(const char *);
static bool start_writer(void);
static int enqueue(const char *, const void *, size_t, mode_t, bool);
static void *writer_main(void *);
static bool path_busy(const char *, bool);
static void wait_jobs(const char *, bool);
static void job_free(struct job *);
static void report_failures(void);
static void sync_all(void);

/* The temporary file, its fsync (unless durable is false), the rename, the fsync of the
 * directory (when durable). */
static int
write_now(const char *path, const void *data, size_t n, mode_t mode, bool durable)
{
	char tmp[4200], dir[4200];
	const unsigned char *p = data;
	size_t off = 0;
	int fd, dfd, saved;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkstemp(tmp)) == -1)   /* created 0600 */
		return -1;
	if (fchmod(fd, mode) == -1)
		goto fail;
	while (off < n) {
		ssize_t w = write(fd, p + off, n - off);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			goto fail;
		}
		off += (size_t)w;
	}
	if (durable && fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	if (!durable)
		return 0;
	snprintf(dir, sizeof(dir), "%s", path);
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	(void)unlink(tmp);
	errno = saved;
	return -1;
}

/* Make what atomicfile_replace put at path durable: the file, then its directory. */
static int
fsync_path(const char *path)
{
	char dir[4200];
	int fd, dfd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	if (rc == -1)
		return -1;
	snprintf(dir, sizeof(dir), "%s", path);
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

int
atomicfile_write(const char *path, const void *data, size_t n, mode_t mode)
{
	atomicfile_sync(path);   /* a queued older write must not land after this one */
	return write_now(path, data, n, mode, true);
}

int
atomicfile_replace(const char *path, const void *data, size_t n, mode_t mode)
{
	wait_jobs(path, true);   /* nor a queued older write after this replacement */
	if (write_now(path, data, n, mode, false) == -1)
		return -1;
	if (enqueue(path, NULL, 0, mode, true) == -1)
		return fsync_path(path) == -1 ? -1 : 0;   /* no writer: durable at once */
	return 0;
}

/* The data may be secret (TLS sessions): wiped before it is freed. */
static void
job_free(struct job *j)
{
	if (j->data != NULL)
		explicit_bzero(j->data, j->n);
	free(j->path);
	free(j->data);
	free(j);
}

/* The writer thread: takes the oldest job, writes it with the lock released. */
static void *
writer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		struct job *j;
		int rc, err;

		while (queue_head == NULL)
			pthread_cond_wait(&work, &mu);
		j = queue_head;
		if ((queue_head = j->next) == NULL)
			queue_tail = NULL;
		j->next = NULL;
		current = j;
		pthread_mutex_unlock(&mu);
		rc = j->fsync_only ? fsync_path(j->path) :
		    write_now(j->path, j->data, j->n, j->mode, true);
		err = errno;
		pthread_mutex_lock(&mu);
		current = NULL;
		if (rc == -1) {
			nfailed++;
			j->err = err;
			j->next = failed;
			failed = j;
		} else {
			job_free(j);
		}
		pthread_cond_broadcast(&done);
	}
	return NULL;
}

/* Under the lock: a job for path (NULL: any) is queued or under way; with writes_only,
 * a write of its content (not only an fsync). */
static bool
path_busy(const char *path, bool writes_only)
{
	if (current != NULL && (path == NULL || strcmp(current->path, path) == 0) &&
	    !(writes_only && current->fsync_only))
		return true;
	for (const struct job *j = queue_head; j != NULL; j = j->next)
		if ((path == NULL || strcmp(j->path, path) == 0) &&
		    !(writes_only && j->fsync_only))
			return true;
	return false;
}

/* Wait until no job for path (NULL: any) is queued or under way; with writes_only, no
 * write of its content (fsyncs may be). */
static void
wait_jobs(const char *path, bool writes_only)
{
	if (!started)
		return;
	pthread_mutex_lock(&mu);
	while (path_busy(path, writes_only))
		pthread_cond_wait(&done, &mu);
	pthread_mutex_unlock(&mu);
}

/* Log (and free) the failed background writes; main thread. */
static void
report_failures(void)
{
	struct job *list, *j;

	pthread_mutex_lock(&mu);
	list = failed;
	failed = NULL;
	pthread_mutex_unlock(&mu);
	while ((j = list) != NULL) {
		list = j->next;
		log_warnx("state file %s not written: %s", j->path, strerror(j->err));
		job_free(j);
	}
}

static void
sync_all(void)
{
	atomicfile_sync(NULL);
}

/* The writer thread, started on first use; false when none can be (logged once). */
static bool
start_writer(void)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;

	if (!started && !start_failed && pthread_attr_init(&attr) == 0) {
		/* the thread takes no signal: they stay the event loop's (it inherits this
		 * mask) */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		if (pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
		    pthread_create(&t, &attr, writer_main, NULL) == 0) {
			started = true;
			atexit(sync_all);
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
	}
	if (!started && !start_failed) {
		start_failed = true;
		log_warnx("state files: no writer thread, written on the event loop instead");
	}
	return started;
}

/* Queue a write of data (copied) or, fsync_only, the fsync of what is at path. A job
 * of the same kind and path still waiting takes the new data instead (or is enough).
 * Returns 0, or -1 with errno: ENOMEM, or ENOSYS when there is no writer thread. */
static int
enqueue(const char *path, const void *data, size_t n, mode_t mode, bool fsync_only)
{
	struct job *j;

	report_failures();
	if (!start_writer()) {
		errno = ENOSYS;
		return -1;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL || (j->path = strdup(path)) == NULL ||
	    (!fsync_only && (j->data = malloc(n > 0 ? n : 1)) == NULL)) {
		if (j != NULL)
			job_free(j);
		errno = ENOMEM;
		return -1;
	}
	if (!fsync_only && n > 0)
		memcpy(j->data, data, n);
	j->n = fsync_only ? 0 : n;
	j->mode = mode;
	j->fsync_only = fsync_only;
	pthread_mutex_lock(&mu);
	for (struct job *q = queue_head; q != NULL; q = q->next)
		if (q->fsync_only == fsync_only && strcmp(q->path, path) == 0) {
			/* still waiting: it writes the newest data instead */
			void *old = q->data;
			size_t old_n = q->n;

			q->data = j->data;
			q->n = j->n;
			q->mode = j->mode;
			j->data = old;    /* freed (wiped) with j */
			j->n = old_n;
			pthread_mutex_unlock(&mu);
			job_free(j);
			return 0;
		}
	if (queue_tail != NULL)
		queue_tail->next = j;
	else
		queue_head = j;
	queue_tail = j;
	pthread_cond_signal(&work);
	pthread_mutex_unlock(&mu);
	return 0;
}

int
atomicfile_write_later(const char *path, const void *data, size_t n, mode_t mode)
{
	if (strlen(path) + sizeof(".tmp.XXXXXX") > 4200) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (enqueue(path, data, n, mode, false) == -1)
		return errno == ENOSYS ? write_now(path, data, n, mode, true) : -1;
	return 0;
}

void
atomicfile_sync(const char *path)
{
	wait_jobs(path, false);
	report_failures();
}

unsigned long
atomicfile_failures(void)
{
	unsigned long n;

	pthread_mutex_lock(&mu);
	n = nfailed;
	pthread_mutex_unlock(&mu);
	return n;
}

size_t
atomicfile_pending(void)
{
	size_t n = 0;

	if (!started)
		return 0;
	pthread_mutex_lock(&mu);
	n = current != NULL;
	for (const struct job *j = queue_head; j != NULL; j = j->next)
		n++;
	pthread_mutex_unlock(&mu);
	return n;
}
