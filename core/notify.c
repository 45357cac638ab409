/* core/notify.c - the sd_notify(3) datagram protocol, without libsystemd.
 * SPDX-License-Identifier: ISC
 * main.c tells the service manager when quickfed is ready (Type=notify) and when it
 * starts stopping. The protocol is one AF_UNIX datagram of "KEY=VALUE\n..." to the
 * socket in $NOTIFY_SOCKET; systemd documents it as a stable interface to reimplement.
 * Doing it here keeps libsystemd (and the compression and crypto libraries it links on
 * Debian 12) out of an internet-facing process. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/notify.h"

int
notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	size_t plen;
	ssize_t n;
	int fd, saved;

	if (path == NULL || path[0] == '\0')
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sun.sun_path)) {
		log_warnx("notify socket=%s reason=unusable-address", path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';      /* abstract: length counts, no terminator */
	else
		len++;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("notify socket=%s reason=socket-failed", path);
		return -1;
	}
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len);
	saved = errno;
	close(fd);
	if (n != (ssize_t)strlen(state)) {
		errno = saved;
		log_warn("notify socket=%s reason=send-failed", path);
		return -1;
	}
	log_debug("notify socket=%s sent=%.*s", path, (int)strcspn(state, "\n"), state);
	return 1;
}
