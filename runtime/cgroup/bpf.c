/* cgroup v2 device control: the device rules compiled into an eBPF program
 * of type BPF_PROG_TYPE_CGROUP_DEVICE (raw instructions, no libbpf), loaded
 * with bpf(2) and attached to the group's directory in place of the old one. */
#include "runtime/cgroup/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Room for the verifier's story of a rejected program; only the end of it
 * goes into the error message. */
#define VERIFIER_LOG_SIZE (256u << 10)
#define VERIFIER_LOG_TAIL 768

/* The kernel's device numbers: 12-bit majors, 20-bit minors. */
#define DEV_MAJOR_MAX 0xfff
#define DEV_MINOR_MAX 0xfffff

/* ---- rules ------------------------------------------------------------ */

unsigned cg_device_access_bits(const char *access)
{
	unsigned bits = 0;
	for (const char *p = access; *p; p++) {
		if (*p == 'm')
			bits |= BPF_DEVCG_ACC_MKNOD;
		else if (*p == 'r')
			bits |= BPF_DEVCG_ACC_READ;
		else if (*p == 'w')
			bits |= BPF_DEVCG_ACC_WRITE;
	}
	return bits;
}

static void access_string(unsigned bits, char out[4])
{
	size_t n = 0;
	if (bits & BPF_DEVCG_ACC_READ)
		out[n++] = 'r';
	if (bits & BPF_DEVCG_ACC_WRITE)
		out[n++] = 'w';
	if (bits & BPF_DEVCG_ACC_MKNOD)
		out[n++] = 'm';
	out[n] = '\0';
}

size_t cg_device_rules_merge(const struct cg_device_rule *rules, size_t n,
			     struct cg_device_rule **ret)
{
	struct cg_device_rule *out = xnew(struct cg_device_rule, n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct cg_device_rule *r = &rules[i];
		unsigned bits = cg_device_access_bits(r->access);
		size_t j = 0;
		while (j < k && !(out[j].type == r->type && out[j].major == r->major &&
				  out[j].minor == r->minor))
			j++;
		if (j == k)
			out[k++] = (struct cg_device_rule){r->type, r->major, r->minor, ""};
		access_string(cg_device_access_bits(out[j].access) | bits, out[j].access);
	}
	*ret = out;
	return k;
}

void cg_device_rule_format(const struct cg_device_rule *r, char *buf, size_t len)
{
	char maj[24] = "*", min[24] = "*";
	if (r->major >= 0)
		snprintf(maj, sizeof(maj), "%" PRId64, r->major);
	if (r->minor >= 0)
		snprintf(min, sizeof(min), "%" PRId64, r->minor);
	snprintf(buf, len, "%c %s:%s %s", r->type, maj, min, r->access);
}

/* ---- the program ------------------------------------------------------ */

/*
 * Registers: R1 holds the context (struct bpf_cgroup_dev_ctx) on entry.
 * The prologue unpacks it: R2 = device type (BPF_DEVCG_DEV_*), R3 = the
 * access asked for (BPF_DEVCG_ACC_*, one or more bits), R4 = major,
 * R5 = minor. Each rule is a block that sums up its tests in R1 (0 when
 * the device and access match: type, major and minor XOR the rule's, the
 * access AND the bits the rule lacks, ORed together through R6), jumps past
 * the block when R1 is not 0, and otherwise returns 1 (allow); after the
 * last block the program returns 0 (deny). So a rule allows an access only
 * when its own permissions cover every bit asked for, as v1's exception
 * match does.
 *
 * The shape is for the verifier, which must walk thousands of rules:
 *   - One conditional jump per block. The verifier follows a jump's
 *     fall-through first and stacks the other side; with a jump per test
 *     the pending sides of every block before pile up (it gives up past
 *     8192), while here the fall-through ends at once and the stacked side
 *     is the next block.
 *   - Tests on copies that an XOR, AND or OR detaches from R2..R5. A
 *     comparison of R2..R5 themselves would teach the verifier their value
 *     on one side, each block would then start in a state not seen before
 *     and nothing could be pruned. As it is, every block starts with R2..R5
 *     as the prologue left them and R1, R6 dead, and is walked once.
 */
enum { R0, R1, R2, R3, R4, R5, R6 };

#define PROLOGUE_INSNS 6
#define RULE_INSNS_MAX 14
#define EPILOGUE_INSNS 2

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	return (struct bpf_insn){
	    .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
}

struct emitter {
	struct bpf_insn *v;
	size_t n;
};

static void emit(struct emitter *e, struct bpf_insn i)
{
	e->v[e->n++] = i;
}

static void emit_ctx_load(struct emitter *e, uint8_t dst, size_t field)
{
	emit(e, insn(BPF_LDX | BPF_MEM | BPF_W, dst, R1, (int16_t)field, 0));
}

/* One test: (src <op> imm) into R1 for the block's first test, else into
 * R6 and ORed into R1. op is XOR for "differs from imm", AND for "has a
 * bit of imm". */
static void emit_test(struct emitter *e, bool first, uint8_t src, uint8_t op, int32_t imm)
{
	uint8_t dst = first ? R1 : R6;
	emit(e, insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0));
	emit(e, insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm));
	if (!first)
		emit(e, insn(BPF_ALU | BPF_OR | BPF_X, R1, R6, 0, 0));
}

static void emit_return(struct emitter *e, int32_t value)
{
	emit(e, insn(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, value));
	emit(e, insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
}

/* One rule's block; false when the rule matches everything (nothing after
 * it can run, and the verifier refuses unreachable instructions). */
static bool emit_rule(struct emitter *e, const struct cg_device_rule *r)
{
	size_t tests = 0;
	if (r->type != 'a')
		emit_test(e, tests++ == 0, R2, BPF_XOR,
			  r->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
	unsigned lacks = ~cg_device_access_bits(r->access) &
			 (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE);
	if (lacks)
		emit_test(e, tests++ == 0, R3, BPF_AND, (int32_t)lacks);
	if (r->major >= 0)
		emit_test(e, tests++ == 0, R4, BPF_XOR, (int32_t)r->major);
	if (r->minor >= 0)
		emit_test(e, tests++ == 0, R5, BPF_XOR, (int32_t)r->minor);
	if (tests == 0) {
		emit_return(e, 1);
		return false;
	}
	/* Past this block's "return 1". */
	emit(e, insn(BPF_JMP | BPF_JNE | BPF_K, R1, 0, 2, 0));
	emit_return(e, 1);
	return true;
}

size_t cg_bpf_devices_program(const struct cg_device_rule *rules, size_t n, struct bpf_insn **ret)
{
	size_t cap = PROLOGUE_INSNS + n * RULE_INSNS_MAX + EPILOGUE_INSNS;
	struct emitter e = {xnew(struct bpf_insn, cap), 0};
	emit_ctx_load(&e, R2, offsetof(struct bpf_cgroup_dev_ctx, access_type));
	emit(&e, insn(BPF_ALU | BPF_AND | BPF_K, R2, 0, 0, 0xffff));
	emit_ctx_load(&e, R3, offsetof(struct bpf_cgroup_dev_ctx, access_type));
	emit(&e, insn(BPF_ALU | BPF_RSH | BPF_K, R3, 0, 0, 16));
	emit_ctx_load(&e, R4, offsetof(struct bpf_cgroup_dev_ctx, major));
	emit_ctx_load(&e, R5, offsetof(struct bpf_cgroup_dev_ctx, minor));
	bool more = true;
	for (size_t i = 0; i < n && more; i++) {
		/* No device has such a number: the rule can never match. */
		if (rules[i].major > DEV_MAJOR_MAX || rules[i].minor > DEV_MINOR_MAX)
			continue;
		more = emit_rule(&e, &rules[i]);
	}
	if (more)
		emit_return(&e, 0);
	*ret = e.v;
	return e.n;
}

/* ---- bpf(2) ----------------------------------------------------------- */

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	long r;
	do
		r = syscall(SYS_bpf, cmd, attr, sizeof(*attr));
	while (r < 0 && errno == EINTR);
	return (int)r;
}

static int prog_load(const struct bpf_insn *insns, size_t n, char *log, size_t log_size)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = (uint32_t)n;
	/* The program calls no helper, so no GPL-only one: husk's own
	 * license will do. */
	attr.license = (uint64_t)(uintptr_t) "Apache-2.0";
	snprintf(attr.prog_name, sizeof(attr.prog_name), "husk_devices");
	if (log) {
		attr.log_level = 1;
		attr.log_buf = (uint64_t)(uintptr_t)log;
		attr.log_size = (uint32_t)log_size;
	}
	return sys_bpf(BPF_PROG_LOAD, &attr);
}

/* Kernels before 5.11 charge BPF programs to RLIMIT_MEMLOCK, whose soft
 * limit (often 64 KiB) runs out after a few containers: EPERM. Raise the
 * soft limit to the hard one; true when that changed anything. */
static bool raise_memlock(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_cur == rl.rlim_max)
		return false;
	rl.rlim_cur = rl.rlim_max;
	return setrlimit(RLIMIT_MEMLOCK, &rl) == 0;
}

/* The last lines of the verifier's log, on one line. */
static char *log_tail(char *log)
{
	size_t len = strnlen(log, VERIFIER_LOG_SIZE - 1);
	while (len && (log[len - 1] == '\n' || log[len - 1] == ' '))
		len--;
	log[len] = '\0';
	char *start = log;
	if (len > VERIFIER_LOG_TAIL) {
		start = log + len - VERIFIER_LOG_TAIL;
		char *nl = strchr(start, '\n');
		if (nl)
			start = nl + 1;
	}
	for (char *p = start; *p; p++)
		if (*p == '\n')
			*p = '|';
	return xstrdup(start);
}

int cg_bpf_devices_load(const struct bpf_insn *insns, size_t n, int *ret_fd, struct husk_error *err)
{
	int fd = prog_load(insns, n, NULL, 0);
	if (fd < 0 && errno == EPERM && raise_memlock())
		fd = prog_load(insns, n, NULL, 0);
	if (fd >= 0) {
		*ret_fd = fd;
		return 0;
	}
	int e = errno;
	if (e == ENOSYS)
		return husk_error_set(err, EOPNOTSUPP,
				      "load device filter: this kernel has no bpf(2)");
	/* Again with the verifier's log, which is only worth its cost now. */
	_cleanup_free_ char *log = xzalloc(VERIFIER_LOG_SIZE);
	fd = prog_load(insns, n, log, VERIFIER_LOG_SIZE);
	if (fd >= 0) {
		*ret_fd = fd;
		return 0;
	}
	_cleanup_free_ char *tail = log_tail(log);
	return husk_error_set(err, EIO, "load device filter (%zu instructions): %s%s%s", n,
			      strerror(e), *tail ? ": verifier: " : "", tail);
}

/* Ids of the device programs attached to the cgroup itself. */
static int query(int cg_fd, const char *dir, uint32_t *ids, size_t cap, size_t *ret_n,
		 struct husk_error *err)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.query.target_fd = (uint32_t)cg_fd;
	attr.query.attach_type = BPF_CGROUP_DEVICE;
	attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
	attr.query.prog_cnt = (uint32_t)cap;
	if (sys_bpf(BPF_PROG_QUERY, &attr) < 0) {
		if (errno == ENOSPC)
			return husk_error_set(
			    err, EIO, "query device filters of '%s': more than %zu attached", dir,
			    cap);
		return husk_error_errno(err, errno, "query device filters of '%s'", dir);
	}
	*ret_n = attr.query.prog_cnt;
	return 0;
}

static int open_dir(const char *dir, struct husk_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return husk_error_errno(err, errno, "open cgroup '%s'", dir);
	return fd;
}

int cg_bpf_devices_attached(const char *dir, uint32_t **ret_ids, size_t *ret_n,
			    struct husk_error *err)
{
	_cleanup_close_ int cg_fd = open_dir(dir, err);
	if (cg_fd < 0)
		return cg_fd;
	_cleanup_free_ uint32_t *ids = xnew(uint32_t, CG_BPF_ATTACHED_MAX);
	size_t n = 0;
	int r = query(cg_fd, dir, ids, CG_BPF_ATTACHED_MAX, &n, err);
	if (r < 0)
		return r;
	*ret_ids = steal_ptr(&ids);
	*ret_n = n;
	return 0;
}

/* Detach the program with id from the cgroup; gone already is fine. */
static int detach_id(int cg_fd, const char *dir, uint32_t id, struct husk_error *err)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_id = id;
	_cleanup_close_ int prog_fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
	if (prog_fd < 0) {
		if (errno == ENOENT)
			return 0;
		return husk_error_errno(err, errno, "detach device filter %" PRIu32 " from '%s'",
					id, dir);
	}
	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (uint32_t)cg_fd;
	attr.attach_bpf_fd = (uint32_t)prog_fd;
	attr.attach_type = BPF_CGROUP_DEVICE;
	if (sys_bpf(BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT)
		return husk_error_errno(err, errno, "detach device filter %" PRIu32 " from '%s'",
					id, dir);
	return 0;
}

int cg_bpf_devices_attach(const char *dir, int prog_fd, struct husk_error *err)
{
	_cleanup_close_ int cg_fd = open_dir(dir, err);
	if (cg_fd < 0)
		return cg_fd;
	uint32_t old[CG_BPF_ATTACHED_MAX];
	size_t n_old = 0;
	int r = query(cg_fd, dir, old, ARRAY_SIZE(old), &n_old, err);
	if (r < 0)
		return r;
	/* The new filter goes on before the old ones come off: in between
	 * both apply (an access must pass each), so there is never a moment
	 * without one. */
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (uint32_t)cg_fd;
	attr.attach_bpf_fd = (uint32_t)prog_fd;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = BPF_F_ALLOW_MULTI;
	if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0)
		return husk_error_errno(err, errno, "attach device filter to '%s'", dir);
	for (size_t i = 0; i < n_old; i++)
		if ((r = detach_id(cg_fd, dir, old[i], err)) < 0)
			return r;
	return 0;
}

int cg_bpf_devices_apply(const struct cg_manager *m, const char *dir,
			 const struct cg_device_rule *rules, size_t n, struct husk_error *err)
{
	_cleanup_free_ struct cg_device_rule *merged = NULL;
	size_t nm = cg_device_rules_merge(rules, n, &merged);
	if (m->emulated) {
		/* No kernel behind the directory: record what the program
		 * would allow, one rule a line. */
		_cleanup_free_ char *text = xnew(char, nm * 64 + 1);
		size_t len = 0;
		for (size_t i = 0; i < nm; i++) {
			char line[64];
			cg_device_rule_format(&merged[i], line, sizeof(line));
			len += (size_t)sprintf(text + len, "%s\n", line);
		}
		return cg_write(m, dir, CG_BPF_EMULATED_FILE, text, err);
	}
	_cleanup_free_ struct bpf_insn *insns = NULL;
	size_t ni = cg_bpf_devices_program(merged, nm, &insns);
	_cleanup_close_ int prog_fd = -1;
	int r = cg_bpf_devices_load(insns, ni, &prog_fd, err);
	if (r < 0)
		return r;
	/* The cgroup holds its own reference: the program lives as long as
	 * it stays attached, across restarts of huskd. */
	return cg_bpf_devices_attach(dir, prog_fd, err);
}
