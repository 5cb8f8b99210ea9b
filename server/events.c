/* The container event ring behind GetContainerEvents. */
#include "server/events.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

struct srv_events {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t next; /* sequence of the next event published */
	struct srv_event ring[SRV_EVENTS_RING];
};

struct srv_events *srv_events_new(void)
{
	struct srv_events *ev = xnew(struct srv_events, 1);
	pthread_mutex_init(&ev->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ev->cond, &attr);
	pthread_condattr_destroy(&attr);
	return ev;
}

void srv_events_free(struct srv_events *ev)
{
	if (!ev)
		return;
	pthread_mutex_destroy(&ev->lock);
	pthread_cond_destroy(&ev->cond);
	free(ev);
}

void srv_events_publish(struct srv_events *ev, enum srv_event_type type, const char *container_id,
			const char *pod_id)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->lock);
	struct srv_event *e = &ev->ring[ev->next % SRV_EVENTS_RING];
	memset(e, 0, sizeof(*e));
	snprintf(e->container_id, sizeof(e->container_id), "%s", container_id ? container_id : "");
	snprintf(e->pod_id, sizeof(e->pod_id), "%s", pod_id ? pod_id : "");
	e->type = type;
	e->created_at = now_real_ns();
	ev->next++;
	pthread_cond_broadcast(&ev->cond);
	pthread_mutex_unlock(&ev->lock);
}

uint64_t srv_events_tail(struct srv_events *ev)
{
	pthread_mutex_lock(&ev->lock);
	uint64_t t = ev->next;
	pthread_mutex_unlock(&ev->lock);
	return t;
}

int srv_events_next(struct srv_events *ev, uint64_t *seq, int timeout_ms,
		    struct srv_event *ret_event)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ev->lock);
	while (*seq >= ev->next)
		if (pthread_cond_timedwait(&ev->cond, &ev->lock, &ts) == ETIMEDOUT)
			break;
	int r = 0;
	if (ev->next - *seq > SRV_EVENTS_RING) {
		uint64_t oldest = ev->next - SRV_EVENTS_RING;
		uint64_t lost = oldest - *seq;
		*seq = oldest;
		r = lost > 1000000 ? -1000000 : -(int)lost;
	} else if (*seq < ev->next) {
		*ret_event = ev->ring[*seq % SRV_EVENTS_RING];
		(*seq)++;
		r = 1;
	}
	pthread_mutex_unlock(&ev->lock);
	return r;
}
