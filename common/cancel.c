/* husk_cancelled(): the one test lower layers make to learn that the
 * caller of the request they serve has gone. */
#include "common/cancel.h"

#include "common/util.h"

bool husk_cancelled(const struct husk_cancel *c)
{
	if (!c)
		return false;
	if (__atomic_load_n(&c->cancelled, __ATOMIC_ACQUIRE))
		return true;
	return c->deadline_ns > 0 && now_mono_ns() >= c->deadline_ns;
}
