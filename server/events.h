/* Container lifecycle events for GetContainerEvents: a bounded ring that
 * the runtime publishes into and each stream reads from at its own pace. */
#ifndef HUSK_SERVER_EVENTS_H
#define HUSK_SERVER_EVENTS_H

#include <stdint.h>

#include "common/util.h"

#define SRV_EVENTS_RING 1024

/* Values as CRI's ContainerEventType. */
enum srv_event_type {
	SRV_EVENT_CREATED = 0,
	SRV_EVENT_STARTED = 1,
	SRV_EVENT_STOPPED = 2,
	SRV_EVENT_DELETED = 3,
};

struct srv_event {
	char container_id[129];
	char pod_id[129];
	enum srv_event_type type;
	long long created_at; /* ns since the epoch */
};

struct srv_events;

struct srv_events *srv_events_new(void);
void srv_events_free(struct srv_events *ev);

/* Append an event; never blocks on readers (slow ones lose the oldest). */
void srv_events_publish(struct srv_events *ev, enum srv_event_type type, const char *container_id,
			const char *pod_id);

/* The sequence number the next event will get: a new reader starts here. */
uint64_t srv_events_tail(struct srv_events *ev);

/* Copy the event with sequence *seq into ret_event and advance *seq, waiting
 * up to timeout_ms for one. Returns 1 with an event, 0 on timeout, or the
 * number of events lost (as a negative count) when the reader fell more than
 * the ring behind; *seq then skips to the oldest event still held. */
int srv_events_next(struct srv_events *ev, uint64_t *seq, int timeout_ms,
		    struct srv_event *ret_event);

#endif
