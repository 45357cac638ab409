/* s2s/listener.h - listening sockets for the internet side and the loopback leg.
 * SPDX-License-Identifier: ISC
 * main.c opens one per configured listener; each accepted socket becomes a receiving
 * link (link.c, owned by route.c) of the listener's side, counted by admit.c against
 * the listener's own limit (and, on the internet side, the internet-wide and
 * per-address ones). */
#ifndef QF_LISTENER_H
#define QF_LISTENER_H

#include <stdbool.h>
#include <sys/socket.h>

struct config;
struct ev_loop;
struct status;

/* Open every configured listener, with its connection accounting (admit.c). Raises
 * the soft open file limit towards what the connection limits need. Returns 0, or -1
 * (logged) when one cannot be bound. */
int listener_open_all(struct ev_loop *loop, const struct config *cfg);
/* Register "show listeners" on the status socket. */
void listener_register_status(struct status *st);
/* Stop accepting from the internet (graceful shutdown); the local listener stays so
 * the local server can still verify the bounces quickfed delivers. */
void listener_close_internet(void);
/* Stop accepting (graceful shutdown) and close the sockets. The accounting of
 * connections still open goes with the last of them; admit_free_all() at exit. */
void listener_close_all(void);
/* May a local listener serve this peer (len bytes of sa, as accept returned them)?
 * True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104 (an IPv4 peer on a dual-stack
 * socket); others are closed at once with a log line. */
bool listener_loopback_peer(const struct sockaddr *sa, socklen_t len);

#endif
