/* Pod networking through CNI plugins. For now: whether a usable network
 * configuration exists, which the runtime reports as NetworkReady. */
#ifndef HUSK_NETWORK_NETWORK_H
#define HUSK_NETWORK_NETWORK_H

#include "common/error.h"

/* Find the network configuration huskd would use in conf_dir: the first
 * file by name ending in .conflist, .conf or .json that parses as a CNI
 * config with a name and at least one plugin type. On success the caller
 * owns *ret_path. When none is usable returns -ENOENT with the reason in
 * err (naming the directory, or the file and what is wrong with it). */
int net_find_config(const char *conf_dir, char **ret_path, struct husk_error *err);

#endif
