/* s2s/listener.h - listening sockets for the internet side and the loopback leg.
 * SPDX-License-Identifier: ISC
 * main.c opens one per configured listener; each accepted socket becomes a receiving
 * link (link.c, owned by route.c) of the listener's side, counted by admit.c against
 * the listener's own limit (and, on the internet side, the internet-wide and
 * per-address ones). */
#ifndef QF_LISTENER_H
#define QF_LISTENER_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>

struct cfg_listener;
struct config;
struct ev_loop;
struct status;

/* Open every configured listener, with its connection accounting (admit.c). Raises
 * the soft open file limit towards what the connection limits need. Returns 0, or -1
 * (logged) when one cannot be bound. */
int listener_open_all(struct ev_loop *loop, const struct config *cfg);
/* Reload, in two steps so that nothing changes when one fails. prepare: the sockets of
 * cfg's listeners that are not open yet are bound (not accepting); on failure they are
 * closed again, "FILE:LINE: listener ...: cannot listen: why" goes to errs and -1 is
 * returned. Then either abort (close them) or commit: cfg becomes the config, the new
 * sockets accept, listeners with the same address and port are kept open (their kind
 * and limit follow cfg: a changed kind keeps the socket, new accounting), the others
 * close; connections they accepted go on. The limits of admit.c follow cfg; smaller
 * limits shed nothing that is open. cfg must outlive the listeners (until the next
 * commit). */
int listener_reload_prepare(const struct config *cfg, FILE *errs);
void listener_reload_commit(const struct config *cfg);
void listener_reload_abort(const struct config *cfg);
/* The plan of a reload (pure, for tests): for each wanted listener j, from[j] is the
 * index of the current listener with the same address (by value: "::1" and "0::1"
 * alike) and port, which stays open, or -1 when a socket is to be opened; each current
 * listener is kept at most once, and those no from[] names are closed. */
void listener_plan(const struct cfg_listener *cur, size_t ncur,
    const struct cfg_listener *want, size_t nwant, int *from);
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
