/* gRPC C-core loop. Poller threads wait on one completion queue and never
 * run handlers; they hand new calls to a worker pool that grows on demand,
 * so a slow call (a pull, a container start) never holds up a fast one.
 * Every registered method keeps one request armed, tagged with its slot;
 * one generic request catches unknown paths and answers UNIMPLEMENTED. */
#include "server/grpc.h"

#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <string.h>

#include "common/log.h"

#define POLLERS 2
#define MIN_WORKERS 4
#define IDLE_EXIT_S 30

enum tag_kind { TAG_SLOT, TAG_GENERIC, TAG_BATCH, TAG_CLOSE, TAG_SHUTDOWN };

struct tag {
	enum tag_kind kind;
	void *owner;
};

struct srv_grpc;

/* One armed request for a registered method. */
struct slot {
	struct tag tag;
	struct srv_grpc *g;
	const struct srv_method *method;
	void *handle;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
};

/* The armed request for unknown methods. */
struct generic {
	struct tag tag;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
};

/* An accepted call, owned by the worker that runs it. Batches started on
 * it are counted in pending; pollers decrement and signal. */
struct call {
	struct srv_grpc *g;
	const struct srv_method *method; /* NULL for unknown paths */
	char *path;
	grpc_call *call;
	grpc_byte_buffer *payload;
	struct tag batch_tag, close_tag;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool batch_busy;  /* a batch is in flight; one at a time */
	bool batch_ok;	  /* how the last batch completed */
	bool close_armed; /* RECV_CLOSE_ON_SERVER started on its own */
	bool closed;	  /* ... and completed */
	int cancelled;	  /* filled by RECV_CLOSE_ON_SERVER */
	bool sent_initial_md;
	struct call *next; /* work queue link */
};

struct srv_stream {
	struct call *c;
};

struct srv_grpc {
	struct srv_ctx *ctx;
	grpc_server *server;
	grpc_completion_queue *cq;
	pthread_t pollers[POLLERS];
	struct slot *slots;
	size_t n_slots;
	struct generic generic;
	struct tag shutdown_tag;
	bool shutting_down;

	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cond;
	struct call *head, *tail;
	int threads, idle, max_threads;
	bool stop;
	bool shutdown_done;
};

static void md_free(grpc_metadata_array *md)
{
	grpc_metadata_array_destroy(md);
}

static void slot_arm(struct slot *s)
{
	grpc_metadata_array_init(&s->md);
	s->call = NULL;
	s->payload = NULL;
	grpc_call_error e =
	    grpc_server_request_registered_call(s->g->server, s->handle, &s->call, &s->deadline,
						&s->md, &s->payload, s->g->cq, s->g->cq, &s->tag);
	if (e != GRPC_CALL_OK)
		log_error("arm method=%s: grpc error %d", s->method->path, e);
}

static void generic_arm(struct srv_grpc *g)
{
	grpc_call_details_init(&g->generic.details);
	grpc_metadata_array_init(&g->generic.md);
	g->generic.call = NULL;
	grpc_call_error e =
	    grpc_server_request_call(g->server, &g->generic.call, &g->generic.details,
				     &g->generic.md, g->cq, g->cq, &g->generic.tag);
	if (e != GRPC_CALL_OK)
		log_error("arm generic call: grpc error %d", e);
}

static struct call *call_new(struct srv_grpc *g, const struct srv_method *m, const char *path,
			     grpc_call *gc, grpc_byte_buffer *payload)
{
	struct call *c = xnew(struct call, 1);
	c->g = g;
	c->method = m;
	c->path = xstrdup(path);
	c->call = gc;
	c->payload = payload;
	c->batch_tag = (struct tag){TAG_BATCH, c};
	c->close_tag = (struct tag){TAG_CLOSE, c};
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	return c;
}

static void call_free(struct call *c)
{
	if (c->payload)
		grpc_byte_buffer_destroy(c->payload);
	if (c->call)
		grpc_call_unref(c->call);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c->path);
	free(c);
}

/* Start a batch and wait until a poller reports its completion. */
static bool call_batch(struct call *c, const grpc_op *ops, size_t n)
{
	pthread_mutex_lock(&c->lock);
	c->batch_busy = true;
	pthread_mutex_unlock(&c->lock);
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->batch_tag, NULL);
	pthread_mutex_lock(&c->lock);
	if (e != GRPC_CALL_OK) {
		c->batch_busy = false;
		pthread_mutex_unlock(&c->lock);
		log_warn("call method=%s: start batch: grpc error %d", c->path, e);
		return false;
	}
	while (c->batch_busy)
		pthread_cond_wait(&c->cond, &c->lock);
	bool ok = c->batch_ok;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

static void call_finish(struct call *c, enum srv_code code, const char *message,
			const uint8_t *data, size_t len)
{
	grpc_op ops[4];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	if (!c->sent_initial_md) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		n++;
	}
	grpc_byte_buffer *bb = NULL;
	if (data) {
		grpc_slice sl = grpc_slice_from_copied_buffer((const char *)data, len);
		bb = grpc_raw_byte_buffer_create(&sl, 1);
		grpc_slice_unref(sl);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n].data.send_message.send_message = bb;
		n++;
	}
	grpc_slice details = grpc_slice_from_copied_string(message ? message : "");
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = (grpc_status_code)code;
	ops[n].data.send_status_from_server.status_details = &details;
	n++;
	if (!c->close_armed) {
		ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
		ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
		n++;
	}
	call_batch(c, ops, n);
	grpc_slice_unref(details);
	if (bb)
		grpc_byte_buffer_destroy(bb);
	/* The call may be freed only once the close op has completed too. */
	pthread_mutex_lock(&c->lock);
	while (c->close_armed && !c->closed)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

static bool payload_read(grpc_byte_buffer *bb, uint8_t **ret, size_t *ret_len)
{
	grpc_byte_buffer_reader r;
	if (!grpc_byte_buffer_reader_init(&r, bb))
		return false;
	grpc_slice sl = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	size_t len = GRPC_SLICE_LENGTH(sl);
	uint8_t *buf = xmalloc(len);
	memcpy(buf, GRPC_SLICE_START_PTR(sl), len);
	grpc_slice_unref(sl);
	*ret = buf;
	*ret_len = len;
	return true;
}

int srv_stream_send(struct srv_stream *s, const ProtobufCMessage *msg)
{
	struct call *c = s->c;
	if (srv_stream_cancelled(s))
		return -ECANCELED;
	_cleanup_free_ uint8_t *data = NULL;
	size_t len = srv_encode(msg, &data);
	grpc_slice sl = grpc_slice_from_copied_buffer((const char *)data, len);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
	grpc_slice_unref(sl);
	grpc_op ops[2];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	if (!c->sent_initial_md) {
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
		c->sent_initial_md = true;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n].data.send_message.send_message = bb;
	n++;
	bool ok = call_batch(c, ops, n);
	grpc_byte_buffer_destroy(bb);
	return ok ? 0 : -ECANCELED;
}

bool srv_stream_cancelled(struct srv_stream *s)
{
	struct call *c = s->c;
	pthread_mutex_lock(&c->lock);
	bool gone = c->closed || __atomic_load_n(&c->g->stop, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);
	return gone;
}

static void call_run(struct call *c)
{
	long long t0 = now_mono_ns();
	const struct srv_method *m = c->method;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ uint8_t *out_data = NULL;
	_cleanup_free_ uint8_t *in_data = NULL;
	size_t out_len = 0, in_len = 0;
	int r = 0;

	if (!m) {
		r = husk_error_set(&err, ENOSYS, "unknown method '%s'", c->path);
		goto done;
	}
	if (!m->unary && !m->stream) {
		r = husk_error_set(&err, ENOSYS, "method '%s' is not implemented by husk", c->path);
		goto done;
	}
	if (!c->payload || !payload_read(c->payload, &in_data, &in_len)) {
		r = husk_error_set(&err, EINVAL, "%s: no request message", c->path);
		goto done;
	}
	void *req = srv_decode(m->input, in_data, in_len);
	if (!req) {
		r = husk_error_set(&err, EINVAL, "%s: request is not a valid %s message", c->path,
				   m->input->name);
		goto done;
	}
	if (m->server_streaming) {
		grpc_op op;
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
		op.data.recv_close_on_server.cancelled = &c->cancelled;
		pthread_mutex_lock(&c->lock);
		c->close_armed = true;
		pthread_mutex_unlock(&c->lock);
		if (grpc_call_start_batch(c->call, &op, 1, &c->close_tag, NULL) != GRPC_CALL_OK) {
			pthread_mutex_lock(&c->lock);
			c->close_armed = false;
			pthread_mutex_unlock(&c->lock);
		}
		struct srv_stream s = {c};
		log_set_method(c->path);
		r = m->stream(c->g->ctx, req, &s, &err);
		log_set_method(NULL);
	} else {
		void *resp = NULL;
		log_set_method(c->path);
		r = m->unary(c->g->ctx, req, &resp, &err);
		log_set_method(NULL);
		if (r >= 0 && resp)
			out_len = srv_encode(resp, &out_data);
		srv_message_free(resp);
		if (r >= 0 && !resp)
			r = husk_error_set(&err, EIO, "%s: handler returned no response", c->path);
	}
	srv_message_free(req);
done:;
	enum srv_code code = r < 0 ? srv_status_from(err.code) : SRV_OK;
	const char *msg = r < 0 ? husk_error_msg(&err) : "";
	if (r >= 0 && !m->server_streaming)
		call_finish(c, code, msg, out_data, out_len);
	else
		call_finish(c, code, msg, NULL, 0);
	long long us = (now_mono_ns() - t0) / 1000;
	if (code == SRV_INTERNAL)
		log_error("call method=%s status=%s duration_us=%lld error=\"%s\"", c->path,
			  srv_code_name(code), us, msg);
	else if (code != SRV_OK)
		log_debug("call method=%s status=%s duration_us=%lld error=\"%s\"", c->path,
			  srv_code_name(code), us, msg);
	else
		log_debug("call method=%s status=OK duration_us=%lld", c->path, us);
	call_free(c);
}

static void *worker_main(void *arg)
{
	struct srv_grpc *g = arg;
	pthread_mutex_lock(&g->lock);
	for (;;) {
		while (!g->head && !g->stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += IDLE_EXIT_S;
			g->idle++;
			int r = pthread_cond_timedwait(&g->cond, &g->lock, &ts);
			g->idle--;
			if (r == ETIMEDOUT && !g->head && g->threads > MIN_WORKERS)
				goto out;
		}
		if (!g->head)
			break; /* stopping and nothing left */
		struct call *c = g->head;
		g->head = c->next;
		if (!g->head)
			g->tail = NULL;
		pthread_mutex_unlock(&g->lock);
		call_run(c);
		pthread_mutex_lock(&g->lock);
	}
out:
	g->threads--;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

static void spawn_worker_locked(struct srv_grpc *g)
{
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, worker_main, g) == 0)
		g->threads++;
	else
		log_warn("worker pool: cannot start a thread (threads=%d)", g->threads);
	pthread_attr_destroy(&attr);
}

static void enqueue(struct srv_grpc *g, struct call *c)
{
	pthread_mutex_lock(&g->lock);
	if (g->tail)
		g->tail->next = c;
	else
		g->head = c;
	g->tail = c;
	/* Grow rather than queue behind a slow call. */
	if (g->idle == 0 && g->threads < g->max_threads)
		spawn_worker_locked(g);
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void *poller_main(void *arg)
{
	struct srv_grpc *g = arg;
	for (;;) {
		grpc_event ev =
		    grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		struct tag *t = ev.tag;
		switch (t->kind) {
		case TAG_SLOT: {
			struct slot *s = t->owner;
			if (!ev.success) {
				/* Server shutting down: the slot is not re-armed. */
				md_free(&s->md);
				if (s->payload)
					grpc_byte_buffer_destroy(s->payload);
				if (s->call)
					grpc_call_unref(s->call);
				break;
			}
			struct call *c =
			    call_new(g, s->method, s->method->path, s->call, s->payload);
			md_free(&s->md);
			if (!g->shutting_down)
				slot_arm(s);
			enqueue(g, c);
			break;
		}
		case TAG_GENERIC: {
			struct generic *gen = &g->generic;
			if (ev.success) {
				size_t len = GRPC_SLICE_LENGTH(gen->details.method);
				_cleanup_free_ char *path = xstrndup(
				    (const char *)GRPC_SLICE_START_PTR(gen->details.method), len);
				struct call *c = call_new(g, NULL, path, gen->call, NULL);
				grpc_call_details_destroy(&gen->details);
				md_free(&gen->md);
				if (!g->shutting_down)
					generic_arm(g);
				enqueue(g, c);
			} else {
				if (gen->call)
					grpc_call_unref(gen->call);
				grpc_call_details_destroy(&gen->details);
				md_free(&gen->md);
			}
			break;
		}
		case TAG_BATCH:
		case TAG_CLOSE: {
			struct call *c = t->owner;
			pthread_mutex_lock(&c->lock);
			if (t->kind == TAG_BATCH) {
				c->batch_ok = ev.success;
				c->batch_busy = false;
			} else {
				c->closed = true;
			}
			pthread_cond_broadcast(&c->cond);
			pthread_mutex_unlock(&c->lock);
			break;
		}
		case TAG_SHUTDOWN:
			pthread_mutex_lock(&g->lock);
			g->shutdown_done = true;
			pthread_cond_broadcast(&g->cond);
			pthread_mutex_unlock(&g->lock);
			break;
		}
	}
	return NULL;
}

int srv_grpc_start(struct srv_ctx *ctx, const char *socket_path, int max_workers,
		   struct srv_grpc **ret, struct husk_error *err)
{
	grpc_init();
	struct srv_grpc *g = xnew(struct srv_grpc, 1);
	g->ctx = ctx;
	g->max_threads = max_workers > MIN_WORKERS ? max_workers : MIN_WORKERS;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->shutdown_tag = (struct tag){TAG_SHUTDOWN, g};
	g->generic.tag = (struct tag){TAG_GENERIC, &g->generic};

	grpc_arg args[2];
	memset(args, 0, sizeof(args));
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[0].value.integer = SRV_MAX_MESSAGE;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
	args[1].value.integer = SRV_MAX_MESSAGE;
	grpc_channel_args chargs = {ARRAY_SIZE(args), args};

	_cleanup_free_ char *addr = xasprintf("unix:%s", socket_path);
	g->cq = grpc_completion_queue_create_for_next(NULL);
	g->server = grpc_server_create(&chargs, NULL);
	grpc_server_register_completion_queue(g->server, g->cq, NULL);
	g->slots = xnew(struct slot, srv_methods_count);
	g->n_slots = srv_methods_count;
	for (size_t i = 0; i < srv_methods_count; i++) {
		struct slot *s = &g->slots[i];
		s->tag = (struct tag){TAG_SLOT, s};
		s->g = g;
		s->method = &srv_methods[i];
		s->handle = grpc_server_register_method(
		    g->server, s->method->path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
		if (!s->handle) {
			husk_error_set(err, EINVAL, "register method '%s'", s->method->path);
			goto fail;
		}
	}
	grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
	int port = grpc_server_add_http2_port(g->server, addr, creds);
	grpc_server_credentials_release(creds);
	if (port == 0) {
		husk_error_set(err, EADDRINUSE, "listen on '%s': grpc could not bind the socket",
			       socket_path);
		goto fail;
	}
	grpc_server_start(g->server);
	for (size_t i = 0; i < g->n_slots; i++)
		slot_arm(&g->slots[i]);
	generic_arm(g);
	pthread_mutex_lock(&g->lock);
	for (int i = 0; i < MIN_WORKERS; i++)
		spawn_worker_locked(g);
	pthread_mutex_unlock(&g->lock);
	for (int i = 0; i < POLLERS; i++)
		pthread_create(&g->pollers[i], NULL, poller_main, g);
	*ret = g;
	return 0;
fail:
	grpc_server_destroy(g->server);
	grpc_completion_queue_shutdown(g->cq);
	while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(g->cq);
	free(g->slots);
	free(g);
	grpc_shutdown();
	return -err->code;
}

static bool wait_flag(struct srv_grpc *g, bool *flag, int timeout_s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_s;
	pthread_mutex_lock(&g->lock);
	while (!*flag)
		if (pthread_cond_timedwait(&g->cond, &g->lock, &ts) == ETIMEDOUT)
			break;
	bool ok = *flag;
	pthread_mutex_unlock(&g->lock);
	return ok;
}

void srv_grpc_stop(struct srv_grpc *g, int timeout_s)
{
	if (!g)
		return;
	g->shutting_down = true;
	grpc_server_shutdown_and_notify(g->server, g->cq, &g->shutdown_tag);
	if (!wait_flag(g, &g->shutdown_done, timeout_s)) {
		log_warn("shutdown: calls still running after %ds, cancelling them", timeout_s);
		grpc_server_cancel_all_calls(g->server);
		pthread_mutex_lock(&g->lock);
		g->stop = true; /* streams see it in srv_stream_cancelled */
		pthread_mutex_unlock(&g->lock);
		wait_flag(g, &g->shutdown_done, 5);
	}
	/* Let the workers finish what they hold, then exit. */
	pthread_mutex_lock(&g->lock);
	g->stop = true;
	pthread_cond_broadcast(&g->cond);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	while (g->threads > 0)
		if (pthread_cond_timedwait(&g->cond, &g->lock, &ts) == ETIMEDOUT)
			break;
	int left = g->threads;
	pthread_mutex_unlock(&g->lock);
	if (left > 0) {
		/* A handler is stuck in a system call; the process is exiting
		 * anyway, so leave grpc's objects to the kernel. */
		log_warn("shutdown: %d worker(s) still busy, exiting without waiting", left);
		return;
	}
	grpc_server_destroy(g->server);
	grpc_completion_queue_shutdown(g->cq);
	for (int i = 0; i < POLLERS; i++)
		pthread_join(g->pollers[i], NULL);
	grpc_completion_queue_destroy(g->cq);
	free(g->slots);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
	free(g);
	grpc_shutdown();
}
