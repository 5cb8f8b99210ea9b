/* Creations by identity, for clients that give up and retry (the kubelet
 * after --runtime-request-timeout): while a RunPodSandbox or CreateContainer
 * runs its identity is reserved, and once it is done its result is kept for
 * a while, so a retry with the same identity and config gets the same id.
 * Results whose caller never came back are handed out for removal when the
 * keep period ends. Nothing here knows pods or containers: keys, digests
 * and ids are opaque strings, kind a tag the caller picks. */
#ifndef HUSK_RUNTIME_KEEP_H
#define HUSK_RUNTIME_KEEP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/cancel.h"
#include "common/error.h"

struct keep;
/* The creator's handle on its reservation, from keep_begin to keep_end. */
struct keep_entry;

/* A store that keeps finished results for period_ns and at most max of
 * them (beyond that the oldest ends its keep period at once). */
struct keep *keep_new(long long period_ns, size_t max);
/* Free the store; entries still reserved or kept are forgotten. Call it
 * after keep_stop and once no creator holds an entry. */
void keep_free(struct keep *k);

/* Reserve key (unique per identity) for a creation of config digest.
 * what describes the identity for messages ("pod sandbox 'web' (namespace
 * 'ns', uid 'u', attempt 0)"). Outcomes:
 *  - key free: a new reservation; *ret_entry is set, *ret_id NULL.
 *  - key kept with the same digest and not collected (the first caller
 *    had gone): *ret_id is the id made (caller frees), *ret_entry NULL;
 *    the result counts as collected unless cancel says this caller has
 *    gone too.
 *  - key reserved, or being removed, with the same digest: wait until that
 *    is over, then hand out the id even if collected (this call came
 *    while the first ran), or reserve anew when the first failed.
 *  - key kept with the same digest and collected: a duplicate of a call
 *    that got its answer, EEXIST "WHAT already exists as 'ID'".
 *  - a different digest: EEXIST naming what and saying the config differs.
 * Waiting ends with ETIMEDOUT when cancel's deadline passes and ECANCELED
 * when it is cancelled; nothing is reserved then. */
int keep_begin(struct keep *k, const char *key, const char *what, const char *digest, int kind,
	       const struct husk_cancel *cancel, struct keep_entry **ret_entry, char **ret_id,
	       struct husk_error *err);

/* The id the reserved creation makes, so keep_abort_id can find it. */
void keep_set_id(struct keep *k, struct keep_entry *e, const char *id);

/* Whether keep_abort_id asked this creation to give up. */
bool keep_aborted(struct keep *k, const struct keep_entry *e);
/* The same as a cancel object, for the steps of the creation that wait
 * (a CNI plugin); valid until keep_end. */
const struct husk_cancel *keep_abort_cancel(const struct keep_entry *e);

/* The creation is over: id NULL (it failed or gave up) frees the key; else
 * the result is kept for the period, marked collected when the caller got
 * it. e is gone afterwards; waiters wake up. */
void keep_end(struct keep *k, struct keep_entry *e, const char *id, bool collected);

/* For a Stop or Remove of id: when a reserved creation makes id, ask it to
 * give up and wait until it is over. 1 when there was one, 0 when not;
 * ETIMEDOUT or ECANCELED (as keep_begin) when cancel ends the wait. */
int keep_abort_id(struct keep *k, const char *id, const struct husk_cancel *cancel,
		  struct husk_error *err);

/* Drop the kept result that names id (its object has been removed). */
void keep_forget_id(struct keep *k, const char *id);
/* The client uses id without having had it from its creation call (it
 * found it in a list and adopted it): count the kept result as collected. */
void keep_collect_id(struct keep *k, const char *id);

/* For the remover thread: wait until a kept result reaches the end of its
 * keep period; results come in the order their periods end, those the
 * bound ended first. Collected ones are dropped here; for one nobody
 * collected, returns 1 with *ret_id (caller frees), *ret_kind and
 * *ret_what (caller frees) and the key marked as being removed: retries
 * wait until keep_removed. Returns 0 once keep_stop was called. Only a
 * change of its next deadline wakes it, not every keep_end. */
int keep_next_expired(struct keep *k, char **ret_id, int *ret_kind, char **ret_what);
/* The object of a result keep_next_expired handed out is gone (or could
 * not be removed: it is forgotten either way). */
void keep_removed(struct keep *k, const char *id);
/* Make keep_next_expired return 0. */
void keep_stop(struct keep *k);

/* Entries held (reserved, kept or being removed), and calls waiting in
 * keep_begin or keep_abort_id; for tests. */
size_t keep_count(struct keep *k);
size_t keep_waiters(struct keep *k);

#endif
