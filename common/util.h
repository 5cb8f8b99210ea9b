/* Small helpers every layer uses: cleanup attributes, ownership transfer,
 * allocation that aborts on out-of-memory, and string utilities. */
#ifndef HUSK_COMMON_UTIL_H
#define HUSK_COMMON_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))

static inline void freep(void *p)
{
	free(*(void **)p);
}
/* Close *fd if open and mark it closed (also a cleanup handler). */
static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}
static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
void strvfreep(char ***v);

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_strv_ _cleanup_(strvfreep)

/* Take ownership of *pp, leaving NULL (or -1 for fds) behind. */
#define steal_ptr(pp)                            \
	({                                       \
		__typeof__(*(pp)) _tmp_ = *(pp); \
		*(pp) = NULL;                    \
		_tmp_;                           \
	})
static inline int steal_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

/* Allocation: these never return NULL; out of memory aborts the process. */
void *xmalloc(size_t n);
void *xzalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);
char *xvasprintf(const char *fmt, va_list ap);
#define xnew(type, n) ((type *)xcalloc((n), sizeof(type)))

static inline bool streq(const char *a, const char *b)
{
	return a && b && __builtin_strcmp(a, b) == 0;
}
static inline bool isempty(const char *s)
{
	return !s || !*s;
}
bool startswith(const char *s, const char *prefix);
bool endswith(const char *s, const char *suffix);

/* Longest id or name a request may carry: pod and container ids are 64 hex
 * characters, a Kubernetes name at most 253. */
#define HUSK_ID_MAX 253
/* Whether the len bytes at s may be an id or a name: at most HUSK_ID_MAX
 * bytes and no NUL byte (a C string would end there: "a\0b" would be "a").
 * The one rule for every id and name field the server receives. */
bool husk_id_valid(const char *s, size_t len);
/* Longest id of an object that husk names a file, directory or cgroup
 * after (husk's own ids are 64 hex characters). */
#define HUSK_OBJ_ID_MAX 128
/* The one rule for such an id (pod sandbox, container, rootfs, record),
 * wherever a library takes one: 1..HUSK_OBJ_ID_MAX bytes of [A-Za-z0-9_.-],
 * not starting with '.' (so never ".", ".." or a hidden name). */
bool husk_obj_id_valid(const char *id);

/* NULL-terminated string vectors. */
size_t strv_length(char *const *v);
char **strv_append(char **v, const char *s); /* copies s */
void strv_free(char **v);

/* Monotonic and wall clocks in nanoseconds. */
long long now_mono_ns(void);
long long now_real_ns(void);

/* Set the size of the terminal fd (either side of a pty), rows and cols
 * clamped to 65535; a size of 0 rows or cols is left as it is (0). 0 or
 * -errno. */
int tty_set_size(int fd, unsigned rows, unsigned cols);

#endif
