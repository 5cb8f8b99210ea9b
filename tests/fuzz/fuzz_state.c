/* The record files huskd reloads at start (state_store_open over
 * <state>/records): pods/ID.json and containers/ID.json, as a crash, a
 * full disk or a hand edit may leave them. The input is files separated
 * by lines "--"; each file's first byte says where it goes: bit 0 set a
 * pod, else a container; bit 1 set named after its own "id" (as huskd
 * writes it), else "x<n>.json". Whatever loads must be storable again:
 * every loaded record re-saves unchanged (state_*_modify without edits). */
#include "common/json.h"
#include "runtime/state/state.h"
#include "tests/fuzz/fuzz.h"

#define MAX_FILES 16

/* The record's own id when it makes a plain file name, else NULL. */
static char *id_of(const uint8_t *data, size_t len)
{
	_cleanup_json_ yajl_val tree = NULL;
	if (json_parse((const char *)data, len, "record", &tree, NULL) < 0)
		return NULL;
	const char *id = json_get_string(tree, "id");
	if (isempty(id) || strchr(id, '/') || streq(id, ".") || streq(id, "..") || strlen(id) > 200)
		return NULL;
	return xstrdup(id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *dir = xasprintf("%s/records", fuzz_tmpdir());
	_cleanup_free_ char *pods = xasprintf("%s/pods", dir);
	_cleanup_free_ char *ctrs = xasprintf("%s/containers", dir);
	fs_rm_rf(dir, NULL);
	FUZZ_CHECK(fs_mkdir_p(pods, 0700, NULL) == 0 && fs_mkdir_p(ctrs, 0700, NULL) == 0);
	for (int i = 0; size && i < MAX_FILES; i++) {
		size_t len;
		const uint8_t *file = fuzz_split(&data, &size, "\n--\n", &len);
		if (!len)
			continue;
		uint8_t sel = file[0];
		_cleanup_free_ char *id = sel & 2 ? id_of(file + 1, len - 1) : NULL;
		_cleanup_free_ char *path = id ? xasprintf("%s/%s.json", sel & 1 ? pods : ctrs, id)
					       : xasprintf("%s/x%d.json", sel & 1 ? pods : ctrs, i);
		fuzz_write_file(path, file + 1, len - 1);
	}

	_cleanup_(state_store_freep) struct state_store *s = NULL;
	_cleanup_strv_ char **problems = NULL;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	FUZZ_CHECK(state_store_open(dir, NULL, &s, &problems, &err) == 0);

	struct pod_record **pv = NULL;
	size_t pn = 0;
	FUZZ_CHECK(state_pod_list(s, NULL, &pv, &pn, &err) == 0);
	for (size_t i = 0; i < pn; i++) {
		if (state_pod_modify(s, pv[i]->id, NULL, NULL, &err) < 0) {
			fprintf(stderr, "loaded pod '%s' cannot be saved: %s\n", pv[i]->id,
				err.msg);
			abort();
		}
	}
	pod_records_free(pv, pn);

	struct ctr_record **cv = NULL;
	size_t cn = 0;
	FUZZ_CHECK(state_ctr_list(s, NULL, &cv, &cn, &err) == 0);
	for (size_t i = 0; i < cn; i++) {
		if (state_ctr_modify(s, cv[i]->id, NULL, NULL, &err) < 0) {
			fprintf(stderr, "loaded container '%s' cannot be saved: %s\n", cv[i]->id,
				err.msg);
			abort();
		}
	}
	ctr_records_free(cv, cn);
	return 0;
}
