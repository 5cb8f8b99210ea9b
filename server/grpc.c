/* gRPC C-core loop. Poller threads wait on one completion queue and never
 * run handlers; they hand new calls to a worker pool that grows on demand,
 * so a slow call (a container start) never holds up a fast one. Pulls have
 * a bounded pool of their own (the method table's pool column).
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
#include <malloc.h>
#include <string.h>

#include "common/log.h"
#include "server/metrics.h"

#define POLLERS 2
#define MIN_WORKERS 4
#define TRIM_BYTES (1 << 20)
#define TRIM_DELAY_NS 1000000000LL

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
	bool batch_busy;	   /* a batch is in flight; one at a time */
	bool batch_ok;		   /* how the last batch completed */
	bool close_armed;	   /* RECV_CLOSE_ON_SERVER started on its own */
	bool closed;		   /* ... and completed */
	int cancelled;		   /* filled by RECV_CLOSE_ON_SERVER */
	bool status_sent;	   /* the final batch has been started */
	struct husk_cancel cancel; /* what srv_call_cancel() returns */
	bool sent_initial_md;
	struct call *next; /* work queue link */
};

struct srv_stream {
	struct call *c;
};

/* A set of workers and their queue, under srv_grpc.lock. A worker above
 * min_threads exits once it has been idle for idle_exit_s. */
struct pool {
	struct srv_grpc *g;
	const char *name;
	pthread_cond_t cond; /* work queued or stopping (CLOCK_MONOTONIC) */
	struct call *head, *tail;
	int queued, threads, idle, min_threads, max_threads;
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
	pthread_cond_t cond;  /* a worker exited, or shutdown_done */
	struct pool pools[SRV_POOL_COUNT];
	int idle_exit_s;
	bool trim_due; /* calls ran since the last malloc_trim */
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

/* The call's deadline as a CLOCK_MONOTONIC instant, 0 for none. gpr's
 * clocks need not share an epoch with ours, so convert the time left. */
static long long deadline_mono_ns(gpr_timespec deadline)
{
	if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0)
		return 0;
	gpr_timespec left = gpr_time_sub(deadline, gpr_now(deadline.clock_type));
	if (left.tv_sec > 100LL * 365 * 86400)
		return 0; /* a century away: no deadline, and no overflow */
	long long ns = (long long)left.tv_sec * 1000000000LL + left.tv_nsec;
	long long at = now_mono_ns() + ns;
	return at > 0 ? at : 1; /* already past: still a deadline, not "none" */
}

/* Learn as soon as the client goes: RECV_CLOSE_ON_SERVER completes when the
 * call ends, which before our status means the client cancelled, its
 * deadline passed or its connection dropped. */
static void call_arm_close(struct call *c)
{
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->cancelled;
	pthread_mutex_lock(&c->lock);
	c->close_armed = true;
	pthread_mutex_unlock(&c->lock);
	if (grpc_call_start_batch(c->call, &op, 1, &c->close_tag, NULL) != GRPC_CALL_OK) {
		pthread_mutex_lock(&c->lock);
		c->close_armed = false; /* call_finish asks for it with the status */
		pthread_mutex_unlock(&c->lock);
	}
}

static struct call *call_new(struct srv_grpc *g, const struct srv_method *m, const char *path,
			     grpc_call *gc, grpc_byte_buffer *payload, gpr_timespec deadline)
{
	struct call *c = xnew(struct call, 1);
	c->g = g;
	c->method = m;
	c->path = xstrdup(path);
	c->call = gc;
	c->payload = payload;
	c->batch_tag = (struct tag){TAG_BATCH, c};
	c->close_tag = (struct tag){TAG_CLOSE, c};
	c->cancel.deadline_ns = deadline_mono_ns(deadline);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	call_arm_close(c);
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

/* Answer and close the call; the response bytes *data (or NULL) go to
 * gRPC as they are, not copied. */
static void call_finish(struct call *c, enum srv_code code, const char *message, uint8_t **data,
			size_t len)
{
	grpc_op ops[4];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	if (!c->sent_initial_md) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		n++;
	}
	grpc_byte_buffer *bb = NULL;
	if (data && *data) {
		grpc_slice sl = grpc_slice_new(steal_ptr(data), len, free);
		bb = grpc_raw_byte_buffer_create(&sl, 1);
		grpc_slice_unref(sl);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n].data.send_message.send_message = bb;
		n++;
	}
	grpc_slice details = grpc_slice_from_copied_string(message ? message : "");
	pthread_mutex_lock(&c->lock);
	c->status_sent = true;
	pthread_mutex_unlock(&c->lock);
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
	uint8_t *data = NULL;
	size_t len = srv_encode(msg, &data);
	grpc_slice sl = grpc_slice_new(data, len, free);
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

static __thread const struct husk_cancel *tls_cancel;

const struct husk_cancel *srv_call_cancel(void)
{
	static const struct husk_cancel never;
	return tls_cancel ? tls_cancel : &never;
}

/* Run one call to its end and free it. Returns the bytes of its request
 * and response, so the worker can give big buffers back to the kernel. */
static size_t call_run(struct call *c)
{
	long long t0 = now_mono_ns();
	const struct srv_method *m = c->method;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ uint8_t *out_data = NULL;
	_cleanup_free_ uint8_t *in_data = NULL;
	size_t out_len = 0, in_len = 0;
	int r = 0;
	srv_metrics_call_begin(c->g->ctx->metrics);

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
	/* Queued while its client went: nobody waits for the answer. */
	if (husk_cancelled(&c->cancel)) {
		r = husk_error_set(&err, ECANCELED, "%s: the client went before the call ran",
				   c->path);
		goto done;
	}
	/* Before any work: a 15 MiB id must not be copied around. */
	if (srv_request_check(m->input, in_data, in_len, &err) < 0) {
		const char *slash = strrchr(c->path, '/');
		r = husk_error_prefix(&err, "%s", slash ? slash + 1 : c->path);
		goto done;
	}
	void *req = srv_decode(m->input, in_data, in_len);
	if (!req) {
		r = husk_error_set(&err, EINVAL, "%s: request is not a valid %s message", c->path,
				   m->input->name);
		goto done;
	}
	tls_cancel = &c->cancel;
	if (m->server_streaming) {
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
	tls_cancel = NULL;
	srv_message_free(req);
done:;
	enum srv_code code = r < 0 ? srv_status_of(&err) : SRV_OK;
	const char *msg = r < 0 ? husk_error_msg(&err) : "";
	/* Counted before the status goes out, so a client that got its answer
	 * finds its call in /metrics. */
	long long ns = now_mono_ns() - t0;
	srv_metrics_call_end(c->g->ctx->metrics, m, code, ns);
	if (r >= 0 && !m->server_streaming)
		call_finish(c, code, msg, &out_data, out_len);
	else
		call_finish(c, code, msg, NULL, 0);
	long long us = ns / 1000;
	if (code == SRV_INTERNAL)
		log_error("call method=%s status=%s duration_us=%lld error=\"%s\"", c->path,
			  srv_code_name(code), us, msg);
	else if (code != SRV_OK)
		log_debug("call method=%s status=%s duration_us=%lld error=\"%s\"", c->path,
			  srv_code_name(code), us, msg);
	else
		log_debug("call method=%s status=OK duration_us=%lld", c->path, us);
	call_free(c);
	return in_len + out_len;
}

/* glibc keeps what was freed in its arenas: hand it back to the kernel so
 * that RSS returns near its baseline after load. Under g->lock, which it
 * drops while trimming. */
static void trim_locked(struct srv_grpc *g)
{
	g->trim_due = false;
	pthread_mutex_unlock(&g->lock);
	malloc_trim(0);
	pthread_mutex_lock(&g->lock);
}

static void *worker_main(void *arg)
{
	struct pool *p = arg;
	struct srv_grpc *g = p->g;
	pthread_mutex_lock(&g->lock);
	for (;;) {
		if (!p->head && !g->stop) {
			/* One deadline per idle spell: wakeups for other work or
			 * another worker's exit must not restart it. */
			long long until = now_mono_ns() + g->idle_exit_s * 1000000000LL;
			bool expired = false;
			p->idle++;
			while (!p->head && !g->stop && !expired) {
				/* A second into a lull, one idle worker trims. */
				long long at = until;
				if (g->trim_due && now_mono_ns() + TRIM_DELAY_NS < until)
					at = now_mono_ns() + TRIM_DELAY_NS;
				struct timespec ts = {at / 1000000000LL, at % 1000000000LL};
				if (pthread_cond_timedwait(&p->cond, &g->lock, &ts) != ETIMEDOUT)
					continue;
				if (g->trim_due && !p->head && !g->stop)
					trim_locked(g);
				expired = now_mono_ns() >= until;
			}
			p->idle--;
			if (expired && !p->head && !g->stop && p->threads > p->min_threads)
				break;
			continue;
		}
		if (!p->head)
			break; /* stopping and nothing left */
		struct call *c = p->head;
		p->head = c->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&g->lock);
		size_t bytes = call_run(c);
		pthread_mutex_lock(&g->lock);
		/* A big message is given back at once, and again in the next
		 * lull (above): grpc frees some of a call's buffers later, on
		 * its own threads. */
		if (bytes >= TRIM_BYTES)
			trim_locked(g);
		g->trim_due = true;
	}
	p->threads--;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

static void spawn_worker_locked(struct pool *p)
{
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, worker_main, p) == 0) {
		/* Named so that ps and the tests can tell the pools apart. */
		char name[16];
		snprintf(name, sizeof(name), "huskd-%s", p->name);
		pthread_setname_np(t, name);
		p->threads++;
	} else
		log_warn("worker pool %s: cannot start a thread (threads=%d)", p->name, p->threads);
	pthread_attr_destroy(&attr);
}

static void enqueue(struct srv_grpc *g, struct call *c)
{
	struct pool *p = &g->pools[c->method ? c->method->pool : SRV_POOL_MAIN];
	pthread_mutex_lock(&g->lock);
	if (p->tail)
		p->tail->next = c;
	else
		p->head = c;
	p->tail = c;
	p->queued++;
	/* Grow rather than queue behind a slow call (up to the pool's bound). */
	if (p->queued > p->idle && p->threads < p->max_threads)
		spawn_worker_locked(p);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&g->lock);
}

static int pool_threads_locked(struct srv_grpc *g)
{
	int n = 0;
	for (int i = 0; i < SRV_POOL_COUNT; i++)
		n += g->pools[i].threads;
	return n;
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
			struct call *c = call_new(g, s->method, s->method->path, s->call,
						  s->payload, s->deadline);
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
				struct call *c =
				    call_new(g, NULL, path, gen->call, NULL, gen->details.deadline);
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
				if (c->cancelled || !c->status_sent)
					__atomic_store_n(&c->cancel.cancelled, true,
							 __ATOMIC_RELEASE);
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

int srv_grpc_start(struct srv_ctx *ctx, const char *socket_path, const struct srv_grpc_opts *opts,
		   struct srv_grpc **ret, struct husk_error *err)
{
	grpc_init();
	struct srv_grpc *g = xnew(struct srv_grpc, 1);
	g->ctx = ctx;
	g->idle_exit_s = opts->idle_timeout_s > 0 ? opts->idle_timeout_s : 30;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	static const char *const names[SRV_POOL_COUNT] = {"main", "pull"};
	for (int i = 0; i < SRV_POOL_COUNT; i++) {
		struct pool *p = &g->pools[i];
		p->g = g;
		p->name = names[i];
		pthread_cond_init(&p->cond, &ca);
	}
	pthread_condattr_destroy(&ca);
	g->pools[SRV_POOL_MAIN].min_threads = MIN_WORKERS;
	g->pools[SRV_POOL_MAIN].max_threads =
	    opts->max_workers > MIN_WORKERS ? opts->max_workers : MIN_WORKERS;
	g->pools[SRV_POOL_PULL].min_threads = 0;
	g->pools[SRV_POOL_PULL].max_threads = opts->max_pulls > 0 ? opts->max_pulls : 1;
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
		spawn_worker_locked(&g->pools[SRV_POOL_MAIN]);
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
	for (int i = 0; i < SRV_POOL_COUNT; i++)
		pthread_cond_broadcast(&g->pools[i].cond);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	while (pool_threads_locked(g) > 0)
		if (pthread_cond_timedwait(&g->cond, &g->lock, &ts) == ETIMEDOUT)
			break;
	int left = pool_threads_locked(g);
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
	for (int i = 0; i < SRV_POOL_COUNT; i++)
		pthread_cond_destroy(&g->pools[i].cond);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
	free(g);
	grpc_shutdown();
}
