/* tests/fake/conn.h - a scripted connection layer for unit tests of link.c.
 * SPDX-License-Identifier: ISC
 * tests/fake/conn.c exports the conn_* functions link.c calls (so s2s/conn.c, sockets
 * and TLS stay out of the test binary); these helpers play the connection's side:
 * TCP up, plaintext from the peer, the end, through the owner's struct conn_ops. */
#ifndef QF_FAKE_CONN_H
#define QF_FAKE_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "../../s2s/conn.h"

/* conn_output_full() answers this (false unless a test sets it). */
extern bool fc_output_full;
/* conn_out_acked() answers this: what the peer's TCP acknowledged, in the plaintext
 * offsets conn_out_mark() gives (the bytes ever appended to conn_out, counted at each
 * conn_flush and mark). Everything unless a test sets it. */
extern uint64_t fc_acked;
/* The last connection link.c created (NULL before any). */
struct conn *fc_last(void);
/* Initiator: TCP is up (connected, then up). */
void fc_up(struct conn *c);
/* The peer sent s: handed to the owner as input; what it did not take is kept. */
void fc_input(struct conn *c, const char *s);
/* The connection ends: the owner hears closed (its last call) and c is freed. */
void fc_destroy(struct conn *c, const char *reason);
/* Free every connection left (each owner hears closed). */
void fc_reset(void);

#endif
