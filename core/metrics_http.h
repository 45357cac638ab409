/* core/metrics_http.h - the metrics listener: a minimal HTTP server for GET /metrics.
 * SPDX-License-Identifier: ISC
 * main.c opens one per `listener metrics { address 127.0.0.1; port 5280 }` (loopback
 * only, checked by config.c). Each client sends one request and gets one answer, then
 * the server closes (Connection: close); hostile input gets 400/404/405/431/505, never
 * unbounded memory or a hang. metrics_http_parse() is the request parser, pure so the
 * unit tests drive it with strings. */
#ifndef QF_METRICS_HTTP_H
#define QF_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics.h"

struct config;
struct ev_loop;

#define METRICS_HTTP_HEADER_MAX  8192   /* request line + headers, bytes: more is 431 */
#define METRICS_HTTP_TIMEOUT     5.0    /* seconds to send the whole request, and per
                                         * progress while the answer is written */
#define METRICS_HTTP_BACKLOG     16     /* connections the kernel holds while all
                                         * client slots are taken */

/* What a complete request asks for. */
struct metrics_http_req {
	int                 status;   /* the answer: 200, 400, 404, 405, 431 or 505 */
	bool                head;     /* HEAD: the headers of the answer only */
	enum metrics_format fmt;      /* OpenMetrics when Accept names
	                               * application/openmetrics-text, else 0.0.4 text */
	size_t              length;   /* bytes of the request (line + headers + blank line);
	                               * what follows (a body, a pipelined request) is
	                               * never answered */
};

/* Parse the request at p (len bytes, borrowed). Returns 1 when it is complete or
 * refused (req->status says how to answer), 0 when more bytes are needed (and fewer
 * than METRICS_HTTP_HEADER_MAX arrived). */
int metrics_http_parse(const char *p, size_t len, struct metrics_http_req *req);

/* Open every metrics listener of cfg on loop. Returns 0, or -1 (logged) when one
 * cannot be bound. */
int metrics_http_open_all(struct ev_loop *loop, const struct config *cfg);
/* Close the listeners and their clients. */
void metrics_http_close_all(void);

#endif
