/* The HTTP/1.1 request head a streaming client sends before it upgrades:
 * the request line and headers parsed into struct srv_http_req, and the
 * header lookups the handshake needs. No sockets here. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server/stream_proto.h"

void srv_http_req_clear(struct srv_http_req *h)
{
	free(h->method);
	free(h->path);
	for (size_t i = 0; i < h->n; i++) {
		free(h->name[i]);
		free(h->value[i]);
	}
	*h = (struct srv_http_req){0};
}

const char *srv_http_get(const struct srv_http_req *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcasecmp(h->name[i], name) == 0)
			return h->value[i];
	return NULL;
}

char **srv_http_list(const struct srv_http_req *h, const char *name)
{
	char **v = xnew(char *, 1);
	for (size_t i = 0; i < h->n; i++) {
		if (strcasecmp(h->name[i], name) != 0)
			continue;
		_cleanup_free_ char *copy = xstrdup(h->value[i]);
		char *save = NULL;
		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			while (*t == ' ' || *t == '\t')
				t++;
			size_t l = strlen(t);
			while (l && (t[l - 1] == ' ' || t[l - 1] == '\t'))
				t[--l] = '\0';
			if (*t)
				v = strv_append(v, t);
		}
	}
	return v;
}

bool srv_http_has_token(const struct srv_http_req *h, const char *name, const char *token)
{
	_cleanup_strv_ char **v = srv_http_list(h, name);
	for (size_t i = 0; v[i]; i++)
		if (strcasecmp(v[i], token) == 0)
			return true;
	return false;
}

int srv_http_parse(char *head, struct srv_http_req *h)
{
	char *save = NULL;
	char *line = strtok_r(head, "\n", &save);
	if (!line)
		return -EINVAL;
	char m[16], p[2048], v[16];
	if (sscanf(line, "%15s %2047s %15s", m, p, v) != 3 || !startswith(v, "HTTP/1."))
		return -EINVAL;
	h->method = xstrdup(m);
	h->path = xstrdup(p);
	while ((line = strtok_r(NULL, "\n", &save))) {
		size_t l = strlen(line);
		if (l && line[l - 1] == '\r')
			line[--l] = '\0';
		if (!l)
			break;
		char *colon = strchr(line, ':');
		if (!colon || h->n >= SRV_HTTP_MAX_HEADERS)
			return -EINVAL;
		*colon = '\0';
		char *val = colon + 1;
		while (*val == ' ' || *val == '\t')
			val++;
		h->name[h->n] = xstrdup(line);
		h->value[h->n] = xstrdup(val);
		h->n++;
	}
	return 0;
}
