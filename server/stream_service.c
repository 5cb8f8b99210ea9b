/* Exec, Attach and PortForward: validate the request against the runtime
 * and answer with a single-use URL on the streaming server, which then
 * runs the session (server/stream.c). Also the server's start and stop. */
#include <errno.h>

#include "common/log.h"
#include "runtime/runtime.h"
#include "server/handlers.h"
#include "server/stream.h"

int srv_streaming_init(struct srv_ctx *ctx, struct husk_error *err)
{
	const struct srv_config *c = ctx->config;
	struct srv_streamer *s = NULL;
	if (srv_streamer_start(c->stream_address, c->stream_port, ctx->runtime, &s, err) < 0)
		return -err->code;
	ctx->streamer = s;
	log_info("stream server listening address=%s port=%d",
		 isempty(c->stream_address) ? "127.0.0.1" : c->stream_address,
		 srv_streamer_port(s));
	return 0;
}

void srv_streaming_shutdown(struct srv_ctx *ctx)
{
	srv_streamer_stop(ctx->streamer);
	ctx->streamer = NULL;
}

/* The container must exist and run. */
static int running_container(struct srv_ctx *ctx, const char *method, const char *id, char **ret_id,
			     struct husk_error *err)
{
	if (isempty(id))
		return husk_error_set(err, EINVAL, "%s: container_id is empty", method);
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (rt_ctr_get(ctx->runtime, id, &rec, err) < 0)
		return husk_error_prefix(err, "%s", method);
	if (rec->state != CTR_STATE_RUNNING)
		return husk_error_set(err, EBUSY, "%s '%s': container is %s, not RUNNING", method,
				      rec->id, ctr_state_name(rec->state));
	*ret_id = xstrdup(rec->id);
	return 0;
}

static int check_stdio(const char *method, bool tty, bool in, bool out, bool err_out,
		       struct husk_error *err)
{
	if (tty && err_out)
		return husk_error_set(err, EINVAL,
				      "%s: tty and stderr cannot both be true (a terminal has "
				      "one output)",
				      method);
	if (!in && !out && !err_out)
		return husk_error_set(err, EINVAL, "%s: one of stdin, stdout or stderr must be set",
				      method);
	return 0;
}

static int issue(struct srv_ctx *ctx, struct srv_stream_req *req, char **ret_url,
		 struct husk_error *err)
{
	if (!ctx->streamer) {
		srv_stream_req_free(req);
		return husk_error_set(err, EAGAIN, "the stream server is not running");
	}
	return srv_streamer_issue(ctx->streamer, req, ret_url, err);
}

int srv_exec(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err)
{
	const Runtime__V1__ExecRequest *r = in;
	if (check_stdio("Exec", r->tty, r->stdin, r->stdout, r->stderr, err) < 0)
		return -err->code;
	if (r->n_cmd == 0 || isempty(r->cmd[0]))
		return husk_error_set(err, EINVAL, "Exec: cmd is empty");
	if (r->n_cmd > 4096)
		return husk_error_set(err, EINVAL, "Exec: more than 4096 arguments");
	_cleanup_(srv_stream_req_freep) struct srv_stream_req *req = xnew(struct srv_stream_req, 1);
	if (running_container(ctx, "Exec", r->container_id, &req->target, err) < 0)
		return -err->code;
	req->kind = SRV_STREAM_EXEC;
	req->cmd = xnew(char *, 1);
	for (size_t i = 0; i < r->n_cmd; i++)
		req->cmd = strv_append(req->cmd, r->cmd[i]);
	req->tty = r->tty;
	req->in = r->stdin;
	req->out = r->stdout;
	req->err = r->stderr;
	char *url = NULL;
	if (issue(ctx, steal_ptr(&req), &url, err) < 0)
		return -err->code;
	Runtime__V1__ExecResponse *resp =
	    srv_new(Runtime__V1__ExecResponse, RUNTIME__V1__EXEC_RESPONSE__INIT);
	resp->url = url;
	*ret_out = resp;
	return 0;
}

int srv_attach(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err)
{
	const Runtime__V1__AttachRequest *r = in;
	if (check_stdio("Attach", r->tty, r->stdin, r->stdout, r->stderr, err) < 0)
		return -err->code;
	_cleanup_(srv_stream_req_freep) struct srv_stream_req *req = xnew(struct srv_stream_req, 1);
	if (running_container(ctx, "Attach", r->container_id, &req->target, err) < 0)
		return -err->code;
	req->kind = SRV_STREAM_ATTACH;
	req->tty = r->tty;
	req->in = r->stdin;
	req->out = r->stdout;
	req->err = r->stderr;
	char *url = NULL;
	if (issue(ctx, steal_ptr(&req), &url, err) < 0)
		return -err->code;
	Runtime__V1__AttachResponse *resp =
	    srv_new(Runtime__V1__AttachResponse, RUNTIME__V1__ATTACH_RESPONSE__INIT);
	resp->url = url;
	*ret_out = resp;
	return 0;
}

int srv_port_forward(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err)
{
	const Runtime__V1__PortForwardRequest *r = in;
	if (isempty(r->pod_sandbox_id))
		return husk_error_set(err, EINVAL, "PortForward: pod_sandbox_id is empty");
	for (size_t i = 0; i < r->n_port; i++)
		if (r->port[i] <= 0 || r->port[i] > 65535)
			return husk_error_set(err, EINVAL, "PortForward: bad port %d",
					      (int)r->port[i]);
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	if (rt_pod_get(ctx->runtime, r->pod_sandbox_id, &pod, err) < 0)
		return husk_error_prefix(err, "PortForward");
	if (pod->state != POD_STATE_READY)
		return husk_error_set(err, EBUSY, "PortForward: pod sandbox '%s' is not ready",
				      pod->id);
	struct srv_stream_req *req = xnew(struct srv_stream_req, 1);
	req->kind = SRV_STREAM_PORTFORWARD;
	req->target = xstrdup(pod->id);
	char *url = NULL;
	if (issue(ctx, req, &url, err) < 0)
		return -err->code;
	Runtime__V1__PortForwardResponse *resp =
	    srv_new(Runtime__V1__PortForwardResponse, RUNTIME__V1__PORT_FORWARD_RESPONSE__INIT);
	resp->url = url;
	*ret_out = resp;
	return 0;
}
