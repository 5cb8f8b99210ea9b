/* CUnit tests of the cgroup v2 device filter: the emitted instructions, their
 * meaning (run by a small interpreter against a model of v1's exception
 * list), the emulated record, and, as root, the kernel's verifier and a real
 * cgroup2 directory where a child process meets the filter. */
#include "runtime/cgroup/internal.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fs.h"

#define UNIFIED "/sys/fs/cgroup/unified"

static void skip(const char *why)
{
	CU_PASS(why);
	printf("\n    (skipped: %s) ", why);
}

/* ---- an interpreter for what the emitter uses ------------------------- */

/* Runs prog on one access; 0 or 1 as the kernel would read it, -1 for an
 * instruction outside the emitter's repertoire, a read of a register never
 * written, a backward or wild jump, a context read through anything but
 * the untouched R1, or falling off the end (the verifier's objections). */
static int run(const struct bpf_insn *p, size_t n, unsigned type, unsigned access, uint32_t major,
	       uint32_t minor)
{
	const uint32_t ctx[3] = {access << 16 | type, major, minor};
	uint64_t reg[11] = {0};
	unsigned written = 1u << 1 | 1u << 10;
	bool r1_ctx = true;
	for (size_t pc = 0; pc < n; pc++) {
		const struct bpf_insn *i = &p[pc];
		if (i->dst_reg > 10 || i->src_reg > 10)
			return -1;
		uint64_t *d = &reg[i->dst_reg];
		uint64_t s = reg[i->src_reg];
		bool reads_dst = i->code != (BPF_LDX | BPF_MEM | BPF_W) &&
				 BPF_OP(i->code) != BPF_MOV && i->code != (BPF_JMP | BPF_EXIT);
		bool reads_src = BPF_SRC(i->code) == BPF_X || BPF_CLASS(i->code) == BPF_LDX;
		if ((reads_dst && !(written >> i->dst_reg & 1)) ||
		    (reads_src && !(written >> i->src_reg & 1)))
			return -1;
		if (BPF_CLASS(i->code) != BPF_JMP) {
			written |= 1u << i->dst_reg;
			if (i->dst_reg == 1)
				r1_ctx = false;
		}
		switch (i->code) {
		case BPF_LDX | BPF_MEM | BPF_W:
			if (i->src_reg != 1 || i->dst_reg == 1 || !r1_ctx || i->off < 0 ||
			    i->off > 8 || i->off % 4)
				return -1;
			*d = ctx[i->off / 4];
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			*d = (uint32_t)*d & (uint32_t)i->imm;
			break;
		case BPF_ALU | BPF_XOR | BPF_K:
			*d = (uint32_t)*d ^ (uint32_t)i->imm;
			break;
		case BPF_ALU | BPF_OR | BPF_X:
			*d = (uint32_t)*d | (uint32_t)s;
			break;
		case BPF_ALU | BPF_RSH | BPF_K:
			*d = (uint32_t)*d >> i->imm;
			break;
		case BPF_ALU | BPF_MOV | BPF_X:
			*d = (uint32_t)s;
			break;
		case BPF_ALU64 | BPF_MOV | BPF_K:
			*d = (uint64_t)(int64_t)i->imm;
			break;
		case BPF_JMP | BPF_JNE | BPF_K:
			if (i->off < 0 || pc + 1 + (size_t)i->off >= n)
				return -1;
			if (*d != (uint64_t)(int64_t)i->imm)
				pc += (size_t)i->off;
			break;
		case BPF_JMP | BPF_EXIT:
			if (!(written & 1))
				return -1;
			return (int)reg[0];
		default:
			return -1;
		}
	}
	return -1;
}

/* ---- v1's exception list, as the kernel keeps it ---------------------- */

struct model {
	bool all;
	struct cg_device_rule ex[64];
	unsigned acc[64];
	size_t n;
};

static void model_build(struct model *m, const struct cg_device_rule *rules, size_t n)
{
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		const struct cg_device_rule *r = &rules[i];
		unsigned acc = (strchr(r->access, 'm') ? 1 : 0) | (strchr(r->access, 'r') ? 2 : 0) |
			       (strchr(r->access, 'w') ? 4 : 0);
		if (r->type == 'a') {
			m->all = true;
			continue;
		}
		size_t j = 0;
		while (j < m->n && !(m->ex[j].type == r->type && m->ex[j].major == r->major &&
				     m->ex[j].minor == r->minor))
			j++;
		if (j == m->n) {
			CU_ASSERT_FATAL(m->n < ARRAY_SIZE(m->ex));
			m->ex[m->n++] = *r;
		}
		m->acc[j] |= acc;
	}
}

static bool model_allows(const struct model *m, char type, uint32_t major, uint32_t minor,
			 unsigned acc)
{
	if (m->all)
		return true;
	for (size_t i = 0; i < m->n; i++) {
		const struct cg_device_rule *e = &m->ex[i];
		if (e->type == type && (e->major == -1 || e->major == major) &&
		    (e->minor == -1 || e->minor == minor) && !(acc & ~m->acc[i]))
			return true;
	}
	return false;
}

/* ---- helpers ---------------------------------------------------------- */

static size_t program(const struct cg_device_rule *rules, size_t n, struct bpf_insn **ret)
{
	_cleanup_free_ struct cg_device_rule *merged = NULL;
	size_t nm = cg_device_rules_merge(rules, n, &merged);
	return cg_bpf_devices_program(merged, nm, ret);
}

/* Every real device number worth asking about: the rules' own and their
 * neighbours, plus the extremes the kernel can send. */
static size_t numbers(const struct cg_device_rule *rules, size_t n, bool major, uint32_t *out,
		      size_t cap)
{
	size_t k = 0;
	const uint32_t fixed[] = {0, 1, 3, 5, 8, 136, 0xfff, 0xfffff};
	for (size_t i = 0; i < ARRAY_SIZE(fixed) && k < cap; i++)
		if (!major || fixed[i] <= 0xfff)
			out[k++] = fixed[i];
	for (size_t i = 0; i < n && k + 2 <= cap; i++) {
		int64_t v = major ? rules[i].major : rules[i].minor;
		if (v >= 0 && v <= (major ? 0xfff : 0xfffff)) {
			out[k++] = (uint32_t)v;
			out[k++] = (uint32_t)v + 1;
		}
	}
	return k;
}

/* The program allows exactly what v1 would, for every access, type and
 * number worth asking about; returns the number of disagreements. */
static int compare(const struct cg_device_rule *rules, size_t n)
{
	_cleanup_free_ struct bpf_insn *p = NULL;
	size_t np = program(rules, n, &p);
	struct model m;
	model_build(&m, rules, n);
	uint32_t majors[128], minors[128];
	size_t nmaj = numbers(rules, n, true, majors, ARRAY_SIZE(majors));
	size_t nmin = numbers(rules, n, false, minors, ARRAY_SIZE(minors));
	int bad = 0;
	for (int t = 0; t < 2; t++)
		for (size_t a = 0; a < nmaj; a++)
			for (size_t b = 0; b < nmin; b++)
				for (unsigned acc = 1; acc <= 7; acc++) {
					char type = t ? 'c' : 'b';
					unsigned bits =
					    t ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK;
					int got = run(p, np, bits, acc, majors[a], minors[b]);
					int want =
					    model_allows(&m, type, majors[a], minors[b], acc);
					if (got != want && bad++ < 5)
						fprintf(stderr,
							"\n%c %u:%u acc %u: program %d, v1 %d\n",
							type, majors[a], minors[b], acc, got, want);
				}
	return bad;
}

/* runc's defaults, as runtime/container.c passes them. */
static const struct cg_device_rule defaults[] = {
    {'c', -1, -1, "m"}, {'b', -1, -1, "m"}, {'c', 1, 3, "rwm"},	   {'c', 1, 5, "rwm"},
    {'c', 1, 7, "rwm"}, {'c', 1, 8, "rwm"}, {'c', 1, 9, "rwm"},	   {'c', 5, 0, "rwm"},
    {'c', 5, 1, "rwm"}, {'c', 5, 2, "rwm"}, {'c', 136, -1, "rwm"},
};

/* ---- rules ------------------------------------------------------------ */

static void test_merge_and_format(void)
{
	const struct cg_device_rule rules[] = {
	    {'c', 1, 3, "r"},  {'b', 1, 3, "w"}, {'c', 1, 3, "mw"},
	    {'c', 1, -1, "m"}, {'c', 1, 3, "r"}, {'a', -1, -1, "rwm"},
	};
	_cleanup_free_ struct cg_device_rule *m = NULL;
	size_t n = cg_device_rules_merge(rules, ARRAY_SIZE(rules), &m);
	CU_ASSERT_EQUAL_FATAL(n, 4);
	const char *want[] = {"c 1:3 rwm", "b 1:3 w", "c 1:* m", "a *:* rwm"};
	for (size_t i = 0; i < n; i++) {
		char line[64];
		cg_device_rule_format(&m[i], line, sizeof(line));
		CU_ASSERT_STRING_EQUAL(line, want[i]);
	}
	_cleanup_free_ struct cg_device_rule *none = NULL;
	CU_ASSERT_EQUAL(cg_device_rules_merge(NULL, 0, &none), 0);
	CU_ASSERT_PTR_NOT_NULL(none);
	CU_ASSERT_EQUAL(cg_device_access_bits("rwm"), 7);
	CU_ASSERT_EQUAL(cg_device_access_bits("m"), BPF_DEVCG_ACC_MKNOD);
}

/* ---- instructions ----------------------------------------------------- */

#define LDX(dst, off)                                     \
	{                                                 \
		BPF_LDX | BPF_MEM | BPF_W, dst, 1, off, 0 \
	}
#define AND32(dst, imm)                                   \
	{                                                 \
		BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, imm \
	}
#define OR32X(dst, src)                                  \
	{                                                \
		BPF_ALU | BPF_OR | BPF_X, dst, src, 0, 0 \
	}
#define RSH32(dst, imm)                                   \
	{                                                 \
		BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, imm \
	}
#define MOV32X(dst, src)                                  \
	{                                                 \
		BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0 \
	}
#define MOV64(dst, imm)                                     \
	{                                                   \
		BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm \
	}
#define JNE(dst, imm, off)                                  \
	{                                                   \
		BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm \
	}
#define EXIT                                   \
	{                                      \
		BPF_JMP | BPF_EXIT, 0, 0, 0, 0 \
	}
#define PROLOGUE LDX(2, 0), AND32(2, 0xffff), LDX(3, 0), RSH32(3, 16), LDX(4, 4), LDX(5, 8)

static void expect_insns(const struct cg_device_rule *rules, size_t n, const struct bpf_insn *want,
			 size_t nwant)
{
	_cleanup_free_ struct bpf_insn *got = NULL;
	size_t ngot = program(rules, n, &got);
	CU_ASSERT_EQUAL(ngot, nwant);
	for (size_t i = 0; i < ngot && i < nwant; i++) {
		bool same = got[i].code == want[i].code && got[i].dst_reg == want[i].dst_reg &&
			    got[i].src_reg == want[i].src_reg && got[i].off == want[i].off &&
			    got[i].imm == want[i].imm;
		if (!same)
			fprintf(stderr, "\ninsn %zu: got %02x %u %u %d %d want %02x %u %u %d %d\n",
				i, got[i].code, got[i].dst_reg, got[i].src_reg, got[i].off,
				got[i].imm, want[i].code, want[i].dst_reg, want[i].src_reg,
				want[i].off, want[i].imm);
		CU_ASSERT(same);
	}
}

/* A block's first test of a register into R1, the others through R6. */
#define T1(src, op, imm)                           \
	MOV32X(1, src),                            \
	{                                          \
		BPF_ALU | op | BPF_K, 1, 0, 0, imm \
	}
#define TN(src, op, imm) MOV32X(6, src), {BPF_ALU | op | BPF_K, 6, 0, 0, imm}, OR32X(1, 6)
#define ALLOW_UNLESS_R1 JNE(1, 0, 2), MOV64(0, 1), EXIT

static void test_instructions(void)
{
	/* No rule: deny everything. */
	const struct bpf_insn deny[] = {PROLOGUE, MOV64(0, 0), EXIT};
	expect_insns(NULL, 0, deny, ARRAY_SIZE(deny));

	/* One device, every access: type, major, minor, allow. */
	const struct cg_device_rule null[] = {{'c', 1, 3, "rwm"}};
	const struct bpf_insn one[] = {
	    PROLOGUE,
	    T1(2, BPF_XOR, BPF_DEVCG_DEV_CHAR),
	    TN(4, BPF_XOR, 1),
	    TN(5, BPF_XOR, 3),
	    ALLOW_UNLESS_R1,
	    MOV64(0, 0),
	    EXIT,
	};
	expect_insns(null, 1, one, ARRAY_SIZE(one));

	/* mknod of any block device, then read-write of any pty: the
	 * access test masks what the rule lacks. */
	const struct cg_device_rule two[] = {{'b', -1, -1, "m"}, {'c', 136, -1, "rw"}};
	const struct bpf_insn mk[] = {
	    PROLOGUE,
	    T1(2, BPF_XOR, BPF_DEVCG_DEV_BLOCK),
	    TN(3, BPF_AND, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE),
	    ALLOW_UNLESS_R1,
	    T1(2, BPF_XOR, BPF_DEVCG_DEV_CHAR),
	    TN(3, BPF_AND, BPF_DEVCG_ACC_MKNOD),
	    TN(4, BPF_XOR, 136),
	    ALLOW_UNLESS_R1,
	    MOV64(0, 0),
	    EXIT,
	};
	expect_insns(two, ARRAY_SIZE(two), mk, ARRAY_SIZE(mk));

	/* "a *:* rwm" allows everything and ends the program: what would
	 * follow is unreachable, which the verifier refuses. */
	const struct cg_device_rule all[] = {
	    {'c', 1, 3, "rwm"}, {'a', -1, -1, "rwm"}, {'b', 8, 0, "r"}};
	const struct bpf_insn allow[] = {
	    PROLOGUE,
	    T1(2, BPF_XOR, BPF_DEVCG_DEV_CHAR),
	    TN(4, BPF_XOR, 1),
	    TN(5, BPF_XOR, 3),
	    ALLOW_UNLESS_R1,
	    MOV64(0, 1),
	    EXIT,
	};
	expect_insns(all, ARRAY_SIZE(all), allow, ARRAY_SIZE(allow));

	/* Numbers no device can have match nothing: no block for them. */
	const struct cg_device_rule big[] = {
	    {'c', 4096, -1, "rwm"}, {'c', 1, 0x100000, "rwm"}, {'c', 0x80000000LL, 1, "r"}};
	expect_insns(big, ARRAY_SIZE(big), deny, ARRAY_SIZE(deny));
}

/* ---- meaning ---------------------------------------------------------- */

static void test_semantics(void)
{
	CU_ASSERT_EQUAL(compare(NULL, 0), 0);
	CU_ASSERT_EQUAL(compare(defaults, ARRAY_SIZE(defaults)), 0);
	/* The defaults plus config devices: read-only /dev/kmsg, a
	 * read-write disk, and /dev/null again read-only (the union holds). */
	struct cg_device_rule more[ARRAY_SIZE(defaults) + 3];
	memcpy(more, defaults, sizeof(defaults));
	more[ARRAY_SIZE(defaults)] = (struct cg_device_rule){'c', 1, 11, "r"};
	more[ARRAY_SIZE(defaults) + 1] = (struct cg_device_rule){'b', 8, 0, "rw"};
	more[ARRAY_SIZE(defaults) + 2] = (struct cg_device_rule){'c', 1, 3, "r"};
	CU_ASSERT_EQUAL(compare(more, ARRAY_SIZE(more)), 0);
	/* Split permissions of one device add up; of a device and a range
	 * they do not (one rule must cover the whole access). */
	const struct cg_device_rule split[] = {
	    {'c', 1, 3, "r"}, {'c', 1, 3, "w"}, {'c', 1, -1, "w"}, {'c', 1, 5, "r"}};
	CU_ASSERT_EQUAL(compare(split, ARRAY_SIZE(split)), 0);
	const struct cg_device_rule all[] = {{'b', 8, 0, "r"}, {'a', -1, -1, "rwm"}};
	CU_ASSERT_EQUAL(compare(all, ARRAY_SIZE(all)), 0);

	/* Random rule sets (a fixed seed, so a failure repeats). */
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	const int64_t nums[] = {-1, -1, 0, 1, 3, 5, 8, 136, 0xfff};
	const char *acc[] = {"r", "w", "m", "rw", "rm", "wm", "rwm"};
	for (int round = 0; round < 300; round++) {
		struct cg_device_rule rules[24];
		size_t n = 0;
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		size_t count = (seed >> 33) % ARRAY_SIZE(rules);
		for (size_t i = 0; i < count; i++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			uint64_t x = seed >> 11;
			struct cg_device_rule *r = &rules[n++];
			*r = (struct cg_device_rule){(x % 97 == 0) ? 'a'
						     : (x & 1)	   ? 'c'
								   : 'b',
						     nums[(x >> 1) % ARRAY_SIZE(nums)],
						     nums[(x >> 5) % ARRAY_SIZE(nums)], ""};
			snprintf(r->access, sizeof(r->access), "%s",
				 acc[(x >> 9) % ARRAY_SIZE(acc)]);
			if (r->type == 'a')
				*r = (struct cg_device_rule){'a', -1, -1, "rwm"};
		}
		int bad = compare(rules, n);
		if (bad)
			fprintf(stderr, "\nround %d: %d disagreements\n", round, bad);
		CU_ASSERT_EQUAL(bad, 0);
	}
}

/* ---- through the library, emulated ------------------------------------ */

static void test_emulated_v2(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *b = xstrdup("/tmp/husk-cgbpf-test-XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(b) != NULL);
	_cleanup_free_ char *ctl = xasprintf("%s/cgroup.controllers", b);
	CU_ASSERT_FATAL(fs_write_atomic(ctl, "cpu memory pids\n", 16, 0644, NULL) == 0);
	struct cg_manager *m = cg_manager_new(b, CG_DRIVER_CGROUPFS, &err);
	CU_ASSERT_FATAL(m != NULL);
	CU_ASSERT(cg_manager_emulated(m));
	struct cg_group *g = NULL;
	CU_ASSERT_FATAL(cg_group_create(m, "husk/pod/ctr", &g, &err) == 0);
	const struct cg_device_rule rules[] = {
	    {'c', -1, -1, "m"}, {'c', 1, 3, "r"}, {'c', 1, 3, "w"}, {'b', 8, 0, "r"}};
	CU_ASSERT_EQUAL(cg_group_allow_devices(g, rules, ARRAY_SIZE(rules), &err), 0);
	_cleanup_free_ char *dir = cg_group_dir(g, NULL);
	_cleanup_free_ char *file = xasprintf("%s/%s", dir, CG_BPF_EMULATED_FILE);
	_cleanup_free_ char *text = NULL;
	CU_ASSERT_FATAL(fs_read_file(file, 4096, &text, NULL, NULL) == 0);
	CU_ASSERT_STRING_EQUAL(text, "c *:* m\nc 1:3 rw\nb 8:0 r\n");
	/* Again: replaced, not appended. */
	CU_ASSERT_EQUAL(cg_group_allow_devices(g, rules, 1, &err), 0);
	free(text);
	text = NULL;
	CU_ASSERT_FATAL(fs_read_file(file, 4096, &text, NULL, NULL) == 0);
	CU_ASSERT_STRING_EQUAL(text, "c *:* m\n");
	/* "a" means every device on v1: nothing narrower is taken. */
	const struct cg_device_rule bad[][1] = {
	    {{'a', 1, 3, "rwm"}}, {{'a', -1, -1, "r"}}, {{'a', -1, 0, "rwm"}}};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CU_ASSERT_EQUAL(cg_group_allow_devices(g, bad[i], 1, &err), -EINVAL);
		husk_error_clear(&err);
	}
	const struct cg_device_rule all[] = {{'a', -1, -1, "mwr"}};
	CU_ASSERT_EQUAL(cg_group_allow_devices(g, all, 1, &err), 0);
	CU_ASSERT_EQUAL(cg_group_remove(g, &err), 0);
	cg_group_free(g);
	cg_manager_free(m);
	fs_rm_rf(b, NULL);
}

/* ---- the kernel (root) ------------------------------------------------ */

static int load(const struct cg_device_rule *rules, size_t n, struct husk_error *err)
{
	_cleanup_free_ struct bpf_insn *p = NULL;
	size_t np = program(rules, n, &p);
	int fd = -1;
	int r = cg_bpf_devices_load(p, np, &fd, err);
	if (r < 0)
		fprintf(stderr, "\nload of %zu rules: %s\n", n, husk_error_msg(err));
	if (fd >= 0)
		close(fd);
	return r;
}

static void test_verifier(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	if (geteuid() != 0) {
		skip("loading BPF programs needs root");
		return;
	}
	CU_ASSERT_EQUAL(load(NULL, 0, &err), 0);
	CU_ASSERT_EQUAL(load(defaults, ARRAY_SIZE(defaults), &err), 0);
	const struct cg_device_rule all[] = {{'a', -1, -1, "rwm"}};
	CU_ASSERT_EQUAL(load(all, 1, &err), 0);
	/* The largest set cg_group_allow_devices takes, all distinct. */
	_cleanup_free_ struct cg_device_rule *many =
	    xnew(struct cg_device_rule, CG_DEVICE_RULES_MAX);
	for (size_t i = 0; i < CG_DEVICE_RULES_MAX; i++)
		many[i] = (struct cg_device_rule){i % 2 ? 'c' : 'b', (int64_t)(i % 4096),
						  (int64_t)(i / 4096), "rw"};
	CU_ASSERT_EQUAL(load(many, CG_DEVICE_RULES_MAX, &err), 0);

	/* A program the verifier refuses: its reason is in the message. */
	const struct bpf_insn bad[] = {EXIT};
	int fd = -1;
	CU_ASSERT_EQUAL(cg_bpf_devices_load(bad, 1, &fd, &err), -EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "verifier: "));
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "R0"));
	CU_ASSERT_EQUAL(fd, -1);
}

/* What a process in the filtered cgroup tries, and the errno it must get
 * (0: success). mknod creates dir/name; open of a name without '/' opens
 * that node. */
struct
try {
	char op; /* 'o' open, 'n' mknod */
	const char *path;
	int flags;	/* open */
	char type;	/* mknod: 'c' or 'b' */
	unsigned major; /* mknod */
	unsigned minor;
	int want;
};

/* Fork a child, move it into g (its pid to cgroup.procs, as the launcher
 * does before exec), let it try each access; the number of tries that went
 * otherwise. */
static int try_in(const struct cg_group *g, const char *dir, const struct try *t, size_t n)
{
	int go[2];
	CU_ASSERT_FATAL(pipe2(go, O_CLOEXEC) == 0);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(100);
		int bad = 0;
		for (size_t i = 0; i < n; i++) {
			char path[512];
			if (strchr(t[i].path, '/'))
				snprintf(path, sizeof(path), "%s", t[i].path);
			else
				snprintf(path, sizeof(path), "%s/%s", dir, t[i].path);
			int r;
			if (t[i].op == 'o') {
				r = open(path, t[i].flags | O_CLOEXEC | O_NONBLOCK);
				if (r >= 0)
					close(r);
			} else {
				mode_t mode = (t[i].type == 'b' ? S_IFBLK : S_IFCHR) | 0600;
				r = mknod(path, mode, makedev(t[i].major, t[i].minor));
			}
			int got = r < 0 ? errno : 0;
			if (got != t[i].want) {
				fprintf(stderr, "\ntry %zu: %c %s: got '%s' want '%s'\n", i,
					t[i].op, path, strerror(got), strerror(t[i].want));
				bad++;
			}
		}
		_exit(bad);
	}
	close(go[0]);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	int r = cg_group_enter(g, pid, &err);
	if (r < 0)
		fprintf(stderr, "\nenter: %s\n", husk_error_msg(&err));
	CU_ASSERT(r == 0);
	CU_ASSERT(write(go[1], "x", 1) == 1);
	close(go[1]);
	int status = 0;
	CU_ASSERT(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1000;
}

static uint32_t attached_one(const char *dir)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ uint32_t *ids = NULL;
	size_t n = 0;
	int r = cg_bpf_devices_attached(dir, &ids, &n, &err);
	if (r < 0)
		fprintf(stderr, "\nquery: %s\n", husk_error_msg(&err));
	CU_ASSERT(r == 0);
	CU_ASSERT_EQUAL(n, 1);
	return n == 1 ? ids[0] : 0;
}

static void test_real_cgroup2(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	if (geteuid() != 0) {
		skip("the real cgroup2 test needs root");
		return;
	}
	struct cg_manager *m = NULL;
	struct cg_options o = {.base = UNIFIED};
	if (!fs_exists(UNIFIED "/cgroup.procs") || cg_manager_open(&o, &m, &err) < 0 ||
	    cg_manager_version(m) != CG_V2 || cg_manager_emulated(m)) {
		skip("no cgroup2 mounted at " UNIFIED);
		cg_manager_free(m);
		return;
	}
	_cleanup_free_ char *path = xasprintf("husk-test-%d", (int)getpid());
	struct cg_group *g = NULL;
	int r = cg_group_create(m, path, &g, &err);
	if (r < 0)
		fprintf(stderr, "\ncreate: %s\n", husk_error_msg(&err));
	CU_ASSERT_FATAL(r == 0);
	_cleanup_free_ char *dir = cg_group_dir(g, NULL);
	_cleanup_free_ char *want_dir = xasprintf("%s/%s", UNIFIED, path);
	CU_ASSERT_STRING_EQUAL(dir, want_dir);
	_cleanup_free_ char *nodes = xstrdup("/tmp/husk-cgbpf-nodes-XXXXXX");
	CU_ASSERT_FATAL(mkdtemp(nodes) != NULL);

	/* null: everything; random: read only; urandom: write only; full:
	 * mknod and (a second rule) read; kmsg: mknod only; zero: nothing. */
	const struct cg_device_rule first[] = {
	    {'c', 1, 3, "rwm"}, {'c', 1, 8, "r"}, {'c', 1, 9, "w"},
	    {'c', 1, 7, "m"},	{'c', 1, 7, "r"}, {'c', 1, 11, "m"},
	};
	r = cg_group_allow_devices(g, first, ARRAY_SIZE(first), &err);
	if (r < 0)
		fprintf(stderr, "\nallow: %s\n", husk_error_msg(&err));
	CU_ASSERT_FATAL(r == 0);
	uint32_t id1 = attached_one(dir);
	const struct try t1[] = {
	    {'o', "/dev/null", O_RDWR, 0, 0, 0, 0},
	    {'o', "/dev/zero", O_RDONLY, 0, 0, 0, EPERM},
	    {'n', "zero", 0, 'c', 1, 5, EPERM},
	    {'o', "/dev/random", O_RDONLY, 0, 0, 0, 0},
	    {'o', "/dev/random", O_WRONLY, 0, 0, 0, EPERM},
	    {'o', "/dev/random", O_RDWR, 0, 0, 0, EPERM},
	    {'o', "/dev/urandom", O_WRONLY, 0, 0, 0, 0},
	    {'o', "/dev/urandom", O_RDONLY, 0, 0, 0, EPERM},
	    {'n', "full", 0, 'c', 1, 7, 0},
	    {'o', "full", O_RDONLY, 0, 0, 0, 0},
	    {'o', "full", O_WRONLY, 0, 0, 0, EPERM},
	    {'n', "kmsg", 0, 'c', 1, 11, 0},
	    {'o', "kmsg", O_RDONLY, 0, 0, 0, EPERM},
	    {'n', "disk", 0, 'b', 8, 0, EPERM},
	    /* Not a device: no question for the filter. */
	    {'o', "/tmp", O_RDONLY | O_DIRECTORY, 0, 0, 0, 0},
	};
	CU_ASSERT_EQUAL(try_in(g, nodes, t1, ARRAY_SIZE(t1)), 0);

	/* Again with other rules: the old program is replaced, not added to. */
	const struct cg_device_rule second[] = {{'c', 1, 5, "rw"}, {'b', -1, -1, "m"}};
	CU_ASSERT_EQUAL(cg_group_allow_devices(g, second, ARRAY_SIZE(second), &err), 0);
	uint32_t id2 = attached_one(dir);
	CU_ASSERT(id2 != 0 && id2 != id1);
	fs_rm_rf(nodes, NULL);
	CU_ASSERT_FATAL(mkdir(nodes, 0700) == 0);
	const struct try t2[] = {
	    {'o', "/dev/zero", O_RDWR, 0, 0, 0, 0},  {'o', "/dev/null", O_RDONLY, 0, 0, 0, EPERM},
	    {'n', "zero", 0, 'c', 1, 5, EPERM},	     {'n', "disk", 0, 'b', 8, 0, 0},
	    {'o', "disk", O_RDONLY, 0, 0, 0, EPERM},
	};
	CU_ASSERT_EQUAL(try_in(g, nodes, t2, ARRAY_SIZE(t2)), 0);

	/* No rule at all: nothing. */
	CU_ASSERT_EQUAL(cg_group_allow_devices(g, NULL, 0, &err), 0);
	attached_one(dir);
	const struct try t3[] = {{'o', "/dev/null", O_RDONLY, 0, 0, 0, EPERM},
				 {'o', "/dev/zero", O_RDONLY, 0, 0, 0, EPERM}};
	CU_ASSERT_EQUAL(try_in(g, nodes, t3, ARRAY_SIZE(t3)), 0);

	/* The filter goes with the cgroup. */
	r = cg_group_remove(g, &err);
	if (r < 0)
		fprintf(stderr, "\nremove: %s\n", husk_error_msg(&err));
	CU_ASSERT(r == 0);
	CU_ASSERT(!fs_exists(dir));
	fs_rm_rf(nodes, NULL);
	cg_group_free(g);
	cg_manager_free(m);
}

int main(void)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
	    {"merge and format rules", test_merge_and_format},
	    {"emitted instructions", test_instructions},
	    {"program allows what v1 allows", test_semantics},
	    {"emulated v2 records the rules", test_emulated_v2},
	    {"kernel verifier (root)", test_verifier},
	    {"real cgroup2 directory (root)", test_real_cgroup2},
	};
	CU_pSuite suite = CU_add_suite("cgroup-bpf", NULL, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(tests); i++)
		CU_add_test(suite, tests[i].name, tests[i].fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures != 0;
}
