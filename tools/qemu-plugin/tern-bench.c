/*
 * tern-bench: a QEMU TCG plugin that counts executed instructions for the
 * tern benchmarks (scripts/bench.sh, README "Benchmarks").
 *
 * What it counts, per measured region:
 *   - instructions executed, in total and split by exception level (EL0..EL3);
 *   - EL2 entries: transitions from a lower EL into EL2 (traps, hypercalls,
 *     interrupts taken to the hypervisor);
 *   - optionally, the hottest EL2 instruction addresses (profile=N).
 *
 * Regions are delimited by two marker instructions, HINT encodings that the
 * Arm architecture leaves unallocated, so they execute as NOPs on real
 * hardware and on QEMU (Arm ARM C6.2 "HINT": unallocated hints behave as NOP):
 *   hint #0x7c  (0xd5032f9f)  start of a region
 *   hint #0x7d  (0xd5032fbf)  end of a region
 * guests/bench/src/lib.rs emits the same two encodings.
 *
 * How EL2 is told apart from EL1: by the exception level, never by address
 * (the hypervisor runs identity mapped at its load address, ~0x4008_0000 on
 * QEMU virt, and guests run with the MMU off at IPA 0x4008_0000: the same
 * virtual addresses). An exception-level change always ends a translation
 * block (the EL is part of the TB's flags, and every instruction that changes
 * it - exception entry, ERET - ends its block), so reading PSTATE once at the
 * start of each executed block tells the EL of every instruction in it. The
 * plugin reads the gdbstub "cpsr" register (PSTATE, with M[3:2] = EL) in a
 * per-TB execution callback registered with QEMU_PLUGIN_CB_R_REGS.
 *
 * Instructions are counted by an inline per-instruction add on a per-vCPU
 * scoreboard, so a block left early (an exception in its middle) counts only
 * what ran. At the start of each block the instructions counted since the
 * previous block start are credited to the previous block's EL.
 *
 * With more than one vCPU (or count=block) whole blocks are counted instead,
 * in the block callback: QEMU 10.0 under -icount (one thread, no CF_PARALLEL)
 * folds the translating vCPU's index into the address of inline per-vCPU
 * scoreboard adds, although translated blocks are shared by all vCPUs; that
 * credits the wrong vCPU and, with -smp 2, crashed QEMU with a wild store.
 * Block counting is exact except for a block left early (a fault, or an MMIO
 * access in mid-block, which icount re-executes as a block of its own: the
 * instructions after it count twice); marker blocks are corrected to the
 * marker's position. On one CPU both ways give the same region counts for
 * every benchmark of scripts/bench.sh (count=block forces block counting).
 *
 * The profile is coarser: it credits every instruction of an EL2 block each
 * time the block starts, which is exact except for blocks left early.
 *
 * Run QEMU with -icount shift=0,sleep=off: besides making virtual time a
 * function of the instruction count, icount runs all vCPUs in one thread, which
 * the unsynchronised global region state here relies on.
 *
 * Arguments (-plugin tern-bench.so,ARG=VALUE,...):
 *   out=PATH         append result lines to PATH (default: QEMU's log, stderr)
 *   from=reset       a region is open from the first instruction
 *   until_lower_after=N
 *                    close the open region at the first block below EL2 after
 *                    N EL2 entries from a lower EL inside the region (boot:
 *                    N=1 ends right after dom0's first hypercall, its banner)
 *   profile=N        at exit, print the N hottest EL2 addresses seen inside
 *                    regions
 *   profile_el=E     profile EL E instead of EL2 (1: dom0 and guests, which
 *                    share addresses: symbolize against both images)
 *   count=block      count whole blocks even with one vCPU (see above)
 *
 * Output lines (one per region, then the profile, then a whole-run summary):
 *   tern-bench: region=1 insns=T el0=A el1=B el2=C el3=D el2_entries=E end=marker
 *   tern-bench: hot rank=1 pc=0x40081234 count=N
 *   tern-bench: exit insns=T el2=C el2_entries=E
 *
 * The plugin API is declared here (QEMU ships no header in Debian's package):
 * the few types and prototypes used, as in QEMU's include/qemu/qemu-plugin.h
 * for API version 4 (QEMU 9.2 to 10.0).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU plugin API, version 4 (the subset this plugin uses) ---- */

#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
#define TERN_QEMU_PLUGIN_VERSION 4

typedef uint64_t qemu_plugin_id_t;

typedef struct qemu_info_t {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;

struct qemu_plugin_tb;
struct qemu_plugin_insn;
struct qemu_plugin_scoreboard;
struct qemu_plugin_register;

typedef struct {
    struct qemu_plugin_scoreboard *score;
    size_t offset;
} qemu_plugin_u64;

enum qemu_plugin_cb_flags {
    QEMU_PLUGIN_CB_NO_REGS,
    QEMU_PLUGIN_CB_R_REGS,
    QEMU_PLUGIN_CB_RW_REGS,
};

enum qemu_plugin_op {
    QEMU_PLUGIN_INLINE_ADD_U64,
    QEMU_PLUGIN_INLINE_STORE_U64,
};

typedef struct {
    struct qemu_plugin_register *handle;
    const char *name;
    const char *feature;
} qemu_plugin_reg_descriptor;

/* GLib's public array structs; QEMU links GLib, so its symbols resolve. */
typedef struct {
    char *data;
    unsigned int len;
} GArray;
typedef struct {
    uint8_t *data;
    unsigned int len;
} GByteArray;
extern GByteArray *g_byte_array_new(void);
extern GByteArray *g_byte_array_set_size(GByteArray *array, unsigned int length);
extern char *g_array_free(GArray *array, int free_segment);

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_simple_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

extern void qemu_plugin_register_vcpu_init_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_simple_cb_t cb);
extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                                  qemu_plugin_vcpu_tb_trans_cb_t cb);
extern void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
                                                 qemu_plugin_vcpu_udata_cb_t cb,
                                                 enum qemu_plugin_cb_flags flags, void *userdata);
extern void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                                   qemu_plugin_vcpu_udata_cb_t cb,
                                                   enum qemu_plugin_cb_flags flags,
                                                   void *userdata);
extern void qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(struct qemu_plugin_insn *insn,
                                                                enum qemu_plugin_op op,
                                                                qemu_plugin_u64 entry,
                                                                uint64_t imm);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
                                           void *userdata);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
extern struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
                                                        size_t idx);
extern size_t qemu_plugin_insn_data(const struct qemu_plugin_insn *insn, void *dest, size_t len);
extern struct qemu_plugin_scoreboard *qemu_plugin_scoreboard_new(size_t element_size);
extern void *qemu_plugin_scoreboard_find(struct qemu_plugin_scoreboard *score,
                                         unsigned int vcpu_index);
extern GArray *qemu_plugin_get_registers(void);
extern int qemu_plugin_read_register(struct qemu_plugin_register *handle, GByteArray *buf);
extern void qemu_plugin_outs(const char *string);

QEMU_PLUGIN_EXPORT int qemu_plugin_version = TERN_QEMU_PLUGIN_VERSION;

/* ---- Markers and PSTATE ---- */

/* HINT #imm is 0xd503201f | imm << 5 (Arm ARM C6.2.126). */
#define HINT(imm) (0xd503201fu | ((uint32_t)(imm) << 5))
#define MARK_START HINT(0x7c)
#define MARK_STOP HINT(0x7d)

/* PSTATE as gdb's "cpsr": M[4] = 1 for AArch32, M[3:2] = EL for AArch64. */
#define PSTATE_NRW (1u << 4)
#define PSTATE_EL_SHIFT 2
#define PSTATE_EL_MASK 3u
/* AArch32 modes (only to classify; tern never runs AArch32). */
#define AARCH32_MODE_MASK 0x1fu
#define AARCH32_MODE_USR 0x10u
#define AARCH32_MODE_HYP 0x1au
#define AARCH32_MODE_MON 0x16u

#define NUM_EL 4
#define EL_UNKNOWN (-1)

/* ---- State ---- */

struct vcpu {
    struct qemu_plugin_register *cpsr;
    GByteArray *buf;
    uint64_t seen;   /* scoreboard count already credited to an EL */
    uint64_t by_el[NUM_EL];
    uint64_t el2_entries;
    int el; /* EL of the block running now; EL_UNKNOWN before the first */
};

/* Totals at one point in time, summed over vCPUs. */
struct snapshot {
    uint64_t by_el[NUM_EL];
    uint64_t el2_entries;
};

/* A marker instruction: which one, and how many instructions of its block
 * (itself included) follow it, for block counting. */
struct marker {
    uint32_t word;
    uint32_t rest;
};

/* One translated block, for the profile and block counting. */
struct tb_info {
    uint64_t vaddr;
    uint32_t n_insns;
    uint64_t el2_starts; /* times it started at the profiled EL inside a region */
    struct tb_info *next;
};

static struct qemu_plugin_scoreboard *counts; /* one uint64_t per vCPU */
static struct vcpu *vcpus;
static int max_vcpus;

static FILE *out;
static bool region_open;
static unsigned int region_no;
static struct snapshot region_start;
static uint64_t until_lower_after; /* 0: not used */
static unsigned int profile_top;   /* 0: no profile */
static int profile_el = 2;         /* the EL the profile counts */
static bool by_block;              /* count whole blocks, not instructions */

static pthread_mutex_t tbs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tb_info *tbs;

static void emit(const char *line)
{
    if (out) {
        fputs(line, out);
        fflush(out);
    } else {
        qemu_plugin_outs(line);
    }
}

static uint64_t *count_of(unsigned int vcpu_index)
{
    return qemu_plugin_scoreboard_find(counts, vcpu_index);
}

/* Credits the instructions counted since the last sync to the current EL. */
static void sync_vcpu(unsigned int i)
{
    if (by_block) {
        return; /* credited whole at each block start */
    }
    struct vcpu *v = &vcpus[i];
    uint64_t now = *count_of(i);
    if (v->el != EL_UNKNOWN) {
        v->by_el[v->el] += now - v->seen;
    }
    v->seen = now;
}

static struct snapshot take_snapshot(void)
{
    struct snapshot s = {0};
    for (int i = 0; i < max_vcpus; i++) {
        if (!vcpus[i].buf) {
            continue; /* never initialised: never ran */
        }
        sync_vcpu(i);
        for (int el = 0; el < NUM_EL; el++) {
            s.by_el[el] += vcpus[i].by_el[el];
        }
        s.el2_entries += vcpus[i].el2_entries;
    }
    return s;
}

static uint64_t total(const struct snapshot *s)
{
    uint64_t t = 0;
    for (int el = 0; el < NUM_EL; el++) {
        t += s->by_el[el];
    }
    return t;
}

static void open_region(void)
{
    region_start = take_snapshot();
    region_open = true;
    region_no++;
}

static void close_region(const char *why)
{
    struct snapshot now = take_snapshot();
    struct snapshot d;
    for (int el = 0; el < NUM_EL; el++) {
        d.by_el[el] = now.by_el[el] - region_start.by_el[el];
    }
    d.el2_entries = now.el2_entries - region_start.el2_entries;
    region_open = false;
    char line[256];
    snprintf(line, sizeof line,
             "tern-bench: region=%u insns=%" PRIu64 " el0=%" PRIu64 " el1=%" PRIu64
             " el2=%" PRIu64 " el3=%" PRIu64 " el2_entries=%" PRIu64 " end=%s\n",
             region_no, total(&d), d.by_el[0], d.by_el[1], d.by_el[2], d.by_el[3],
             d.el2_entries, why);
    emit(line);
}

static int read_el(struct vcpu *v)
{
    g_byte_array_set_size(v->buf, 0);
    int n = qemu_plugin_read_register(v->cpsr, v->buf);
    if (n < 4) {
        return EL_UNKNOWN;
    }
    uint32_t cpsr;
    memcpy(&cpsr, v->buf->data, sizeof cpsr); /* gdb registers are target (LE) order */
    if (!(cpsr & PSTATE_NRW)) {
        return (int)((cpsr >> PSTATE_EL_SHIFT) & PSTATE_EL_MASK);
    }
    switch (cpsr & AARCH32_MODE_MASK) {
    case AARCH32_MODE_USR:
        return 0;
    case AARCH32_MODE_HYP:
        return 2;
    case AARCH32_MODE_MON:
        return 3;
    default:
        return 1;
    }
}

/* ---- Callbacks ---- */

static void on_tb_start(unsigned int vcpu_index, void *udata)
{
    struct vcpu *v = &vcpus[vcpu_index];
    struct tb_info *ti = udata;
    sync_vcpu(vcpu_index);
    int el = read_el(v);
    if (el == 2 && v->el != EL_UNKNOWN && v->el < 2) {
        v->el2_entries++;
    }
    int prev = v->el;
    v->el = el;
    if (by_block && el != EL_UNKNOWN) {
        v->by_el[el] += ti->n_insns;
    }
    if (!region_open) {
        return;
    }
    if (el == profile_el && profile_top) {
        ti->el2_starts++;
    }
    /* Only a return from EL2 can be the first lower block after an entry. */
    if (until_lower_after && prev == 2 && el != EL_UNKNOWN && el < 2) {
        struct snapshot now = take_snapshot();
        if (now.el2_entries - region_start.el2_entries >= until_lower_after) {
            close_region("lower-after-entries");
        }
    }
}

static void on_marker(unsigned int vcpu_index, void *udata)
{
    const struct marker *m = udata;
    struct vcpu *v = &vcpus[vcpu_index];
    /* Block counting credited the marker's whole block when it started: take
     * back the marker and what follows it while the region is cut, so both
     * ways of counting put the boundary just before the marker. */
    uint64_t ahead = by_block && v->el != EL_UNKNOWN ? m->rest : 0;
    if (ahead) {
        v->by_el[v->el] -= ahead;
    }
    if (m->word == MARK_START) {
        if (region_open) {
            close_region("restarted");
        }
        open_region();
    } else if (region_open) {
        close_region("marker");
    }
    if (ahead) {
        v->by_el[v->el] += ahead;
    }
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    struct tb_info *ti = calloc(1, sizeof *ti);
    if (!ti) {
        abort();
    }
    ti->vaddr = qemu_plugin_tb_vaddr(tb);
    ti->n_insns = (uint32_t)n;
    pthread_mutex_lock(&tbs_lock);
    ti->next = tbs;
    tbs = ti;
    pthread_mutex_unlock(&tbs_lock);

    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_start, QEMU_PLUGIN_CB_R_REGS, ti);
    qemu_plugin_u64 entry = {.score = counts, .offset = 0};
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t word = 0;
        if (qemu_plugin_insn_data(insn, &word, sizeof word) == sizeof word &&
            (word == MARK_START || word == MARK_STOP)) {
            struct marker *m = malloc(sizeof *m); /* lives as long as the block */
            if (!m) {
                abort();
            }
            m->word = word;
            m->rest = (uint32_t)(n - i);
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, m);
        }
        if (!by_block) {
            qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(
                insn, QEMU_PLUGIN_INLINE_ADD_U64, entry, 1);
        }
    }
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    (void)id;
    if ((int)vcpu_index >= max_vcpus) {
        fprintf(stderr, "tern-bench: vCPU %u beyond max_vcpus %d\n", vcpu_index, max_vcpus);
        abort();
    }
    struct vcpu *v = &vcpus[vcpu_index];
    GArray *regs = qemu_plugin_get_registers();
    const qemu_plugin_reg_descriptor *d = (const void *)regs->data;
    for (unsigned int i = 0; i < regs->len; i++) {
        if (strcmp(d[i].name, "cpsr") == 0) {
            v->cpsr = d[i].handle;
        }
    }
    g_array_free(regs, 1);
    if (!v->cpsr) {
        fprintf(stderr, "tern-bench: vCPU %u has no \"cpsr\" register (not aarch64?)\n",
                vcpu_index);
        abort();
    }
    v->buf = g_byte_array_new();
    v->el = EL_UNKNOWN;
}

struct hot {
    uint64_t pc;
    uint64_t count;
};

static int by_pc(const void *a, const void *b)
{
    const struct hot *x = a, *y = b;
    return (x->pc > y->pc) - (x->pc < y->pc);
}

static int by_count_desc(const void *a, const void *b)
{
    const struct hot *x = a, *y = b;
    if (x->count != y->count) {
        return (x->count < y->count) - (x->count > y->count);
    }
    return by_pc(a, b);
}

/* AArch64 instructions are 4 bytes: a block's n-th instruction is at +4n. */
#define INSN_BYTES 4

static void print_profile(void)
{
    size_t n = 0;
    for (struct tb_info *t = tbs; t; t = t->next) {
        if (t->el2_starts) {
            n += t->n_insns;
        }
    }
    struct hot *h = calloc(n ? n : 1, sizeof *h);
    if (!h) {
        abort();
    }
    size_t k = 0;
    for (struct tb_info *t = tbs; t; t = t->next) {
        for (uint32_t i = 0; t->el2_starts && i < t->n_insns; i++) {
            h[k].pc = t->vaddr + (uint64_t)i * INSN_BYTES;
            h[k].count = t->el2_starts;
            k++;
        }
    }
    /* Merge blocks that cover the same addresses (retranslations, overlaps). */
    qsort(h, n, sizeof *h, by_pc);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && h[m - 1].pc == h[i].pc) {
            h[m - 1].count += h[i].count;
        } else {
            h[m++] = h[i];
        }
    }
    qsort(h, m, sizeof *h, by_count_desc);
    char line[128];
    for (size_t i = 0; i < m && i < profile_top; i++) {
        snprintf(line, sizeof line, "tern-bench: hot rank=%zu pc=0x%" PRIx64 " count=%" PRIu64 "\n",
                 i + 1, h[i].pc, h[i].count);
        emit(line);
    }
    free(h);
}

static void on_qemu_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    if (region_open) {
        close_region("exit");
    }
    if (profile_top) {
        print_profile();
    }
    struct snapshot s = take_snapshot();
    char line[160];
    snprintf(line, sizeof line,
             "tern-bench: exit insns=%" PRIu64 " el2=%" PRIu64 " el2_entries=%" PRIu64 "\n",
             total(&s), s.by_el[2], s.el2_entries);
    emit(line);
    if (out) {
        fclose(out);
        out = NULL;
    }
}

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;
    *v = strtoull(s, &end, 0);
    return *s && !*end;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    if (!info->system_emulation || strcmp(info->target_name, "aarch64") != 0) {
        fprintf(stderr, "tern-bench: needs qemu-system-aarch64\n");
        return -1;
    }
    bool from_reset = false;
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        size_t klen = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
        const char *val = eq ? eq + 1 : "";
        uint64_t n;
        if (klen == 3 && !strncmp(argv[i], "out", klen)) {
            out = fopen(val, "a");
            if (!out) {
                perror(val);
                return -1;
            }
        } else if (klen == 4 && !strncmp(argv[i], "from", klen) && !strcmp(val, "reset")) {
            from_reset = true;
        } else if (klen == 17 && !strncmp(argv[i], "until_lower_after", klen) &&
                   parse_u64(val, &n) && n > 0) {
            until_lower_after = n;
        } else if (klen == 7 && !strncmp(argv[i], "profile", klen) && parse_u64(val, &n)) {
            profile_top = (unsigned int)n;
        } else if (klen == 10 && !strncmp(argv[i], "profile_el", klen) && parse_u64(val, &n) &&
                   n <= 3) {
            profile_el = (int)n;
        } else if (klen == 5 && !strncmp(argv[i], "count", klen) && !strcmp(val, "block")) {
            by_block = true;
        } else {
            fprintf(stderr, "tern-bench: bad argument \"%s\"\n", argv[i]);
            return -1;
        }
    }
    max_vcpus = info->system.max_vcpus;
    if (info->system.smp_vcpus > 1 || max_vcpus > 1) {
        by_block = true;
    }
    vcpus = calloc((size_t)max_vcpus, sizeof *vcpus);
    counts = qemu_plugin_scoreboard_new(sizeof(uint64_t));
    if (!vcpus || !counts) {
        return -1;
    }
    if (from_reset) {
        /* Nothing has run yet: every counter is zero, so is the snapshot. */
        region_open = true;
        region_no = 1;
    }
    qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
    return 0;
}
