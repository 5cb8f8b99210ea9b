/* huskd's own Prometheus metrics: CRI request counters kept by the gRPC
 * loop, the counters the libraries keep (image pulls, CNI calls), object
 * counts and process figures gathered at scrape time, rendered in the text
 * format and served on GET /metrics when metrics_address is set. */
#ifndef HUSK_SERVER_METRICS_H
#define HUSK_SERVER_METRICS_H

#include "common/metrics.h"
#include "server/server.h"

struct srv_metrics;

/* Request counters for every row of srv_methods plus unknown paths. The
 * caller owns the result (srv_metrics_free accepts NULL). */
struct srv_metrics *srv_metrics_new(void);
void srv_metrics_free(struct srv_metrics *m);

/* Around each call: begin counts it in flight; end takes it out and counts
 * it by method (NULL: an unknown path) and status, with its duration. m may
 * be NULL (unit tests). */
void srv_metrics_call_begin(struct srv_metrics *m);
void srv_metrics_call_end(struct srv_metrics *m, const struct srv_method *method,
			  enum srv_code code, long long duration_ns);

/* Everything /metrics shows, as Prometheus text, appended to out. Reads the
 * subsystems of ctx that are running (NULL handles are skipped). */
void srv_metrics_render(struct srv_ctx *ctx, struct mx_text *out);

/* Subsystem start/stop (main.c): listen on config->metrics_address and
 * serve /metrics from a thread of its own; nothing when the address is
 * empty. A bad address or a failed bind is an error naming the key. */
int srv_metrics_http_start(struct srv_ctx *ctx, struct husk_error *err);
void srv_metrics_http_stop(struct srv_ctx *ctx);

#endif
