/* core/notify.h - readiness and stopping notifications to a service manager (systemd).
 * SPDX-License-Identifier: ISC
 * main.c calls notify_send("READY=1") once the listeners and the status socket are up,
 * and notify_send("STOPPING=1") when a graceful shutdown starts. It speaks the
 * NOTIFY_SOCKET datagram protocol (sd_notify(3)) itself: see README, "Libraries". */
#ifndef QF_NOTIFY_H
#define QF_NOTIFY_H

/* Send state (e.g. "READY=1", newline-separated assignments) as one datagram to the
 * AF_UNIX socket named by $NOTIFY_SOCKET: a path, or "@name" for the abstract namespace.
 * Returns 1 when sent, 0 when NOTIFY_SOCKET is unset or empty (not run by a service
 * manager: nothing to do), -1 on failure (logged; the caller goes on). */
int notify_send(const char *state);

#endif
