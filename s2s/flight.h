/* s2s/flight.h - describe what one write ("flight") of a connection carried.
 * SPDX-License-Identifier: ISC
 * conn.c notes the XML elements it queued in clear and inside TLS, and at each write
 * logs one line per flight for the first flights of a connection: the element names and
 * the TLS record types. Tests read these lines to prove what XEP-0305 pipelining packs
 * into one write; operators read them to see how a set-up went. */
#ifndef QF_FLIGHT_H
#define QF_FLIGHT_H

#include <stddef.h>

#define FLIGHT_NOTE 240

/* Append the names of the start tags in the XML text p[0..n) to note ("a,b,c"). */
void flight_note_xml(char note[FLIGHT_NOTE], const char *p, size_t n);
/* Describe the TLS records in p[0..n) into out: "hs:ClientHello", "hs:ServerHello,ccs,
 * data*3"... (a partial record at the end is shown as "+partial"). */
void flight_describe_tls(char *out, size_t outlen, const unsigned char *p, size_t n);

#endif
