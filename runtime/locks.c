/* The manager's locks and events: the step markers of pods and containers
 * on their stripes (the lock order is in runtime-internal.h), the events
 * handed to huskd, and a creation's check for a stop or remove that asked
 * it to give up. Below pod.c and container.c, which both use it. */
#include <errno.h>
#include <string.h>

#include "runtime/runtime-internal.h"

static unsigned stripe(const struct rt *rt, const char *id)
{
	unsigned h = 5381;
	for (const char *p = id; p && *p; p++)
		h = h * 33 + (unsigned char)*p;
	unsigned n = rt->opts.test_stripes;
	return h % (n > 0 && n < RT_LOCK_STRIPES ? n : RT_LOCK_STRIPES);
}

static struct rt_busy *busy_find(struct rt_stripe *st, const char *id, bool pod)
{
	for (struct rt_busy *b = st->busy; b; b = b->next)
		if (b->pod == pod && streq(b->id, id))
			return b;
	return NULL;
}

static struct rt_busy *busy_add(struct rt_stripe *st, const char *id, bool pod, bool stopping)
{
	struct rt_busy *b = xnew(struct rt_busy, 1);
	b->stripe = st;
	b->id = xstrdup(id);
	b->pod = pod;
	b->stopping = stopping;
	b->holders = 1;
	b->next = st->busy;
	st->busy = b;
	return b;
}

/* wait: whether to wait for a step under way, or give up (NULL). */
static struct rt_busy *begin(struct rt *rt, const char *id, bool pod, bool stop, bool wait)
{
	struct rt_stripe *st = &rt->stripes[stripe(rt, id)];
	pthread_mutex_lock(&st->lock);
	struct rt_busy *b;
	while ((b = busy_find(st, id, pod))) {
		if (stop && b->stopping) {
			b->holders++;
			pthread_mutex_unlock(&st->lock);
			return b;
		}
		if (!wait) {
			pthread_mutex_unlock(&st->lock);
			return NULL;
		}
		pthread_cond_wait(&st->cond, &st->lock);
	}
	b = busy_add(st, id, pod, stop);
	pthread_mutex_unlock(&st->lock);
	return b;
}

struct rt_busy *rt_pod_begin(struct rt *rt, const char *id)
{
	return begin(rt, id, true, false, true);
}

struct rt_busy *rt_ctr_begin(struct rt *rt, const char *id)
{
	return begin(rt, id, false, false, true);
}

struct rt_busy *rt_ctr_try_begin(struct rt *rt, const char *id)
{
	return begin(rt, id, false, false, false);
}

struct rt_busy *rt_ctr_begin_stop(struct rt *rt, const char *id)
{
	return begin(rt, id, false, true, true);
}

void rt_end(struct rt_busy *b)
{
	if (!b)
		return;
	struct rt_stripe *st = b->stripe;
	pthread_mutex_lock(&st->lock);
	if (--b->holders > 0) {
		pthread_mutex_unlock(&st->lock);
		return;
	}
	for (struct rt_busy **p = &st->busy; *p; p = &(*p)->next) {
		if (*p == b) {
			*p = b->next;
			break;
		}
	}
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
	free(b->id);
	free(b);
}

void rt_emit(struct rt *rt, enum rt_event ev, const char *ctr_id, const char *pod_id)
{
	if (rt->opts.on_event)
		rt->opts.on_event(rt->opts.data, ev, ctr_id, pod_id);
}

int rt_check_abort(struct rt *rt, struct keep_entry *ke, struct husk_error *err)
{
	if (!keep_aborted(rt->keep, ke))
		return 0;
	return husk_error_set(err, ECANCELED, "stopped or removed while being created");
}
