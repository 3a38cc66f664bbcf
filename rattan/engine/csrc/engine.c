/* The Rattan packet engine core: nodes, shards, packet pools, event scheduling, time, threads.
 *
 * Cells live in stdlib_cells/<type>/<type>.c behind the rt_cell_ops interface; this file only
 * moves packets between them. Every packet carries the logical time at which it reached its
 * current cell, and a cell computes departures from that time, never from "now", so timer
 * lateness cannot accumulate along a chain.
 *
 * Shards: once time starts, the graph is split into its connected components. Each shard has its
 * own packet pool, event heap ordered by (time, sequence) and sequence counter, so a shard's run
 * is deterministic whatever else runs, a shard's working set stays small (per-packet cost does not
 * grow with the number of channels), and groups of shards run on threads of their own.
 *
 * Threads: rt_run_until runs in the caller's thread (cffi releases the GIL); rt_engine_start runs
 * the same loop in a thread of its own. With rt_engine_set_threads, the shards are shared among
 * groups, one per thread: in virtual time the groups run to the same step and meet at a barrier
 * (group 0 in the calling thread, the others in a pool); in a real run each group has its own
 * loop, ports and time. Readers of counters use a per-shard sequence lock that the running loop
 * opens and closes around each batch of events, and runtime changes posted meanwhile are handed
 * to the group owning their node through a mutex-protected inbox.
 */
#define _GNU_SOURCE
#define RT_CELL_API
#include "rattan_engine.h"

#include "clock.h"
#include "gso.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <linux/futex.h>
#include <stdio.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* config.c: the registry of cell types, the configuration a cell's init reads, the last error. */
const rt_cell_ops *rt_find_cell_type(const char *type);
struct rt_cfg_state *rt_cfg_state_new(const char *type);
rt_config rt_cfg_root(const rt_value *v, struct rt_cfg_state *st);
void rt_set_error(const char *fmt, ...);
void rt_clear_error(void);

/* ---------------------------------------------------------------- random */
/* A node's generator: the run's seed mixed with the node's stream number. */
static void rng_seed(rt_rng *r, uint64_t seed, uint64_t stream) {
    rt_rng_seed(r, seed ^ (stream * 0xd1342543de82ef95ULL));
}

/* ---------------------------------------------------------------- packet pool */
/* Chunks grow from POOL_FIRST packets, doubling up to POOL_CHUNK: a shard that holds a few packets at
 * a time (most channels of a large engine) costs a few KiB, not a whole chunk of pages to fault in. */
#define POOL_FIRST 64
#define POOL_CHUNK 1024

/* Two size classes of frame buffers: every packet of a real run owns a 2 KiB one; a GSO
 * super-frame borrows a 64 KiB one (big_t) for as long as it lives, then the packet gets its own
 * back. Big buffers are made on demand and kept: as many as super-frames were ever alive at once. */
typedef struct big {
    uint8_t *own;            /* the small buffer of the packet that borrows it */
    struct big *next_free, *next_all;
    _Alignas(64) uint8_t data[IO_SUPER_MAX];
} big_t;

typedef struct {
    rt_pkt *free;
    rt_pkt **chunks;
    uint8_t **bufs;          /* real runs: each chunk's frame buffers, one per packet */
    size_t n_chunks, cap_chunks;
    int with_bufs;
    big_t *big_free, *big_all;
} pool_t;

static rt_pkt *pool_get(pool_t *p) {
    if (!p->free) {
        if (p->n_chunks == p->cap_chunks) {
            size_t cap = p->cap_chunks ? p->cap_chunks * 2 : 16;
            rt_pkt **c = realloc(p->chunks, cap * sizeof *c);
            if (!c) return NULL;
            p->chunks = c;
            uint8_t **b = realloc(p->bufs, cap * sizeof *b);
            if (!b) return NULL;
            p->bufs = b;
            p->cap_chunks = cap;
        }
        size_t size = p->n_chunks < 5 ? (size_t)POOL_FIRST << p->n_chunks : POOL_CHUNK;
        rt_pkt *chunk = calloc(size, sizeof *chunk);
        uint8_t *bufs = p->with_bufs ? malloc(size * IO_FRAME_MAX) : NULL;
        if (!chunk || (p->with_bufs && !bufs)) { free(chunk); free(bufs); return NULL; }
        p->bufs[p->n_chunks] = bufs;
        p->chunks[p->n_chunks++] = chunk;
        for (size_t i = size; i-- > 0;) {
            chunk[i].buf = bufs ? bufs + i * IO_FRAME_MAX : NULL;
            chunk[i].cap = bufs ? IO_FRAME_MAX : 0;
            chunk[i].next = p->free;
            p->free = &chunk[i];
        }
    }
    rt_pkt *k = p->free;
    p->free = k->next;
    k->next = NULL;
    return k;
}

/* Give packet k (with its own small buffer) room for `len` bytes: a big buffer if it needs one.
 * 0, or -1 out of memory. */
static int pool_room(pool_t *p, rt_pkt *k, uint32_t len) {
    if (len <= k->cap) return 0;
    if (len > IO_SUPER_MAX || !k->buf) return -1;
    big_t *b = p->big_free;
    if (b) {
        p->big_free = b->next_free;
    } else {
        b = aligned_alloc(64, sizeof *b);
        if (!b) return -1;
        b->next_all = p->big_all;
        p->big_all = b;
    }
    b->own = k->buf;
    k->buf = b->data;
    k->cap = IO_SUPER_MAX;
    return 0;
}

static void big_put(pool_t *p, rt_pkt *k) {
    big_t *b = (big_t *)(k->buf - offsetof(big_t, data));
    k->buf = b->own;
    k->cap = IO_FRAME_MAX;
    b->next_free = p->big_free;
    p->big_free = b;
}

static inline void pool_put(pool_t *p, rt_pkt *k) {
    if (__builtin_expect(k->cap > IO_FRAME_MAX, 0)) big_put(p, k);
    k->next = p->free;
    p->free = k;
}

static void pool_free(pool_t *p) {
    for (big_t *b = p->big_all, *next; b; b = next) { next = b->next_all; free(b); }
    for (size_t i = 0; i < p->n_chunks; i++) { free(p->chunks[i]); free(p->bufs[i]); }
    free(p->chunks);
    free(p->bufs);
}

/* ---------------------------------------------------------------- histograms */
/* Log buckets: a value below 2^S is its own bucket; above, the bits after the leading one select one of
 * 2^S buckets within its power of two. One bucket scheme for every distribution the engine keeps. */
#define HIST_S RT_HIST_SUB_BITS
_Static_assert(RT_HIST_BUCKETS == (64 - HIST_S + 1) << HIST_S, "RT_HIST_BUCKETS covers uint64");

int rt_hist_bucket(uint64_t v) {
    if (v < (1u << HIST_S)) return (int)v;
    int m = 63 - __builtin_clzll(v);  /* the leading bit, >= HIST_S */
    return ((m - HIST_S + 1) << HIST_S) + (int)((v >> (m - HIST_S)) & ((1u << HIST_S) - 1));
}

uint64_t rt_hist_lower(int i) {
    if (i < 0) return 0;
    if (i >= RT_HIST_BUCKETS) return RT_NEVER;
    if (i < 2 << HIST_S) return (uint64_t)i;
    int m = (i >> HIST_S) + HIST_S - 1;
    return ((uint64_t)(1u << HIST_S) + (uint64_t)(i & ((1 << HIST_S) - 1))) << (m - HIST_S);
}

/* ---------------------------------------------------------------- nodes and shards */
typedef struct { uint64_t t, seq; rt_node *node; } event_t;

typedef struct shard {
    rt_engine *e;
    pool_t pool;
    event_t *ev;
    size_t n_ev, cap_ev;
    uint64_t seq;
    _Atomic uint64_t gen;    /* sequence lock: odd while the loop mutates this shard */
    _Atomic int readers;     /* readers waiting for an even `gen`: the loop lets them in */
    struct packet_log *log;  /* non-NULL when a node of the engine is logged (checked per packet) */
    uint64_t now;            /* time of the event being processed, for drop records */
    uint64_t first_in;       /* when the first packet entered from an endpoint (RT_NEVER: none yet) */
    struct group *g;         /* the thread that runs it */
    int32_t n_nodes;
    int32_t slot;            /* its entry in the group's list of scheduled shards, -1: none */
    uint64_t events, packets; /* events fired, packets that entered from its endpoints (BUMP) */
    /* a region of a split channel (rt_link_cut): the cuts into it and out of it */
    struct cut **cuts_in, **cuts_out;
    int32_t n_in, n_out;
    size_t *cursor;          /* merging its incoming hand-offs: a position per cut in */
    uint64_t busy_ns;        /* CPU time it took since the last rebalancing (measured only then) */
} shard_t;

/* The packet log: records buffered by the thread that runs time, written in blocks by a writer
 * thread of the log's own, so that the thread forwarding packets does not wait in write(2) (whole
 * packets make hundreds of MiB/s of log); it waits only when the writer is a whole block behind. Two blocks: the thread that runs time fills `buf` (`n`
 * records in `used` bytes) until less than the longest record is left, then swaps it with the
 * writer's once that is written (`pending` clear), under `mu`. */
typedef struct packet_log {
    int fd;
    uint32_t snaplen;        /* IP bytes kept of a real packet; 0: all */
    uint8_t *buf;
    size_t used, cap, n;
    uint8_t *wbuf;           /* the writer's block: `wn` records in `wused` bytes while `pending` */
    size_t wused, wn;
    int pending, quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* `pending` or `quit` changed */
    pthread_t writer;
    _Atomic uint64_t written, lost;
    int shared;              /* several engine threads append: `append_mu` orders them */
    pthread_mutex_t append_mu;
} packet_log_t;

#define LOG_PAD(len) (((len) + RT_LOG_ALIGN - 1) & ~(size_t)(RT_LOG_ALIGN - 1))
#define LOG_RECORD_MAX (sizeof(rt_log_record) + LOG_PAD(IO_FRAME_MAX))
#define LOG_BLOCK (320 << 10)  /* bytes per write(2) */

static void log_close(packet_log_t *L);

/* The engine's record of a node; the cell's state follows it in the same allocation. The first
 * cache line holds what every packet passing the node needs, the counters start the second. */
struct rt_node {
    const rt_cell_ops *ops;
    rt_node *out1;           /* destination of output 0: single-output cells need no other lookup */
    shard_t *sh;
    uint64_t sched_t;        /* time of its entry in the event heap, RT_NEVER if none */
    rt_rng rng;
    rt_counters c;
    rt_node **out;           /* destination per output port, NULL if none; out[0] == out1 */
    struct port *port;       /* endpoints of real runs: their interface */
    int32_t id, n_out;
    uint32_t addr;           /* endpoints: IPv4 address, host order */
    int32_t is_endpoint;
    int32_t logged;          /* its events go to the packet log */
    int32_t segmenting;      /* endpoints in GSO mode: cut super-frames at ingress */
    uint64_t slack_max;      /* rt_cell_set_slack: how late a real run may send its departures (0: exact) */
    uint64_t slack;          /* its scheduled event's slack: a few of its own departure intervals */
    _Alignas(16) unsigned char state[];
};

typedef struct {
    int fid, src, dst, kind;
    uint64_t rate_bps;
    uint32_t size;
    uint64_t n;              /* packets generated */
    uint64_t t0;             /* when it sends its first packet */
    uint64_t next_t;
    rt_flow_stats st;
    uint64_t hist[RT_HIST_BUCKETS];  /* one-way delays of received packets: fixed size, whatever the run;
                                      * right after `st`, so that one snapshot copies both */
    uint64_t rx_high;        /* 1 + the highest sequence number received so far (0: none yet) */
    int keep_samples;        /* raw samples, only on request (rt_flow_keep_samples) */
    uint64_t *delays;        /* one-way delay of each received packet */
    uint64_t *seqs;          /* and its sequence number in the flow */
    uint64_t n_delays, cap_delays;
} flow_t;

typedef struct { uint64_t at, order; int node, param; double value; } command_t;

#define TX_BATCH 64

/* An endpoint's interface in a real run, with the packets waiting to be sent in one system call. */
/* A port lent to engines one at a time (rt_port_open); `holder` is the engine that has it. */
struct rt_port {
    io_port *io;
    rt_engine *holder;
    int closing;             /* rt_port_close while lent: closed when given back */
};

typedef struct port {
    io_port *io;             /* NULL once a lent port went back (rt_engine_return_ports) */
    rt_port *lent;           /* the port's owner when it is lent, else NULL (the engine's own) */
    rt_node *node;
    rt_pkt *batch[TX_BATCH];
    int n;
    uint64_t tx_errors;
    uint64_t last_call;      /* the engine's tx_calls when this port's frames last joined a call */
    rt_lateness late;        /* written by the loop (BUMP), read by anyone */
    int set_macs;            /* rt_endpoint_set_macs: frames sent get these Ethernet addresses */
    uint8_t macs[12];        /* destination, then source, as in the frame */
    int gso;                 /* IO_GSO: frames go out with a virtio-net header */
    int merge;               /* GSO mode: consecutive TCP segments leave as one super-frame */
    rt_gso_stats gso_stats;
} port_t;

typedef struct { command_t *a; size_t n, cap; } commands_t;

/* A group's scheduled shards (those with an event), each with its next event's time, unsorted and
 * contiguous: a step reads one entry per scheduled shard and touches only the shards that have
 * something due; a shard with nothing scheduled costs nothing. (A heap ordered them, but cost more
 * per step than it saved when most shards are due in every 1 ms slice.) */
typedef struct { uint64_t t; shard_t *s; } shard_key_t;

/* One engine thread's share of the graph: its shards, the changes to its nodes, its own clock in
 * real runs (each thread sleeps on its own ports), and its load. Group 0 runs in the engine thread
 * (or rt_run_until's caller); groups 1.. in threads of their own, each pinned to its core. */
typedef struct group {
    rt_engine *e;
    int idx, cpu;            /* cpu: the core it is pinned to, -1: not pinned */
    shard_t **shards;
    int n_shards, n_nodes;
    shard_key_t *keys;       /* its scheduled shards */
    size_t n_keys, cap_keys;
    commands_t pending;      /* changes to its nodes at a later logical time, by (at, order) */
    commands_t inbox;        /* changes posted while it runs (under e->mu) */
    _Atomic int inbox_n;
    _Atomic uint64_t now;
    int wakefd;              /* real runs: eventfd, a change or a stop for it asleep in epoll */
    struct port **ports;     /* real runs: the ports of its shards */
    int n_ports;
    pthread_t thread;
    int thread_live, rc;
    _Atomic uint64_t busy_ns; /* time spent running events, receiving and sending (not sleeping) */
    rt_timing timing;        /* real runs: its loop's clock and sends (rt_engine_timing sums the groups) */
    shard_t **split;         /* its regions that have cuts in or out (hand-offs at the window's start) */
    int n_split;
    /* real runs split over threads: set while it may sleep, so that a producer that hands it packets
     * writes its eventfd (on its own line: read by other threads once per loop turn of theirs) */
    char pad_a_[64];         /* (padding, not _Alignas: the groups come from calloc) */
    _Atomic int sleeping;
    char pad_b_[60];
} group_t;

struct rt_engine {
    uint64_t seed;
    _Atomic uint64_t now;
    rt_node **nodes;
    int n_nodes, cap_nodes;
    int *flow_nodes;         /* node id of each flow */
    int n_flows, cap_flows;
    shard_t *shards;         /* NULL until time first runs */
    int n_shards;
    commands_t pending;      /* changes posted before time first ran; sealing hands them to groups */
    uint64_t order;
    /* threads */
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* an inbox non-empty, stop requested, or loop finished */
    _Atomic int posted;      /* changes in any group's inbox */
    int n_threads;           /* rt_engine_set_threads; 1 by default */
    int *cpus;               /* their cores, NULL: not pinned */
    group_t *groups;         /* after sealing: min(n_threads, shards) groups */
    int n_groups;
    _Atomic int independent; /* a real run on several threads: each group keeps its own time */
    /* the pool that runs groups 1.. in virtual time: woken per step, met at a barrier */
    _Atomic uint32_t epoch, remaining;
    _Atomic int pool_quit;
    int pool_live;
    uint64_t pool_step;
    _Atomic uint64_t wall_ns, wall0_ns; /* time spent running time (wall0: start of the run on, 0: none) */
    _Atomic int busy;        /* a loop (caller's or own thread) is running */
    _Atomic int stop;
    int thread_live;
    pthread_t thread;
    uint64_t until;
    int clock;
    int thread_rc;
    /* real runs */
    port_t **ports;
    int n_ports;
    int ports_returned;      /* lent ports went back: no more real runs */
    uint64_t clock_offset;   /* CLOCK_REALTIME - CLOCK_MONOTONIC when the loop started */
    uint64_t wall0, logical0;
    uint64_t late_threshold_ns; /* a frame sent later than this after its time counts as late */
    int nice;                /* the real loop's thread takes it (0: unchanged) */
    _Atomic int nice_now;    /* what it has: set by the thread once started */
    _Atomic int nice_known;
    int precise;             /* rt_engine_set_precise */
    int64_t coalesce_ns;     /* rt_engine_set_coalesce */
    _Atomic int timing_known; /* group 0's loop has started: its clock's figures are chosen */
    packet_log_t *log;
    /* one channel over several threads (rt_link_cut): with cuts, changes wait in `pending` for the
     * barrier, where hand-offs are taken first */
    int (*cut_specs)[2];     /* (src, port) asked, before time runs */
    int n_cut_specs;
    struct cut *cuts;        /* in force once sealed (virtual time only) */
    int n_cuts;
    int cut_w;               /* hand-offs of the running window go to buffer cut_w (flipped at the barrier) */
    uint64_t lookahead;      /* the least min_hold of the cuts' destinations */
    uint64_t windows, rebalances, rebalance_every, since_rebalance;
    int timed;               /* regions' CPU time is measured (for rebalancing) */
    int split_real;          /* rt_engine_set_split_real: cuts split channels in real runs too */
    uint32_t ring_slots;     /* the size of each cut's rings then */
    int rtsplit;             /* sealed so: a real run's regions hand off through rings (no windows) */
};

/* Cuts that run in windows of virtual time (not a real run's rings). */
#define VSPLIT(e) ((e)->n_cuts && !(e)->rtsplit)

static void pool_stop(rt_engine *e);
static void split_free(rt_engine *e);

int rt_abi_version(void) { return RT_ABI_VERSION; }

extern const rt_cell_ops rt_endpoint_ops, rt_flow_ops;

rt_engine *rt_engine_new(uint64_t seed) {
    rt_engine *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->seed = seed;
    e->n_threads = 1;
    e->late_threshold_ns = RT_LATE_THRESHOLD_NS;
    e->coalesce_ns = RT_COALESCE_AUTO;
    e->rebalance_every = 1024;
    e->lookahead = RT_NEVER;
    pthread_mutex_init(&e->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cv, &ca);
    pthread_condattr_destroy(&ca);
    return e;
}

static void give_back(port_t *p) {
    rt_port *rp = p->lent;
    rp->holder = NULL;
    p->lent = NULL;
    p->io = NULL;
    if (rp->closing) rt_port_close(rp);
}

void rt_engine_free(rt_engine *e) {
    if (!e) return;
    rt_engine_stop(e);
    pool_stop(e);
    if (e->log) log_close(e->log);
    for (int i = 0; i < e->n_nodes; i++) {
        rt_node *n = e->nodes[i];
        if (n->ops->destroy) n->ops->destroy(n->state);
        free(n->out);
        free(n);
    }
    split_free(e);
    for (int i = 0; i < e->n_shards; i++) {
        pool_free(&e->shards[i].pool);
        free(e->shards[i].ev);
    }
    for (int i = 0; i < e->n_ports; i++) {
        port_t *p = e->ports[i];
        if (p->lent) give_back(p);
        else io_close(p->io);
        free(p);
    }
    free(e->ports);
    for (int i = 0; i < e->n_groups; i++) {
        group_t *g = &e->groups[i];
        if (g->wakefd >= 0) close(g->wakefd);
        free(g->shards);
        free(g->keys);
        free(g->pending.a);
        free(g->inbox.a);
        free(g->ports);
        free(g->split);
    }
    free(e->groups);
    free(e->cpus);
    free(e->shards);
    free(e->nodes);
    free(e->flow_nodes);
    free(e->pending.a);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

static int add_node(rt_engine *e, const rt_cell_ops *ops, const rt_value *config, int n_out) {
    if (e->shards || atomic_load(&e->busy)) return RT_ESTATE;
    if (n_out < 0 || n_out > 1 << 16) return RT_EINVAL;
    if (config && config->kind != RT_VAL_RECORD) {
        rt_set_error("cell type `%s`: its configuration must be a record", ops->type);
        return RT_EINVAL;
    }
    if (e->n_nodes == e->cap_nodes) {
        int cap = e->cap_nodes ? e->cap_nodes * 2 : 16;
        rt_node **a = realloc(e->nodes, (size_t)cap * sizeof *a);
        if (!a) return RT_ENOMEM;
        e->nodes = a;
        e->cap_nodes = cap;
    }
    size_t size = (sizeof(rt_node) + ops->state_size + 63) & ~(size_t)63;
    rt_node *n = aligned_alloc(64, size);
    if (!n) return RT_ENOMEM;
    memset(n, 0, size);
    n->ops = ops;
    n->sched_t = RT_NEVER;
    n->n_out = n_out;
    n->id = e->n_nodes;
    if (n_out > 0) {
        n->out = calloc((size_t)n_out, sizeof *n->out);
        if (!n->out) { free(n); return RT_ENOMEM; }
    }
    if (ops->init) {
        struct rt_cfg_state *st = rt_cfg_state_new(ops->type);
        if (!st) { free(n->out); free(n); return RT_ENOMEM; }
        rt_config cfg = rt_cfg_root(config, st);
        int rc = ops->init(n->state, &cfg, n_out, atomic_load(&e->now));
        if (rc >= 0 && rt_cfg_status(&cfg) < 0) rc = RT_EINVAL;  /* an error the cell did not check */
        free(st);
        if (rc < 0) {
            if (ops->destroy) ops->destroy(n->state);  /* init may have allocated before it failed */
            if (!rt_last_error()[0]) rt_set_error("cell type `%s` refused its configuration", ops->type);
            free(n->out);
            free(n);
            return rc;
        }
    }
    rng_seed(&n->rng, e->seed, (uint64_t)n->id + 1);
    e->nodes[e->n_nodes++] = n;
    return n->id;
}

int rt_add_endpoint(rt_engine *e) {
    int id = add_node(e, &rt_endpoint_ops, NULL, 1);
    if (id >= 0) e->nodes[id]->is_endpoint = 1;
    return id;
}

int rt_add_cell(rt_engine *e, const char *type, const rt_value *config, int n_outputs) {
    rt_clear_error();
    const rt_cell_ops *ops = type ? rt_find_cell_type(type) : NULL;
    if (!ops) {
        rt_set_error("no cell type `%s` is registered in the engine", type ? type : "(null)");
        return RT_ENOTYPE;
    }
    return add_node(e, ops, config, n_outputs);
}

static rt_node *node_at(const rt_engine *e, int id) {
    return id >= 0 && id < e->n_nodes ? e->nodes[id] : NULL;
}

int rt_endpoint_set_addr(rt_engine *e, int node, uint32_t addr) {
    rt_node *n = node_at(e, node);
    if (!n || !n->is_endpoint) return RT_ERANGE;
    n->addr = addr;
    return RT_OK;
}

/* A packet forwarded by cells that never hold one (no next_event) moves at one logical instant: a
 * cycle of them would pass it round forever within rt_run_until. Is `from` on such a cycle now? */
static int passes_at_once(const rt_node *n) { return !n->is_endpoint && !n->ops->next_event; }

static int instant_cycle(rt_engine *e, rt_node *from) {
    if (!passes_at_once(from)) return RT_OK;
    char *seen = calloc((size_t)e->n_nodes, 1);
    int *stack = malloc((size_t)e->n_nodes * sizeof *stack);
    if (!seen || !stack) { free(seen); free(stack); return RT_ENOMEM; }
    int top = 0, found = 0;
    stack[top++] = from->id;
    seen[from->id] = 1;
    while (top && !found) {
        rt_node *n = e->nodes[stack[--top]];
        for (int p = 0; p < n->n_out && !found; p++) {
            rt_node *d = n->out[p];
            if (!d || !passes_at_once(d)) continue;
            if (d == from) found = 1;
            else if (!seen[d->id]) { seen[d->id] = 1; stack[top++] = d->id; }
        }
    }
    free(seen);
    free(stack);
    if (found) {
        rt_set_error("node %d (%s) would be on a cycle of cells that hold no packet, which would pass a packet "
                     "round forever at one instant: put a cell that holds packets (delay, bw) on the cycle",
                     from->id, from->ops->type);
        return RT_EINVAL;
    }
    return RT_OK;
}

int rt_link(rt_engine *e, int src, int port, int dst) {
    rt_clear_error();
    rt_node *s = node_at(e, src), *d = node_at(e, dst);
    if (!s || !d) return RT_ERANGE;
    if (e->shards || atomic_load(&e->busy)) return RT_ESTATE;
    if (port < 0 || port >= s->n_out) return RT_ERANGE;
    if (s->out[port]) return RT_ESTATE;
    s->out[port] = d;
    if (port == 0) s->out1 = d;
    int rc = instant_cycle(e, s);
    if (rc != RT_OK) {
        s->out[port] = NULL;
        if (port == 0) s->out1 = NULL;
    }
    return rc;
}

/* ---------------------------------------------------------------- event heap (per shard) */
/* 4-ary: half the depth of a binary heap, and a node's children share a cache line. */
#define EV_ARITY 4

static inline int ev_before(const event_t *a, const event_t *b) {
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static int ev_push(shard_t *s, uint64_t t, rt_node *node) {
    if (s->n_ev == s->cap_ev) {
        size_t cap = s->cap_ev ? s->cap_ev * 2 : 16;
        event_t *a = realloc(s->ev, cap * sizeof *a);
        if (!a) return RT_ENOMEM;
        s->ev = a;
        s->cap_ev = cap;
    }
    event_t x = {t, s->seq++, node};
    size_t i = s->n_ev++;
    while (i > 0) {
        size_t p = (i - 1) / EV_ARITY;
        if (!ev_before(&x, &s->ev[p])) break;
        s->ev[i] = s->ev[p];
        i = p;
    }
    s->ev[i] = x;
    return RT_OK;
}

static event_t ev_pop(shard_t *s) {
    event_t top = s->ev[0], last = s->ev[--s->n_ev];
    size_t i = 0, n = s->n_ev;
    for (;;) {
        size_t c = EV_ARITY * i + 1;
        if (c >= n) break;
        size_t best = c, end = c + EV_ARITY < n ? c + EV_ARITY : n;
        for (size_t j = c + 1; j < end; j++)
            if (ev_before(&s->ev[j], &s->ev[best])) best = j;
        if (!ev_before(&s->ev[best], &last)) break;
        s->ev[i] = s->ev[best];
        i = best;
    }
    if (n) s->ev[i] = last;
    return top;
}

/* ---------------------------------------------------------------- what cells call */
/* Counters have one writer (the loop) and readers on other threads: the writer stores each one
 * atomically (a plain store on x86), the readers load them atomically inside the sequence lock. */
#define BUMP(field, v) __atomic_store_n(&(field), (field) + (uint64_t)(v), __ATOMIC_RELAXED)

void rt_reschedule(rt_node *n) {
    if (!n->ops->next_event || !n->sh) return;  /* before time runs, sealing schedules every node */
    uint64_t t = n->ops->next_event(n->state);
    if (t < n->sched_t) {
        n->sched_t = t;
        ev_push(n->sh, t, n);  /* on ENOMEM the node is late, not lost: its next event re-arms it */
    }
}

/* The writer thread: one write(2) per block, no second copy through stdio. */
static void log_write(packet_log_t *L, const uint8_t *buf, size_t used, size_t n) {
    size_t done = 0;
    while (done < used) {
        ssize_t w = write(L->fd, buf + done, used - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    uint64_t whole = n;  /* a failed write: only the records wholly written count as written */
    if (done < used) {
        whole = 0;
        for (size_t at = 0; at < used;) {
            const rt_log_record *r = (const rt_log_record *)(buf + at);
            at += sizeof *r + LOG_PAD(r->cap_len);
            if (at > done) break;
            whole++;
        }
    }
    atomic_fetch_add_explicit(&L->written, whole, memory_order_relaxed);
    atomic_fetch_add_explicit(&L->lost, n - whole, memory_order_relaxed);
}

static void *log_writer(void *arg) {
    packet_log_t *L = arg;
    pthread_mutex_lock(&L->mu);
    for (;;) {
        while (!L->pending && !L->quit) pthread_cond_wait(&L->cv, &L->mu);
        if (!L->pending) break;  /* quit, with nothing left to write */
        pthread_mutex_unlock(&L->mu);
        log_write(L, L->wbuf, L->wused, L->wn);  /* wbuf is the writer's until `pending` clears */
        pthread_mutex_lock(&L->mu);
        L->pending = 0;
        pthread_cond_broadcast(&L->cv);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

/* The thread that runs time hands its block to the writer (waiting for the previous one to be
 * written first) and goes on in the other; with `wait`, also until this one is written. */
static void log_hand_over(packet_log_t *L, int wait) {
    pthread_mutex_lock(&L->mu);
    while (L->pending) pthread_cond_wait(&L->cv, &L->mu);
    if (L->n) {
        uint8_t *full = L->buf;
        L->buf = L->wbuf;
        L->wbuf = full;
        L->wused = L->used;
        L->wn = L->n;
        L->pending = 1;
        L->used = L->n = 0;
        pthread_cond_broadcast(&L->cv);
    }
    while (wait && L->pending) pthread_cond_wait(&L->cv, &L->mu);
    pthread_mutex_unlock(&L->mu);
}

/* Everything buffered is in the file when this returns. */
static void log_flush(packet_log_t *L) { log_hand_over(L, 1); }

static void log_close(packet_log_t *L) {
    log_flush(L);
    pthread_mutex_lock(&L->mu);
    L->quit = 1;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    pthread_join(L->writer, NULL);
    pthread_cond_destroy(&L->cv);
    pthread_mutex_destroy(&L->mu);
    if (L->shared) pthread_mutex_destroy(&L->append_mu);
    close(L->fd);
    free(L->buf);
    free(L->wbuf);
    free(L);
}

/* One record; cold (only when a logged node sees a packet). A synthetic packet has no bytes: its
 * record keeps its addresses (8 bytes) and readers synthesize a header. */
__attribute__((noinline)) static void log_event(rt_node *n, const rt_pkt *k, uint64_t t, int event, int reason,
                                                 uint64_t sojourn) {
    packet_log_t *L = n->sh->log;
    if (L->shared) pthread_mutex_lock(&L->append_mu);
    rt_log_record *r = (rt_log_record *)(L->buf + L->used);
    uint8_t *body = (uint8_t *)(r + 1);
    uint32_t cap = 0;
    if (k->flow < 0) {  /* a real packet: its IP bytes, after the 14 of Ethernet */
        if (k->buf && k->len > 14) {
            cap = L->snaplen && k->len - 14 > L->snaplen ? L->snaplen : k->len - 14;
            if (cap > IO_FRAME_MAX - 14) cap = IO_FRAME_MAX - 14;  /* a super-frame's first bytes (never
                                                                    * logged whole: logging cuts them) */
            memcpy(body, k->buf + 14, cap);
        }
    } else {
        cap = 8;
        memcpy(body, &k->src_addr, 4);
        memcpy(body + 4, &k->dst_addr, 4);
    }
    memset(body + cap, 0, LOG_PAD(cap) - cap);  /* the padding, so that no stale bytes reach the file */
    r->t = t;
    r->sojourn_ns = sojourn;
    r->fseq = k->fseq;
    r->node = (uint32_t)n->id;
    r->size = k->size;
    r->flow = k->flow;
    r->event = (uint8_t)event;
    r->reason = (uint8_t)reason;
    r->cap_len = (uint16_t)cap;
    L->used += sizeof *r + LOG_PAD(cap);
    L->n++;
    if (L->cap - L->used < LOG_RECORD_MAX) log_hand_over(L, 0);
    if (L->shared) pthread_mutex_unlock(&L->append_mu);
}

void rt_drop(rt_node *n, rt_pkt *k, int reason) {
    if (__builtin_expect(n->sh->log != NULL, 0) && n->logged)
        log_event(n, k, k->t > n->sh->now ? k->t : n->sh->now, RT_LOG_DROP, reason, 0);
    BUMP(n->c.dropped_packets, 1);
    BUMP(n->c.dropped_bytes, k->size);
    BUMP(n->c.dropped[reason], 1);
    pool_put(&n->sh->pool, k);
}

void rt_hold(rt_node *n, const rt_pkt *k, int sign) {
    BUMP(n->c.queued_packets, (int64_t)sign);
    BUMP(n->c.queued_bytes, (int64_t)sign * k->size);
}

void rt_emit(rt_node *n, int port, rt_pkt *k, uint64_t t) {
    rt_node *dst = port == 0 ? n->out1 : (port > 0 && port < n->n_out) ? n->out[port] : NULL;
    if (!dst) {
        rt_drop(n, k, RT_DROP_NO_ROUTE);
        return;
    }
    /* no departure yet: out counts only deliveries (a flag of its own would cost a third store) */
    if (__builtin_expect(n->c.out_packets == n->c.delivered_packets, 0)) __atomic_store_n(&n->c.first_out_ns, t, __ATOMIC_RELAXED);
    __atomic_store_n(&n->c.last_out_ns, t, __ATOMIC_RELAXED);
    BUMP(n->c.out_packets, 1);
    BUMP(n->c.out_bytes, k->size);
    BUMP(dst->c.in_packets, 1);
    BUMP(dst->c.in_bytes, k->size);
    if (__builtin_expect(n->sh->log != NULL, 0)) {
        if (n->logged) log_event(n, k, t, RT_LOG_DEPART, 0, t - k->t);
        if (dst->logged) log_event(dst, k, t, RT_LOG_ARRIVE, 0, 0);
    }
    k->t = t;
    dst->ops->enqueue(dst, dst->state, k);
}

rt_pkt *rt_clone(rt_node *n, const rt_pkt *k) {
    rt_pkt *c = pool_get(&n->sh->pool);
    if (!c) return NULL;
    if (k->buf && c->buf && pool_room(&n->sh->pool, c, k->len) < 0) { pool_put(&n->sh->pool, c); return NULL; }
    uint8_t *buf = c->buf;
    uint32_t cap = c->cap;
    *c = *k;
    c->buf = buf;
    c->cap = cap;
    if (k->buf && buf) memcpy(buf, k->buf, k->len);
    c->next = NULL;
    BUMP(n->c.created_packets, 1);
    BUMP(n->c.created_bytes, c->size);
    return c;
}

void rt_count_modified(rt_node *n) { BUMP(n->c.modified_packets, 1); }
rt_rng *rt_node_rng(rt_node *n) { return &n->rng; }
uint64_t rt_first_arrival(const rt_node *n) { return n->sh->first_in; }
uint64_t rt_next_seq(rt_node *n) { return n->sh->seq++; }

/* ---------------------------------------------------------------- endpoints and flows */
static flow_t *flow_of(rt_engine *e, int fid) { return (flow_t *)e->nodes[e->flow_nodes[fid]]->state; }

static uint64_t mono_ns(void);

static void flush_ports(group_t *grp);

static void endpoint_enqueue(rt_node *n, void *state, rt_pkt *k) {
    (void)state;
    rt_engine *e = n->sh->e;
    BUMP(n->c.out_packets, 1);  /* delivered to the endpoint's application (or interface) */
    BUMP(n->c.out_bytes, k->size);
    BUMP(n->c.delivered_packets, 1);
    BUMP(n->c.delivered_bytes, k->size);
    if (n->port) {
        if (!k->len) { pool_put(&n->sh->pool, k); return; }  /* a synthetic packet has no frame */
        port_t *p = n->port;
        if (p->set_macs && k->len >= 12) memcpy(k->buf, p->macs, 12);
        p->batch[p->n++] = k;
        if (p->n == TX_BATCH) flush_ports(n->sh->g);
        return;
    }
    if (k->flow >= 0 && k->flow < e->n_flows) {
        flow_t *f = flow_of(e, k->flow);
        if (n->id != f->dst) {  /* a wrong route: delivered, but not to the flow's destination */
            /* added, not stored: with cuts, wrong endpoints in several regions may count at once */
            __atomic_fetch_add(&f->st.misdelivered_packets, 1, __ATOMIC_RELAXED);
            __atomic_fetch_add(&f->st.misdelivered_bytes, k->size, __ATOMIC_RELAXED);
            pool_put(&n->sh->pool, k);
            return;
        }
        uint64_t d = k->t - k->born;
        BUMP(f->st.received_packets, 1);
        BUMP(f->st.received_bytes, k->size);
        BUMP(f->st.delay_sum_ns, d);
        if (d < f->st.delay_min_ns) __atomic_store_n(&f->st.delay_min_ns, d, __ATOMIC_RELAXED);
        if (d > f->st.delay_max_ns) __atomic_store_n(&f->st.delay_max_ns, d, __ATOMIC_RELAXED);
        BUMP(f->hist[rt_hist_bucket(d)], 1);
        if (k->fseq + 1 < f->rx_high) BUMP(f->st.reordered_packets, 1);
        else f->rx_high = k->fseq + 1;
        if (!f->keep_samples) { pool_put(&n->sh->pool, k); return; }
        if (f->n_delays == f->cap_delays) {
            uint64_t cap = f->cap_delays ? f->cap_delays * 2 : 1024;
            uint64_t *a = realloc(f->delays, cap * sizeof *a);
            if (a) f->delays = a;
            uint64_t *b = a ? realloc(f->seqs, cap * sizeof *b) : NULL;
            if (b) { f->seqs = b; f->cap_delays = cap; }
        }
        if (f->n_delays < f->cap_delays) {
            f->seqs[f->n_delays] = k->fseq;
            f->delays[f->n_delays++] = d;
        }
    }
    pool_put(&n->sh->pool, k);
}

const rt_cell_ops rt_endpoint_ops = {.type = "endpoint", .enqueue = endpoint_enqueue};

static void flow_destroy(void *state) {
    flow_t *f = state;
    free(f->delays);
    free(f->seqs);
}

static uint64_t flow_next_event(const void *state) { return ((const flow_t *)state)->next_t; }

static uint64_t flow_time(flow_t *f, uint64_t n, rt_rng *r) {
    if (f->kind == RT_FLOW_POISSON) {
        double mean = (double)f->size * 8e9 / (double)f->rate_bps;
        return f->next_t + (uint64_t)llround(rt_rng_exponential(r) * mean);
    }
    unsigned __int128 num = (unsigned __int128)n * f->size * 8u * 1000000000u;
    return f->t0 + (uint64_t)(num / f->rate_bps);
}

static void flow_fire(rt_node *n, void *state, uint64_t t) {
    flow_t *f = state;
    rt_engine *e = n->sh->e;
    rt_node *src = e->nodes[f->src];
    uint32_t dst_addr = e->nodes[f->dst]->addr, src_addr = src->addr;
    while (f->next_t <= t) {
        uint64_t at = f->next_t;
        f->n++;
        f->next_t = flow_time(f, f->n, &n->rng);
        rt_pkt *k = pool_get(&n->sh->pool);
        if (!k) { BUMP(n->c.dropped_packets, 1); BUMP(n->c.dropped[RT_DROP_POOL], 1); continue; }
        k->born = at;
        k->len = 0;
        k->segs = 1;
        k->gso_type = RT_GSO_NONE;
        k->vnet_flags = 0;
        k->dst_addr = dst_addr;
        k->src_addr = src_addr;
        k->fseq = f->n - 1;
        k->size = f->size;
        k->flow = f->fid;
        BUMP(f->st.sent_packets, 1);
        BUMP(f->st.sent_bytes, k->size);
        BUMP(n->c.out_packets, 1);
        BUMP(n->c.out_bytes, k->size);
        /* the packet leaves the source endpoint */
        BUMP(src->c.in_packets, 1);
        BUMP(src->c.in_bytes, k->size);
        if (n->sh->first_in == RT_NEVER) n->sh->first_in = at;
        BUMP(n->sh->packets, 1);
        rt_emit(src, 0, k, at);
    }
}

const rt_cell_ops rt_flow_ops = {.type = "flow", .state_size = sizeof(flow_t), .destroy = flow_destroy,
                                 .next_event = flow_next_event, .fire = flow_fire};

int rt_add_flow(rt_engine *e, int src, int dst, int kind, uint64_t rate_bps, uint32_t size_bytes) {
    rt_node *s = node_at(e, src), *d = node_at(e, dst);
    if (!s || !d) return RT_ERANGE;
    if (!s->is_endpoint || !d->is_endpoint) return RT_EINVAL;
    if (rate_bps == 0 || size_bytes == 0 || (kind != RT_FLOW_CBR && kind != RT_FLOW_POISSON)) return RT_EINVAL;
    if (e->n_flows == e->cap_flows) {
        int cap = e->cap_flows ? e->cap_flows * 2 : 8;
        int *a = realloc(e->flow_nodes, (size_t)cap * sizeof *a);
        if (!a) return RT_ENOMEM;
        e->flow_nodes = a;
        e->cap_flows = cap;
    }
    int id = add_node(e, &rt_flow_ops, NULL, 0);
    if (id < 0) return id;
    flow_t *f = (flow_t *)e->nodes[id]->state;
    f->src = src; f->dst = dst; f->kind = kind; f->rate_bps = rate_bps; f->size = size_bytes;
    f->next_t = f->t0 = atomic_load(&e->now);
    f->st.delay_min_ns = RT_NEVER;
    f->fid = e->n_flows;
    e->flow_nodes[e->n_flows] = id;
    return e->n_flows++;
}

/* ---------------------------------------------------------------- real packets */
/* A port for endpoint `n`: `io` given (a lent port's), else opened on the interface. */
static int add_port(rt_engine *e, rt_node *n, rt_port *lent, const char *netns_path, const char *ifname,
                    int offload) {
    if (e->shards || atomic_load(&e->busy) || n->port || e->ports_returned) return RT_ESTATE;
    port_t **a = realloc(e->ports, (size_t)(e->n_ports + 1) * sizeof *a);
    if (!a) return RT_ENOMEM;
    e->ports = a;
    port_t *p = calloc(1, sizeof *p);
    if (!p) return RT_ENOMEM;
    if (lent) {
        io_reset(lent->io);
        p->io = lent->io;
        p->lent = lent;
        lent->holder = e;
    } else {
        p->io = io_open(netns_path, ifname, offload);
        if (!p->io) { free(p); return RT_ESYS; }
    }
    p->gso = io_mode(p->io) == IO_GSO;
    p->merge = p->gso;
    p->node = n;
    n->port = p;
    e->ports[e->n_ports++] = p;
    return RT_OK;
}

int rt_endpoint_attach(rt_engine *e, int node, const char *netns_path, const char *ifname, int offload) {
    rt_node *n = node_at(e, node);
    if (!n || !n->is_endpoint || !ifname) return RT_ERANGE;
    if (offload != RT_OFFLOAD_PLAIN && offload != RT_OFFLOAD_GSO) return RT_EINVAL;
    return add_port(e, n, NULL, netns_path, ifname, offload);
}

int rt_endpoint_set_segmenting(rt_engine *e, int node, int on) {
    rt_node *n = node_at(e, node);
    if (!n || !n->is_endpoint) return RT_ERANGE;
    if (e->shards || atomic_load(&e->busy)) return RT_ESTATE;
    n->segmenting = on != 0;
    return RT_OK;
}

int rt_cell_set_slack(rt_engine *e, int node, uint64_t max_ns) {
    rt_node *n = node_at(e, node);
    if (!n || n->is_endpoint) return RT_ERANGE;
    if (atomic_load(&e->busy)) return RT_ESTATE;
    n->slack_max = n->ops->next_event ? max_ns : 0;  /* a cell without events has no departures of its own */
    n->slack = 0;
    return RT_OK;
}

int rt_endpoint_gso_stats(const rt_engine *e, int node, rt_gso_stats *out) {
    rt_node *n = node_at(e, node);
    if (!n || !n->is_endpoint || !out) return RT_ERANGE;
    memset(out, 0, sizeof *out);
    if (!n->port) return RT_OK;
    out->super_frames = __atomic_load_n(&n->port->gso_stats.super_frames, __ATOMIC_RELAXED);
    out->super_segments = __atomic_load_n(&n->port->gso_stats.super_segments, __ATOMIC_RELAXED);
    out->cut_frames = __atomic_load_n(&n->port->gso_stats.cut_frames, __ATOMIC_RELAXED);
    out->merged_frames = __atomic_load_n(&n->port->gso_stats.merged_frames, __ATOMIC_RELAXED);
    out->merged_segments = __atomic_load_n(&n->port->gso_stats.merged_segments, __ATOMIC_RELAXED);
    return RT_OK;
}

int rt_endpoint_set_merging(rt_engine *e, int node, int on) {
    rt_node *n = node_at(e, node);
    if (!n || !n->is_endpoint) return RT_ERANGE;
    if (atomic_load(&e->busy)) return RT_ESTATE;
    if (!n->port) return RT_ESTATE;
    n->port->merge = on && n->port->gso;
    return RT_OK;
}

rt_port *rt_port_open(const char *netns_path, const char *ifname, int offload) {
    if (!ifname) { errno = EINVAL; return NULL; }
    rt_port *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->io = io_open(netns_path, ifname, offload);
    if (!p->io) { int err = errno; free(p); errno = err; return NULL; }
    return p;
}

void rt_port_close(rt_port *p) {
    if (!p) return;
    if (p->holder) { p->closing = 1; return; }
    io_close(p->io);
    free(p);
}

int rt_endpoint_attach_port(rt_engine *e, int node, rt_port *p) {
    rt_node *n = node_at(e, node);
    if (!n || !n->is_endpoint || !p) return RT_ERANGE;
    if (p->holder || p->closing) return RT_ESTATE;
    return add_port(e, n, p, NULL, NULL, 0);
}

int rt_engine_return_ports(rt_engine *e) {
    if (e->thread_live || atomic_load(&e->busy)) return RT_ESTATE;
    int any = 0;
    for (int i = 0; i < e->n_ports; i++)
        if (e->ports[i]->lent) { give_back(e->ports[i]); any = 1; }
    if (any) e->ports_returned = 1;
    return RT_OK;
}

int rt_endpoint_set_macs(rt_engine *e, int node, const uint8_t *src, const uint8_t *dst) {
    rt_node *n = node_at(e, node);
    if (!n || !n->is_endpoint || !n->port || !src || !dst) return RT_ERANGE;
    if (e->shards || atomic_load(&e->busy)) return RT_ESTATE;
    memcpy(n->port->macs, dst, 6);
    memcpy(n->port->macs + 6, src, 6);
    n->port->set_macs = 1;
    return RT_OK;
}

int rt_endpoint_lateness(const rt_engine *e, int node, rt_lateness *out) {
    rt_node *n = node_at(e, node);
    if (!n || !n->is_endpoint || !out) return RT_ERANGE;
    if (!n->port) { memset(out, 0, sizeof *out); return RT_OK; }
    const uint64_t *src = (const uint64_t *)&n->port->late;
    uint64_t *dst = (uint64_t *)out;
    for (size_t i = 0; i < sizeof *out / sizeof(uint64_t); i++) dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    return RT_OK;
}

int rt_packet_log_open(rt_engine *e, const char *path, uint32_t snaplen) {
    if (!path) return RT_EINVAL;
    if (e->shards || atomic_load(&e->busy) || e->log) return RT_ESTATE;
    packet_log_t *L = calloc(1, sizeof *L);
    if (!L) return RT_ENOMEM;
    L->snaplen = snaplen;
    L->cap = LOG_BLOCK;
    L->buf = malloc(L->cap);
    L->wbuf = malloc(L->cap);
    int rc = RT_OK, err = 0;
    if (!L->buf || !L->wbuf) {
        rc = RT_ENOMEM, err = ENOMEM;
    } else if ((L->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
        rc = RT_ESYS, err = errno;
    } else {
        pthread_mutex_init(&L->mu, NULL);
        pthread_cond_init(&L->cv, NULL);
        if ((err = pthread_create(&L->writer, NULL, log_writer, L)) != 0) {
            rc = RT_ESYS;
            pthread_cond_destroy(&L->cv);
            pthread_mutex_destroy(&L->mu);
            close(L->fd);
        }
    }
    if (rc != RT_OK) {
        free(L->buf);
        free(L->wbuf);
        free(L);
        errno = err;
        return rc;
    }
    e->log = L;
    return RT_OK;
}

int rt_packet_log_node(rt_engine *e, int node, int on) {
    rt_node *n = node_at(e, node);
    if (!n) return RT_ERANGE;
    if (!e->log) return RT_ESTATE;
    if (e->shards || atomic_load(&e->busy)) return RT_ESTATE;
    n->logged = on != 0;
    return RT_OK;
}

int rt_packet_log_flush(rt_engine *e) {
    if (!e->log) return RT_OK;
    if (atomic_load(&e->busy)) return RT_ESTATE;
    log_flush(e->log);
    return RT_OK;
}

int rt_engine_set_nice(rt_engine *e, int nice) {
    if (atomic_load(&e->busy)) return RT_ESTATE;
    if (nice < -20 || nice > 19) return RT_EINVAL;
    e->nice = nice;
    return RT_OK;
}

int rt_engine_nice(const rt_engine *e, int *nice) {
    if (!atomic_load(&e->nice_known)) return RT_ESTATE;
    *nice = atomic_load(&e->nice_now);
    return RT_OK;
}

int rt_engine_set_precise(rt_engine *e, int on) {
    if (atomic_load(&e->busy)) return RT_ESTATE;
    e->precise = on != 0;
    return RT_OK;
}

int rt_engine_set_coalesce(rt_engine *e, int64_t ns) {
    if (atomic_load(&e->busy)) return RT_ESTATE;
    if (ns < 0 && ns != RT_COALESCE_AUTO) return RT_EINVAL;
    e->coalesce_ns = ns;
    return RT_OK;
}

int rt_engine_timing(const rt_engine *e, rt_timing *out) {
    if (!atomic_load(&((rt_engine *)e)->timing_known) || !e->groups) return RT_ESTATE;
    /* the figures chosen are group 0's (every group calibrates alike); the counters sum the groups */
    _Static_assert(sizeof(rt_timing_chosen) % sizeof(uint64_t) == 0, "rt_timing_chosen: uint64_t fields");
    _Static_assert(sizeof(rt_timing_counters) % sizeof(uint64_t) == 0, "rt_timing_counters: uint64_t counts");
    const size_t n_chosen = sizeof(rt_timing_chosen) / sizeof(uint64_t);
    const size_t n_counters = sizeof(rt_timing_counters) / sizeof(uint64_t);
    memset(out, 0, sizeof *out);
    const uint64_t *first = (const uint64_t *)&e->groups[0].timing.chosen;
    for (size_t i = 0; i < n_chosen; i++) ((uint64_t *)&out->chosen)[i] = __atomic_load_n(&first[i], __ATOMIC_RELAXED);
    for (int g = 0; g < e->n_groups; g++) {
        const uint64_t *src = (const uint64_t *)&e->groups[g].timing.counters;
        for (size_t i = 0; i < n_counters; i++) ((uint64_t *)&out->counters)[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    }
    return RT_OK;
}

int rt_packet_log_stats(const rt_engine *e, uint64_t *written, uint64_t *lost) {
    if (!e->log) { *written = *lost = 0; return RT_OK; }
    *written = atomic_load(&e->log->written);
    *lost = atomic_load(&e->log->lost);
    return RT_OK;
}

int rt_engine_set_late_threshold(rt_engine *e, uint64_t ns) {
    if (atomic_load(&e->busy)) return RT_ESTATE;
    e->late_threshold_ns = ns;
    return RT_OK;
}

int rt_netdev_tune(const char *netns_path, const char *ifname, int no_ipv6) {
    return io_tune(netns_path, ifname, no_ipv6);
}

/* A real packet of `len` frame bytes and `size` IP bytes, from the pool, with room for the frame;
 * NULL (counted as a pool drop at endpoint n) if there is none. */
static rt_pkt *real_pkt(rt_node *n, uint32_t len, uint32_t size) {
    rt_pkt *k = pool_get(&n->sh->pool);
    if (k && pool_room(&n->sh->pool, k, len) < 0) { pool_put(&n->sh->pool, k); k = NULL; }
    if (!k) {
        BUMP(n->c.dropped_packets, 1);
        BUMP(n->c.dropped_bytes, size);
        BUMP(n->c.dropped[RT_DROP_POOL], 1);
        return NULL;
    }
    k->len = len;
    k->size = size;
    k->segs = 1;
    k->gso_type = RT_GSO_NONE;
    k->vnet_flags = 0;
    k->gso_size = k->hdr_len = k->csum_start = k->csum_offset = 0;
    return k;
}

/* Real packet k (its frame in place) enters the graph at endpoint n at logical time t. */
static void enter_graph(rt_node *n, rt_pkt *k, uint64_t t) {
    const uint8_t *frame = k->buf;
    k->born = t;
    k->flow = -1;
    k->fseq = 0;
    k->src_addr = k->dst_addr = 0;
    if (k->len >= 34 && frame[12] == 0x08 && frame[13] == 0x00) {  /* IPv4 */
        k->src_addr = (uint32_t)frame[26] << 24 | (uint32_t)frame[27] << 16 | (uint32_t)frame[28] << 8 | frame[29];
        k->dst_addr = (uint32_t)frame[30] << 24 | (uint32_t)frame[31] << 16 | (uint32_t)frame[32] << 8 | frame[33];
    }
    if (n->sh->first_in == RT_NEVER) n->sh->first_in = t;
    BUMP(n->sh->packets, 1);
    rt_emit(n, 0, k, t);
}

/* A GSO super-frame cut at a segmenting endpoint: each segment enters the graph on its own, at
 * the same time, with a complete checksum. */
static void enter_segments(port_t *p, const uint8_t *frame, uint32_t len, const gso_vnet *vh, const gso_info *g,
                           uint64_t t) {
    rt_node *n = p->node;
    uint32_t seg_max = g->hdr_len + vh->gso_size;
    for (uint32_t i = 0; i < g->segs; i++) {
        uint32_t left = len - g->hdr_len - i * (uint32_t)vh->gso_size;
        rt_pkt *k = real_pkt(n, seg_max, g->hdr_len - 14 + (left < vh->gso_size ? left : vh->gso_size));
        if (!k) continue;
        k->len = gso_segment(frame, len, vh, g, i, k->buf);
        k->size = k->len - 14;
        enter_graph(n, k, t);
    }
    BUMP(p->gso_stats.cut_frames, 1);
}

/* A frame arrived on an endpoint's interface: into the graph at the kernel's receive time. In GSO
 * mode (`vh`, its virtio-net header) a super-frame enters whole, counted as the IP bytes of all its
 * segments, or, at an endpoint that segments, as its segments. A segmenting endpoint also completes
 * the partial checksum of an ordinary frame, so that cells see every packet as the wire would. */
static void port_receive(void *ctx, const uint8_t *frame, uint32_t len, uint64_t rx_ns, const gso_vnet *vh) {
    port_t *p = ctx;
    rt_node *n = p->node;
    rt_engine *e = n->sh->e;
    if (len < 14 || len > (vh ? IO_SUPER_MAX : IO_FRAME_MAX)) return;
    uint64_t now = atomic_load_explicit(&n->sh->g->now, memory_order_relaxed);
    uint64_t mono = rx_ns - e->clock_offset;
    uint64_t t = mono > e->wall0 ? e->logical0 + (mono - e->wall0) : e->logical0;
    if (t < now) t = now;  /* the loop has moved on: the packet cannot enter the past */
    gso_info g = {.segs = 1, .ip_bytes = len - 14};
    int gso = vh && vh->gso_type != GSO_NONE, super = 0;
    if (vh) {
        super = gso_inspect(frame, len, vh, &g) == 0 && gso;
        if (super) {
            BUMP(p->gso_stats.super_frames, 1);
            BUMP(p->gso_stats.super_segments, g.segs);
        } else {  /* one packet, whatever it is: a GSO frame this engine cannot read goes on whole */
            g.segs = 1, g.ip_bytes = len - 14, g.hdr_len = vh->hdr_len;
        }
    }
    BUMP(n->c.in_packets, g.segs);
    BUMP(n->c.in_bytes, g.ip_bytes);
    if (super && n->segmenting) {
        enter_segments(p, frame, len, vh, &g, t);
        return;
    }
    rt_pkt *k = real_pkt(n, len, g.ip_bytes);
    if (!k) {
        if (g.segs > 1) {  /* the whole super-frame: its other segments too */
            BUMP(n->c.dropped_packets, g.segs - 1);
            BUMP(n->c.dropped[RT_DROP_POOL], g.segs - 1);
        }
        return;
    }
    memcpy(k->buf, frame, len);
    if (vh) {
        if (gso) {
            k->segs = (uint16_t)g.segs;
            k->gso_type = vh->gso_type;
            k->gso_size = vh->gso_size;
            k->hdr_len = g.hdr_len;
        }
        if (vh->flags & GSO_F_NEEDS_CSUM) {
            if (n->segmenting && gso_complete_csum(k->buf, len, vh->csum_start, vh->csum_offset) == 0) {
                k->vnet_flags = 0;
            } else {
                k->vnet_flags = RT_VNET_NEEDS_CSUM;
                k->csum_start = vh->csum_start;
                k->csum_offset = vh->csum_offset;
            }
        }
    }
    enter_graph(n, k, t);
}

/* ---------------------------------------------------------------- sharding */
static int uf_find(int *parent, int x) {
    while (parent[x] != x) { parent[x] = parent[parent[x]]; x = parent[x]; }
    return x;
}

static void uf_union(int *parent, int a, int b) {
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    if (a != b) parent[a > b ? a : b] = a < b ? a : b;  /* the smaller id represents its component */
}

static int cmd_insert(commands_t *c, command_t x);
static void group_key(group_t *g, shard_t *s);

static int rank_descending(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Give the shards to min(n_threads, shards) groups: the largest first (by nodes, then by index), each
 * to the group with the fewest nodes so far (the lowest index on a tie). Depends only on the graph
 * and the thread count, never on timing. */
static int assign_groups(rt_engine *e) {
    int ng = e->n_threads < e->n_shards ? e->n_threads : e->n_shards;
    if (ng < 1) ng = 1;
    e->groups = calloc((size_t)ng, sizeof *e->groups);
    int *order = malloc((size_t)(e->n_shards ? e->n_shards : 1) * sizeof *order);
    if (!e->groups || !order) { free(order); return RT_ENOMEM; }
    e->n_groups = ng;
    for (int i = 0; i < ng; i++) {
        group_t *g = &e->groups[i];
        g->e = e;
        g->idx = i;
        g->cpu = e->cpus ? e->cpus[i] : -1;
        g->wakefd = -1;
        atomic_store(&g->now, atomic_load(&e->now));
        g->shards = malloc((size_t)(e->n_shards ? e->n_shards : 1) * sizeof *g->shards);
        if (!g->shards) { free(order); return RT_ENOMEM; }
    }
    /* by nodes descending, then index: (nodes << 32 | (2^32 - 1 - index)) descending, one qsort */
    uint64_t *rank = malloc((size_t)(e->n_shards ? e->n_shards : 1) * sizeof *rank);
    if (!rank) { free(order); return RT_ENOMEM; }
    for (int i = 0; i < e->n_shards; i++) rank[i] = (uint64_t)e->shards[i].n_nodes << 32 | (0xffffffffu - (uint32_t)i);
    qsort(rank, (size_t)e->n_shards, sizeof *rank, rank_descending);
    for (int i = 0; i < e->n_shards; i++) order[i] = (int)(0xffffffffu - (uint32_t)rank[i]);
    free(rank);
    for (int i = 0; i < e->n_shards; i++) {
        group_t *best = &e->groups[0];
        for (int k = 1; k < ng; k++)
            if (e->groups[k].n_nodes < best->n_nodes) best = &e->groups[k];
        shard_t *s = &e->shards[order[i]];
        s->g = best;
        best->n_nodes += s->n_nodes;
        best->shards[best->n_shards++] = s;
    }
    free(order);
    for (int i = 0; i < e->n_ports; i++) {  /* each group sleeps on the ports of its own shards */
        group_t *g = e->ports[i]->node->sh->g;
        struct port **a = realloc(g->ports, (size_t)(g->n_ports + 1) * sizeof *a);
        if (!a) return RT_ENOMEM;
        g->ports = a;
        g->ports[g->n_ports++] = e->ports[i];
    }
    for (size_t i = 0; i < e->pending.n && !VSPLIT(e); i++) {  /* changes posted before time ran: to their node's group */
        int rc = cmd_insert(&e->nodes[e->pending.a[i].node]->sh->g->pending, e->pending.a[i]);
        if (rc < 0) return rc;
    }
    if (!VSPLIT(e)) e->pending.n = 0;  /* with cuts they stay: the barrier applies them */
    return RT_OK;
}

/* Split the graph into connected components (links, and each flow's endpoints), give them to the
 * engine's threads, and schedule. */
static int split_make(rt_engine *e, int *parent, int *shard_of);
static void split_lists(rt_engine *e);

static int is_cut(const rt_engine *e, const char *has_cut, int src, int port) {
    if (!has_cut || !has_cut[src]) return 0;
    for (int i = 0; i < e->n_cut_specs; i++)
        if (e->cut_specs[i][0] == src && e->cut_specs[i][1] == port) return 1;
    return 0;
}

static int seal(rt_engine *e) {
    if (e->shards) return RT_OK;
    int n = e->n_nodes;
    int *parent = malloc((size_t)(n ? n : 1) * sizeof *parent);
    int *shard_of = malloc((size_t)(n ? n : 1) * sizeof *shard_of);
    /* cuts split channels into regions in virtual time only (docs/engine.md) */
    /* in a real run only when asked (rt_engine_set_split_real) and there is more than one thread */
    int cutting = e->n_cut_specs > 0 && (e->n_ports == 0 || (e->split_real && e->n_threads > 1));
    e->rtsplit = cutting && e->n_ports > 0;
    char *has_cut = cutting ? calloc((size_t)(n ? n : 1), 1) : NULL;
    if (!parent || !shard_of || (cutting && !has_cut)) { free(parent); free(shard_of); free(has_cut); return RT_ENOMEM; }
    for (int i = 0; i < e->n_cut_specs && cutting; i++) has_cut[e->cut_specs[i][0]] = 1;
    for (int i = 0; i < n; i++) parent[i] = i;
    for (int i = 0; i < n; i++)
        for (int p = 0; p < e->nodes[i]->n_out; p++)
            if (e->nodes[i]->out[p] && !is_cut(e, has_cut, i, p)) uf_union(parent, i, e->nodes[i]->out[p]->id);
    for (int f = 0; f < e->n_flows; f++) {  /* with cuts, a flow's destination may be in another region */
        const flow_t *fl = flow_of(e, f);
        uf_union(parent, e->flow_nodes[f], fl->src);
        if (!cutting) uf_union(parent, fl->src, fl->dst);
    }
    free(has_cut);
    int count = 0;
    for (int i = 0; i < n; i++) shard_of[i] = uf_find(parent, i) == i ? count++ : -1;
    e->shards = calloc((size_t)(count ? count : 1), sizeof *e->shards);
    if (!e->shards) { free(parent); free(shard_of); return RT_ENOMEM; }
    e->n_shards = count;
    for (int i = 0; i < count; i++) {
        e->shards[i].e = e;
        e->shards[i].pool.with_bufs = e->n_ports > 0;
        e->shards[i].log = NULL;
        e->shards[i].first_in = RT_NEVER;
        e->shards[i].slot = -1;
    }
    for (int i = 0; i < n; i++) {
        e->nodes[i]->sh = &e->shards[shard_of[uf_find(parent, i)]];
        e->nodes[i]->sh->n_nodes++;
    }
    for (int i = 0; i < n; i++)  /* only shards with a logged node pay for the log's check */
        if (e->nodes[i]->logged) e->nodes[i]->sh->log = e->log;
    int rc = cutting ? split_make(e, parent, shard_of) : RT_OK;
    free(parent);
    free(shard_of);
    if (rc < 0) return rc;
    rc = assign_groups(e);
    if (rc < 0) return rc;
    split_lists(e);
    if (e->log && e->n_groups > 1) {
        pthread_mutex_init(&e->log->append_mu, NULL);
        e->log->shared = 1;
    }
    for (int i = 0; i < n; i++) rt_reschedule(e->nodes[i]);
    for (int i = 0; i < count; i++) group_key(e->shards[i].g, &e->shards[i]);
    return RT_OK;
}

/* ---------------------------------------------------------------- running */
#define BATCH 1024  /* events per sequence-lock section: how long a counter reader may wait */

/* Opening is a full barrier (a locked add): the odd value is visible before any counter changes. */
static inline void gen_open(shard_t *s) { atomic_fetch_add_explicit(&s->gen, 1, memory_order_seq_cst); }

static inline void gen_close(shard_t *s) {
    atomic_store_explicit(&s->gen, atomic_load_explicit(&s->gen, memory_order_relaxed) + 1, memory_order_release);
}

/* Slack (rt_cell_set_slack): how late node n's next departure, which its fire at t scheduled, may
 * leave to share a wake-up. The interval between two departures of a backlogged paced cell is its
 * rate at work (size x 8 / rate), so a slack of SLACK_PACES such intervals, or as many as fit in
 * slack_max, lets that many departures share one wake-up; a departure more than slack_max after the
 * last one (an idle cell, a slow rate) has none. An event scheduled otherwise (a packet arriving at
 * an idle cell, whose fire left it nothing to schedule) keeps the 0 its last fire left. */
#define SLACK_PACES 8
static uint64_t paced_slack(const rt_node *n, uint64_t t) {
    if (n->sched_t == RT_NEVER || n->sched_t <= t || n->sched_t - t > n->slack_max) return 0;
    uint64_t gap = n->sched_t - t, k = n->slack_max / gap;
    return (k < SLACK_PACES ? k : SLACK_PACES) * gap;
}

/* The latest time a real run's loop may wake for shard s and still send each departure within its
 * slack: the least t + slack over its (live) events. A heap's subtree holds nothing before its root,
 * so only the events before the bound found so far are visited: the few that are due within a slack
 * of the first. RT_NEVER: no event. */
#define WAKE_STACK 64
static uint64_t shard_wake(const shard_t *s) {
    if (!s->n_ev) return RT_NEVER;
    if (!s->ev[0].node->slack) return s->ev[0].t;  /* nothing can be earlier than the first event */
    uint64_t w = RT_NEVER;
    size_t todo[WAKE_STACK], n = 0;
    todo[n++] = 0;
    while (n) {
        size_t i = todo[--n];
        const event_t *x = &s->ev[i];
        if (x->t >= w) continue;
        if (x->t == x->node->sched_t && x->t + x->node->slack < w) w = x->t + x->node->slack;  /* live */
        for (size_t c = EV_ARITY * i + 1; c <= EV_ARITY * i + EV_ARITY && c < s->n_ev; c++) {
            if (n == WAKE_STACK) return s->ev[0].t;  /* too many events close together: no slack */
            todo[n++] = c;
        }
    }
    return w;
}

/* Run one shard's events up to and including t; 1 if it was stopped early. */
static int shard_run(rt_engine *e, shard_t *s, uint64_t t) {
    while (s->n_ev && s->ev[0].t <= t) {
        gen_open(s);
        uint64_t fired = 0;
        for (int i = 0; i < BATCH && s->n_ev && s->ev[0].t <= t; i++) {
            event_t x = ev_pop(s);
            rt_node *n = x.node;
            if (x.t != n->sched_t) continue;   /* stale: the node was rescheduled since */
            n->sched_t = RT_NEVER;
            s->now = x.t;
            n->ops->fire(n, n->state, x.t);
            rt_reschedule(n);
            if (n->slack_max) n->slack = paced_slack(n, x.t);
            fired++;
        }
        BUMP(s->events, fired);
        gen_close(s);
        while (atomic_load_explicit(&s->readers, memory_order_acquire)) sched_yield();  /* no starving */
        if (atomic_load_explicit(&e->stop, memory_order_relaxed)) return 1;
    }
    return 0;
}

/* shard_run, with the region's CPU time measured when rebalancing needs it */
static int region_run(rt_engine *e, shard_t *s, uint64_t t) {
    if (!e->timed) return shard_run(e, s, t);
    uint64_t t0 = mono_ns();
    int stopped = shard_run(e, s, t);
    s->busy_ns += mono_ns() - t0;
    return stopped;
}

/* ---- the group's scheduled shards */
/* Shard s may have an earlier next event than its entry says (an event was added from outside a run
 * of it: a change, a frame received): list it, or move its entry earlier. */
static void group_key(group_t *g, shard_t *s) {
    uint64_t t = s->n_ev ? s->ev[0].t : RT_NEVER;
    if (t == RT_NEVER) return;
    if (s->slot >= 0) {
        if (t < g->keys[s->slot].t) g->keys[s->slot].t = t;
        return;
    }
    if (g->n_keys == g->cap_keys) {
        size_t cap = g->cap_keys ? g->cap_keys * 2 : 16;
        shard_key_t *a = realloc(g->keys, cap * sizeof *a);
        if (!a) return;  /* unlisted, the shard waits for its next change: late, not lost */
        g->keys = a;
        g->cap_keys = cap;
    }
    s->slot = (int32_t)g->n_keys;
    g->keys[g->n_keys++] = (shard_key_t){t, s};
}

static int cmd_before(const command_t *a, const command_t *b) {
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static int cmd_insert(commands_t *c, command_t x) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        command_t *a = realloc(c->a, cap * sizeof *a);
        if (!a) return RT_ENOMEM;
        c->a = a;
        c->cap = cap;
    }
    size_t i = c->n++;
    while (i > 0 && cmd_before(&x, &c->a[i - 1])) { c->a[i] = c->a[i - 1]; i--; }
    c->a[i] = x;
    return RT_OK;
}

static void split_holds(rt_engine *e);

static int apply(rt_engine *e, const command_t *c, uint64_t now) {
    rt_node *n = e->nodes[c->node];
    if (n->sh) gen_open(n->sh);
    int rc = n->ops->control(n, n->state, c->param, c->value, now);
    if (rc == RT_OK && n->sh && n->ops->next_event) {
        n->sched_t = RT_NEVER;  /* the next event may have moved later: a fresh entry */
        rt_reschedule(n);
    }
    if (n->sh) {
        gen_close(n->sh);
        group_key(n->sh->g, n->sh);
    }
    if (VSPLIT(e)) split_holds(e);  /* a change may lower a cut's hold: the next window is shorter */
    return rc;
}

/* Move changes posted by other threads into the group's `pending`. */
static void take_inbox(group_t *g) {
    if (!atomic_load_explicit(&g->inbox_n, memory_order_acquire)) return;
    rt_engine *e = g->e;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < g->inbox.n; i++) cmd_insert(&g->pending, g->inbox.a[i]);
    atomic_fetch_sub(&e->posted, (int)g->inbox.n);
    g->inbox.n = 0;
    atomic_store(&g->inbox_n, 0);
    pthread_mutex_unlock(&e->mu);
}

/* Apply the group's changes due by `step`, at `step`. */
static void group_apply(group_t *g, uint64_t step) {
    size_t done = 0;
    while (done < g->pending.n && g->pending.a[done].at <= step) {
        apply(g->e, &g->pending.a[done], step);
        done++;
    }
    if (done) {
        memmove(g->pending.a, g->pending.a + done, (g->pending.n - done) * sizeof *g->pending.a);
        g->pending.n -= done;
    }
}

/* Run the group's shards to `step` (only those with an event due, from its list), then apply its
 * changes due by then; 1 if stopped. Nothing here touches another group's shards. */
static int group_step(group_t *g, uint64_t step) {
    uint64_t t0 = mono_ns();
    int stopped = 0;
    for (size_t i = 0; i < g->n_keys && !stopped;) {
        if (g->keys[i].t > step) { i++; continue; }
        shard_t *s = g->keys[i].s;
        stopped = region_run(g->e, s, step);
        if (s->n_ev) {  /* after a whole run its next event is after `step` */
            g->keys[i++].t = s->ev[0].t;
            continue;
        }
        s->slot = -1;  /* nothing left: off the list, the last entry (not yet looked at) in its place */
        if (i != --g->n_keys) {
            g->keys[i] = g->keys[g->n_keys];
            g->keys[i].s->slot = (int32_t)i;
        }
    }
    if (!stopped) {
        atomic_store(&g->now, step);
        group_apply(g, step);
    }
    BUMP(g->busy_ns, mono_ns() - t0);
    return stopped;
}

/* The earliest of the group's next event and next change (RT_NEVER: none). */
static uint64_t group_deadline(group_t *g) {
    uint64_t t = g->pending.n ? g->pending.a[0].at : RT_NEVER;
    for (size_t i = 0; i < g->n_keys; i++)
        if (g->keys[i].t < t) t = g->keys[i].t;
    return t;
}

/* Real runs: when the group's loop must run next, each departure within its slack (shard_wake) and
 * each change at its time (RT_NEVER: nothing scheduled). */
static uint64_t group_wake(group_t *g) {
    uint64_t t = g->pending.n ? g->pending.a[0].at : RT_NEVER;
    for (size_t i = 0; i < g->n_keys; i++) {
        if (g->keys[i].t >= t) continue;  /* its first event is no earlier than the bound so far */
        uint64_t w = shard_wake(g->keys[i].s);
        if (w < t) t = w;
    }
    return t;
}

/* ---------------------------------------------------------------- one channel over several threads
 * A cut (rt_link_cut) is a link into a cell with a minimum hold. Sealing leaves cut links out of
 * the regions (the components that remain) and points the link at a proxy node whose enqueue
 * appends (time, packet) to the cut's buffer: the producer's region never touches the consumer's.
 * Virtual time then runs in windows no longer than the lookahead, the least hold of the cuts: a
 * packet handed off at t leaves its destination at t + hold or later, after the window, so the
 * consumer may take it at the next window's start. Each cut has two buffers: the producer appends
 * to buffer cut_w while the consumer takes the other one's (the previous window's), in (time, cut)
 * order, and the coordinator flips cut_w at the barrier. Packets go back to the producer's pool the
 * same way, through two return lists. Changes wait for the barrier, where the hand-offs are taken
 * first and the holds read again after. All of it depends on the graph alone, never on the thread
 * count. */
typedef struct { uint64_t t; rt_pkt *k; } handoff_t;

/* Real runs split over threads: a bounded lock-free ring with one producer thread and one consumer
 * thread, its size a power of two. Each side writes only its own index, on a line of its own, and
 * keeps a copy of the other's, read again only when the ring looks full (producer) or empty
 * (consumer): in steady flow a push or a take touches the other side's line once per batch. */
typedef struct {
    _Alignas(64) _Atomic uint64_t tail;  /* the producer's */
    uint64_t head_seen;
    _Alignas(64) _Atomic uint64_t head;  /* the consumer's */
    uint64_t tail_seen;
    _Alignas(64) handoff_t *slot;
    uint64_t mask;
} ring_t;

/* 1, or 0 if the ring is full (nothing written). */
static int ring_push(ring_t *r, handoff_t h) {
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - r->head_seen > r->mask) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t - r->head_seen > r->mask) return 0;
    }
    r->slot[t & r->mask] = h;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return 1;
}

/* The consumer: the entries waiting from *head on (their slots stay the consumer's until ring_done). */
static uint64_t ring_ready(ring_t *r, uint64_t *head) {
    *head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (*head == r->tail_seen) r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
    return r->tail_seen - *head;
}

static void ring_done(ring_t *r, uint64_t head) { atomic_store_explicit(&r->head, head, memory_order_release); }

/* Anyone: entries waiting (a look, for the sleeping check). */
static int ring_waiting(ring_t *r) {  /* seq_cst: split_may_sleep's look after its announcement (a plain load on x86) */
    return atomic_load_explicit(&r->tail, memory_order_seq_cst) != atomic_load_explicit(&r->head, memory_order_relaxed);
}

static int ring_alloc(ring_t *r, uint32_t slots) {
    r->slot = calloc(slots, sizeof *r->slot);
    r->mask = slots - 1u;
    return r->slot ? RT_OK : RT_ENOMEM;
}

typedef struct cut {
    rt_node *src, *dst, *proxy;
    int port, idx;
    shard_t *from, *to;
    uint64_t hold;           /* dst's min_hold, as last read */
    /* written per packet by the producer (the consumer reads them once per window) */
    _Alignas(64) handoff_t *buf[2]; /* hand-offs: the running window's (buf[cut_w]) and the one before */
    size_t n[2], cap[2];
    uint64_t tmin[2];        /* the earliest time in each */
    uint64_t handoffs;
    /* the consumer's */
    _Alignas(64) rt_pkt *back[2]; /* free packets going back: the consumer fills back[cut_w], the producer takes the other */
    uint64_t owed;           /* packets the consumer's pool owes the producer's */
    uint64_t late;
    uint64_t owed_big;       /* real runs: big buffers (super-frames) the consumer's pool owes */
    /* real runs (e->rtsplit): the rings between the two regions' threads */
    ring_t fwd;              /* hand-offs, producer to consumer, each with its time */
    ring_t ret;              /* free packets (t 0) and big buffers (t 1) going back to the producer's pool */
    uint64_t ring_full, ring_full_bytes; /* hand-offs lost: the ring was full (written by the producer) */
    int pushed;              /* the producer's: it handed off in this loop turn (wake the consumer) */
} cut_t;

static void handoff_enqueue(rt_node *n, void *state, rt_pkt *k) {
    cut_t *c = *(cut_t **)state;
    if (n->sh->e->rtsplit) {  /* a real run: into the ring, taken at the consumer's next loop turn */
        if (!ring_push(&c->fwd, (handoff_t){k->t, k})) {  /* full: lost at the cut, counted at its destination */
            BUMP(c->ring_full, 1);
            BUMP(c->ring_full_bytes, k->size);
            pool_put(&n->sh->pool, k);
            return;
        }
        c->pushed = 1;
        BUMP(c->handoffs, 1);
        return;
    }
    int w = n->sh->e->cut_w;
    if (c->n[w] == c->cap[w]) {
        size_t cap = c->cap[w] ? c->cap[w] * 2 : 256;
        handoff_t *a = realloc(c->buf[w], cap * sizeof *a);
        if (!a) { rt_drop(n, k, RT_DROP_POOL); return; }  /* out of memory: lost at the cut */
        c->buf[w] = a;
        c->cap[w] = cap;
    }
    c->buf[w][c->n[w]++] = (handoff_t){k->t, k};
    if (k->t < c->tmin[w]) c->tmin[w] = k->t;
    BUMP(c->handoffs, 1);
}

static const rt_cell_ops handoff_ops = {.type = "handoff", .state_size = sizeof(cut_t *), .enqueue = handoff_enqueue};

int rt_link_cut(rt_engine *e, int src, int port) {
    rt_clear_error();
    rt_node *s = node_at(e, src);
    if (!s || port < 0 || port >= s->n_out || !s->out[port]) return RT_ERANGE;
    if (e->shards || atomic_load(&e->busy)) return RT_ESTATE;
    rt_node *d = s->out[port];
    if (d->is_endpoint || !d->ops->min_hold) {
        rt_set_error("node %d (%s) has no minimum hold: a link into it cannot be a cut", d->id, d->ops->type);
        return RT_EINVAL;
    }
    for (int i = 0; i < e->n_cut_specs; i++)
        if (e->cut_specs[i][0] == src && e->cut_specs[i][1] == port) return RT_OK;
    int (*a)[2] = realloc(e->cut_specs, (size_t)(e->n_cut_specs + 1) * sizeof *a);
    if (!a) return RT_ENOMEM;
    e->cut_specs = a;
    e->cut_specs[e->n_cut_specs][0] = src;
    e->cut_specs[e->n_cut_specs++][1] = port;
    return RT_OK;
}

int rt_engine_set_rebalance(rt_engine *e, uint64_t every) {
    if (e->shards || atomic_load(&e->busy)) return RT_ESTATE;
    e->rebalance_every = every;
    return RT_OK;
}

int rt_engine_split_stats(const rt_engine *e, rt_split_stats *out) {
    if (!out) return RT_ERANGE;
    memset(out, 0, sizeof *out);
    out->cuts = (uint64_t)e->n_cuts;
    out->lookahead_ns = e->lookahead;
    out->windows = e->windows;
    out->rebalances = e->rebalances;
    for (int i = 0; i < e->n_cuts; i++) {
        out->handoffs += __atomic_load_n(&e->cuts[i].handoffs, __ATOMIC_RELAXED);
        out->late_handoffs += __atomic_load_n(&e->cuts[i].late, __ATOMIC_RELAXED);
        out->ring_full += __atomic_load_n(&e->cuts[i].ring_full, __ATOMIC_RELAXED);
    }
    out->real = (uint64_t)e->rtsplit;
    return RT_OK;
}

int rt_engine_set_split_real(rt_engine *e, int on, uint32_t ring_slots) {
    if (e->shards || atomic_load(&e->busy)) return RT_ESTATE;
    if (ring_slots == 0) ring_slots = RT_SPLIT_RING_DEFAULT;
    if (ring_slots < 2 || (ring_slots & (ring_slots - 1)) || ring_slots > (1u << 24)) return RT_EINVAL;
    e->split_real = on != 0;
    e->ring_slots = ring_slots;
    return RT_OK;
}

static void split_holds(rt_engine *e) {
    uint64_t l = RT_NEVER;
    for (int i = 0; i < e->n_cuts; i++) {
        cut_t *c = &e->cuts[i];
        c->hold = c->dst->ops->min_hold(c->dst->state);
        if (c->hold < l) l = c->hold;
    }
    e->lookahead = l;
}

static int add_ptr(void ***a, int *n, void *x) {
    void **b = realloc(*a, (size_t)(*n + 1) * sizeof *b);
    if (!b) return RT_ENOMEM;
    b[(*n)++] = x;
    *a = b;
    return RT_OK;
}

/* The cuts whose two ends are in different regions, each with its proxy node (from seal). */
static int split_make(rt_engine *e, int *parent, int *shard_of) {
    e->cuts = aligned_alloc(64, (size_t)e->n_cut_specs * sizeof *e->cuts);  /* its parts on lines of their own */
    if (!e->cuts) return RT_ENOMEM;
    memset(e->cuts, 0, (size_t)e->n_cut_specs * sizeof *e->cuts);
    for (int i = 0; i < e->n_cut_specs; i++) {
        rt_node *s = e->nodes[e->cut_specs[i][0]];
        int port = e->cut_specs[i][1];
        rt_node *d = s->out[port];
        if (uf_find(parent, s->id) == uf_find(parent, d->id)) continue;  /* connected anyway: no cut */
        (void)shard_of;
        cut_t *c = &e->cuts[e->n_cuts];
        size_t size = (sizeof(rt_node) + sizeof(cut_t *) + 63) & ~(size_t)63;
        rt_node *px = aligned_alloc(64, size);
        if (!px) return RT_ENOMEM;
        memset(px, 0, size);
        px->ops = &handoff_ops;
        px->sh = s->sh;
        px->sched_t = RT_NEVER;
        px->id = d->id;
        *(cut_t **)px->state = c;
        *c = (cut_t){.src = s, .dst = d, .proxy = px, .port = port, .idx = e->n_cuts, .from = s->sh, .to = d->sh,
                     .tmin = {RT_NEVER, RT_NEVER}};
        e->n_cuts++;
        if (e->rtsplit && (ring_alloc(&c->fwd, e->ring_slots) < 0 || ring_alloc(&c->ret, e->ring_slots) < 0))
            return RT_ENOMEM;
        if (add_ptr((void ***)&s->sh->cuts_out, &s->sh->n_out, c) < 0 ||
            add_ptr((void ***)&d->sh->cuts_in, &d->sh->n_in, c) < 0)
            return RT_ENOMEM;
        s->out[port] = px;
        if (port == 0) s->out1 = px;
    }
    for (int i = 0; i < e->n_shards; i++)
        if (e->shards[i].n_in && !(e->shards[i].cursor = calloc((size_t)e->shards[i].n_in, sizeof(size_t))))
            return RT_ENOMEM;
    if (e->n_cuts) split_holds(e);
    return RT_OK;
}

static void split_free(rt_engine *e) {
    for (int i = 0; i < e->n_cuts; i++) {
        cut_t *c = &e->cuts[i];
        free(c->proxy);
        free(c->buf[0]);
        free(c->buf[1]);
        free(c->fwd.slot);
        free(c->ret.slot);
    }
    for (int i = 0; i < e->n_shards; i++) {
        free(e->shards[i].cuts_in);
        free(e->shards[i].cuts_out);
        free(e->shards[i].cursor);
    }
    free(e->cuts);
    free(e->cut_specs);
}

/* Each group's regions with cuts; who measures time. After sealing and after rebalancing. */
static void split_lists(rt_engine *e) {
    e->timed = VSPLIT(e) && e->n_groups > 1 && e->rebalance_every;
    for (int i = 0; i < e->n_groups; i++) e->groups[i].n_split = 0;
    for (int i = 0; i < e->n_shards && e->n_cuts; i++) {
        shard_t *s = &e->shards[i];
        if (s->n_in || s->n_out) add_ptr((void ***)&s->g->split, &s->g->n_split, s);
    }
}

/* One handed-off packet reaches its destination, as rt_emit would have delivered it at h.t. `done`:
 * the time the destination's region has run to; an event of the destination before it (or at it,
 * with a positive hold) would be in that region's past (counted: the lookahead was wrong). */
static void handoff_arrive(cut_t *c, handoff_t h, uint64_t done) {
    rt_node *dst = c->dst;
    rt_pkt *k = h.k;
    BUMP(dst->c.in_packets, 1);
    BUMP(dst->c.in_bytes, k->size);
    if (__builtin_expect(dst->sh->log != NULL, 0) && dst->logged) log_event(dst, k, h.t, RT_LOG_ARRIVE, 0, 0);
    k->t = h.t;
    dst->sh->now = h.t;
    dst->ops->enqueue(dst, dst->state, k);
    /* with a hold of 0 the window was one instant, and an event at `done` comes in the next one */
    if (dst->sched_t < done || (dst->sched_t == done && c->hold)) BUMP(c->late, 1);
}

/* At a window's start (or at the barrier): region s takes back its packets, takes the previous
 * window's hand-offs into it in (time, cut) order, and gives back as many free packets as it owes. */
static void region_take(rt_engine *e, shard_t *s, uint64_t done) {
    int w = e->cut_w, b = w ^ 1;
    for (int i = 0; i < s->n_out; i++) {
        cut_t *c = s->cuts_out[i];
        for (rt_pkt *k = c->back[b], *next; k; k = next) { next = k->next; pool_put(&s->pool, k); }
        c->back[b] = NULL;
    }
    if (!s->n_in) return;
    gen_open(s);
    if (s->n_in == 1) {  /* one cut in: its order as it is, read through locals (the producer writes the
                          * cut's record meanwhile: no cache line shared per packet) */
        cut_t *c = s->cuts_in[0];
        handoff_t *a = c->buf[b];
        size_t n = c->n[b];
        for (size_t i = 0; i < n; i++) handoff_arrive(c, a[i], done);
        c->owed += n;
    }
    for (int i = 0; i < s->n_in && s->n_in > 1; i++) s->cursor[i] = 0;
    for (; s->n_in > 1;) {  /* merge: the earliest head, the lower cut on a tie */
        int best = -1;
        uint64_t bt = RT_NEVER;
        for (int i = 0; i < s->n_in; i++) {
            cut_t *c = s->cuts_in[i];
            if (s->cursor[i] < c->n[b] && (best < 0 || c->buf[b][s->cursor[i]].t < bt)) {
                best = i;
                bt = c->buf[b][s->cursor[i]].t;
            }
        }
        if (best < 0) break;
        cut_t *c = s->cuts_in[best];
        handoff_arrive(c, c->buf[b][s->cursor[best]++], done);
        c->owed++;
    }
    for (int i = 0; i < s->n_in; i++) {
        cut_t *c = s->cuts_in[i];
        c->n[b] = 0;
        c->tmin[b] = RT_NEVER;
        while (c->owed && s->pool.free) {
            rt_pkt *k = s->pool.free;
            s->pool.free = k->next;
            k->next = c->back[w];
            c->back[w] = k;
            c->owed--;
        }
    }
    gen_close(s);
    group_key(s->g, s);
}

/* A group's window: its regions' hand-offs first, then its events to `step`. */
static int group_window(group_t *g, uint64_t step) {
    rt_engine *e = g->e;
    if (e->n_cuts && g->n_split) {
        uint64_t t0 = mono_ns(), done = atomic_load(&g->now);
        for (int i = 0; i < g->n_split; i++) {
            uint64_t r0 = e->timed ? mono_ns() : 0;
            region_take(e, g->split[i], done);
            if (e->timed) g->split[i]->busy_ns += mono_ns() - r0;
        }
        BUMP(g->busy_ns, mono_ns() - t0);
    }
    return group_step(g, step);
}

/* Changes posted to any group, into the engine's list (with cuts they apply at the barrier). */
static void split_take_inboxes(rt_engine *e) {
    for (int i = 0; i < e->n_groups; i++) {
        group_t *g = &e->groups[i];
        take_inbox(g);
        for (size_t k = 0; k < g->pending.n; k++) cmd_insert(&e->pending, g->pending.a[k]);
        g->pending.n = 0;
    }
}

/* At the barrier (every thread waits): every hand-off taken, then the changes due by `now` applied at
 * `now` (each reads the holds again). */
static void split_settle(rt_engine *e, uint64_t now) {
    for (int i = 0; i < e->n_shards; i++)
        if (e->shards[i].n_in || e->shards[i].n_out) region_take(e, &e->shards[i], now);
    size_t done = 0;
    while (done < e->pending.n && e->pending.a[done].at <= now) apply(e, &e->pending.a[done++], now);
    if (done) {
        memmove(e->pending.a, e->pending.a + done, (e->pending.n - done) * sizeof *e->pending.a);
        e->pending.n -= done;
    }
}

/* The earliest time an event may happen in the next window: the regions' next events, and the
 * hand-offs waiting, which leave their destinations a hold later. */
static uint64_t split_earliest(rt_engine *e) {
    uint64_t t = RT_NEVER;
    for (int i = 0; i < e->n_groups; i++) {
        uint64_t g = group_deadline(&e->groups[i]);
        if (g < t) t = g;
    }
    int b = e->cut_w ^ 1;
    for (int i = 0; i < e->n_cuts; i++) {
        cut_t *c = &e->cuts[i];
        if (c->n[b]) {
            uint64_t a = c->tmin[b] + c->hold < c->tmin[b] ? RT_NEVER : c->tmin[b] + c->hold;
            if (a < t) t = a;
        }
    }
    return t;
}

static int rank_busy(const void *a, const void *b) {
    const shard_t *x = *(shard_t *const *)a, *y = *(shard_t *const *)b;
    if (x->busy_ns != y->busy_ns) return x->busy_ns < y->busy_ns ? 1 : -1;
    if (x->n_nodes != y->n_nodes) return x->n_nodes < y->n_nodes ? 1 : -1;
    return x < y ? -1 : x > y;
}

/* At the barrier: the regions to threads again by the CPU time each took since the last time, the
 * largest first to the least loaded thread. Only the mapping changes: results cannot. */
static void rebalance(rt_engine *e) {
    int ns = e->n_shards, ng = e->n_groups;
    shard_t **order = malloc((size_t)ns * sizeof *order);
    group_t **to = malloc((size_t)ns * sizeof *to);
    uint64_t *load = calloc((size_t)ng, sizeof *load);
    if (!order || !to || !load) { free(order); free(to); free(load); return; }
    for (int i = 0; i < ns; i++) order[i] = &e->shards[i];
    qsort(order, (size_t)ns, sizeof *order, rank_busy);
    int moved = 0;
    for (int i = 0; i < ns; i++) {
        int best = 0;
        for (int k = 1; k < ng; k++)
            if (load[k] < load[best]) best = k;
        load[best] += order[i]->busy_ns + 1;  /* + 1: regions that took no time still spread */
        to[order[i] - e->shards] = &e->groups[best];
        moved |= to[order[i] - e->shards] != order[i]->g;
    }
    for (int i = 0; i < ns; i++) e->shards[i].busy_ns = 0;
    if (moved) {
        /* under mu: posters read a node's group there (with cuts every inbox goes to e->pending, so a
         * change posted to the group a region leaves is not lost) */
        pthread_mutex_lock(&e->mu);
        for (int i = 0; i < ng; i++) {
            group_t *g = &e->groups[i];
            g->n_shards = g->n_nodes = 0;
            g->n_keys = 0;
        }
        for (int i = 0; i < ns; i++) {
            shard_t *s = &e->shards[i];
            s->g = to[i];
            s->slot = -1;
            s->g->shards[s->g->n_shards++] = s;
            s->g->n_nodes += s->n_nodes;
        }
        for (int i = 0; i < ns; i++) group_key(e->shards[i].g, &e->shards[i]);
        split_lists(e);
        e->rebalances++;
        pthread_mutex_unlock(&e->mu);  /* rt_engine_thread_stats reads the groups' lists under it */
    }
    free(order);
    free(to);
    free(load);
}

/* ---- real runs split over threads (rt_engine_set_split_real): no windows, each group runs its own
 * regions in real time. A packet crossing a cut goes into the cut's ring with its time; the
 * consumer's thread takes it in at its next loop turn and enqueues it at that time, so a delay's
 * departure is the one it would have had unsplit (or as soon as the thread gets there, if that is
 * past). The producer wakes the consumer's eventfd only when it announced it was going to sleep.
 * Packets go back the way virtual time does it: the consumer owes one free packet (and one big
 * buffer per super-frame) for each one it took, and pays them into the cut's return ring after its
 * sends, where the producer takes them at its next turn. Nothing here is shared but the rings. */

/* Group g's thread: the packets handed to its regions, and the free ones given back to them; the
 * count of hand-offs taken. */
static uint64_t split_take_real(group_t *g) {
    uint64_t took = 0;
    for (int i = 0; i < g->n_split; i++) {
        shard_t *s = g->split[i];
        for (int j = 0; j < s->n_out; j++) {
            ring_t *r = &s->cuts_out[j]->ret;
            uint64_t h, n = ring_ready(r, &h);
            for (uint64_t x = 0; x < n; x++, h++) {
                handoff_t b = r->slot[h & r->mask];
                if (b.t) {  /* a big buffer */
                    big_t *big = (big_t *)(void *)b.k;
                    big->next_free = s->pool.big_free;
                    s->pool.big_free = big;
                } else {
                    pool_put(&s->pool, b.k);
                }
            }
            if (n) ring_done(r, h);
        }
        if (!s->n_in) continue;
        uint64_t before = took;
        gen_open(s);
        for (int j = 0; j < s->n_in; j++) {
            cut_t *c = s->cuts_in[j];
            uint64_t h, n = ring_ready(&c->fwd, &h);
            for (uint64_t x = 0; x < n; x++, h++) {
                handoff_t a = c->fwd.slot[h & c->fwd.mask];
                if (a.k->cap > IO_FRAME_MAX) c->owed_big++;
                c->owed++;
                handoff_arrive(c, a, 0);
            }
            if (n) ring_done(&c->fwd, h);
            took += n;
        }
        gen_close(s);
        if (took != before) group_key(g, s);
    }
    return took;
}

/* Group g's thread, after its sends: what its regions owe the producers' pools, into the return rings. */
static void split_give_back(group_t *g) {
    for (int i = 0; i < g->n_split; i++) {
        shard_t *s = g->split[i];
        for (int j = 0; j < s->n_in; j++) {
            cut_t *c = s->cuts_in[j];
            while (c->owed && s->pool.free && ring_push(&c->ret, (handoff_t){0, s->pool.free})) {
                s->pool.free = s->pool.free->next;
                c->owed--;
            }
            while (c->owed_big && s->pool.big_free && ring_push(&c->ret, (handoff_t){1, (rt_pkt *)(void *)s->pool.big_free})) {
                s->pool.big_free = s->pool.big_free->next_free;
                c->owed_big--;
            }
        }
    }
}

/* Group g's thread, after a turn that handed off: wake the consumers that said they would sleep. */
static void wake_group(group_t *g);

static void split_notify(group_t *g) {
    for (int i = 0; i < g->n_split; i++) {
        shard_t *s = g->split[i];
        for (int j = 0; j < s->n_out; j++) {
            cut_t *c = s->cuts_out[j];
            if (!c->pushed) continue;
            c->pushed = 0;
            group_t *to = c->to->g;
            if (to == g) continue;  /* its own: taken before it sleeps */
            /* the push before the look, in one total order with split_may_sleep's announcement and look: a
             * seq_cst read-modify-write of the tail (a locked op, no fence: ThreadSanitizer follows it) */
            atomic_fetch_add_explicit(&c->fwd.tail, 0, memory_order_seq_cst);
            if (atomic_load_explicit(&to->sleeping, memory_order_seq_cst) && atomic_exchange(&to->sleeping, 0))
                wake_group(to);
        }
    }
}

/* Hand-offs waiting for group g's regions. */
static int split_waiting(group_t *g) {
    for (int i = 0; i < g->n_split; i++)
        for (int j = 0; j < g->split[i]->n_in; j++)
            if (ring_waiting(&g->split[i]->cuts_in[j]->fwd)) return 1;
    return 0;
}

/* Group g's thread, before it waits: 1 if it may (it announced it; nothing came meanwhile). */
static int split_may_sleep(group_t *g) {
    atomic_store_explicit(&g->sleeping, 1, memory_order_seq_cst);  /* the announcement before the look */
    if (!split_waiting(g)) return 1;
    atomic_store(&g->sleeping, 0);
    return 0;
}

/* After every thread of a real run ended: what is still in the rings reaches its destination. */
static void split_drain_real(rt_engine *e) {
    for (int i = 0; i < e->n_groups; i++) split_take_real(&e->groups[i]);
    for (int i = 0; i < e->n_groups; i++) split_give_back(&e->groups[i]);
    for (int i = 0; i < e->n_groups; i++) split_take_real(&e->groups[i]);
}

/* ---- the pool: groups 1.. in threads of their own, woken per step, met at a barrier */
static void futex_wait(_Atomic uint32_t *a, uint32_t v) {
    syscall(SYS_futex, (uint32_t *)a, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *a) {
    syscall(SYS_futex, (uint32_t *)a, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

/* Wait until *a differs from v: a short spin first (a step of a few microseconds is common), then
 * the futex. */
static void await_change(_Atomic uint32_t *a, uint32_t v) {
    for (int i = 0; i < 2000; i++) {
        if (atomic_load_explicit(a, memory_order_acquire) != v) return;
        __builtin_ia32_pause();
    }
    while (atomic_load_explicit(a, memory_order_acquire) == v) futex_wait(a, v);
}

static void pin(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);  /* checked against the process's set up front */
}

static void name_thread(int idx) {
    char name[16];
    snprintf(name, sizeof name, "rattan-eng%d", idx);
    pthread_setname_np(pthread_self(), name);
}

static void *pool_worker(void *arg) {
    group_t *g = arg;
    rt_engine *e = g->e;
    pin(g->cpu);
    name_thread(g->idx);
    uint32_t seen = 0;
    for (;;) {
        await_change(&e->epoch, seen);
        seen = atomic_load(&e->epoch);
        if (atomic_load(&e->pool_quit)) break;
        g->rc = group_window(g, e->pool_step);
        if (atomic_fetch_sub(&e->remaining, 1) == 1) futex_wake(&e->remaining);
    }
    return NULL;
}

static int pool_start(rt_engine *e) {
    if (e->pool_live) return RT_OK;
    for (int i = 1; i < e->n_groups; i++)
        if (pthread_create(&e->groups[i].thread, NULL, pool_worker, &e->groups[i]) != 0) {
            atomic_store(&e->pool_quit, 1);
            atomic_fetch_add(&e->epoch, 1);
            futex_wake(&e->epoch);
            for (int k = 1; k < i; k++) pthread_join(e->groups[k].thread, NULL);
            atomic_store(&e->pool_quit, 0);
            return RT_ESYS;
        }
    e->pool_live = 1;
    return RT_OK;
}

static void pool_stop(rt_engine *e) {
    if (!e->pool_live) return;
    atomic_store(&e->pool_quit, 1);
    atomic_fetch_add(&e->epoch, 1);
    futex_wake(&e->epoch);
    for (int i = 1; i < e->n_groups; i++) pthread_join(e->groups[i].thread, NULL);
    e->pool_live = 0;
}

/* Every group to `step`, in parallel: group 0 in this thread, the others in the pool; returns when
 * all are there (the barrier where changes are taken). 1 if stopped. */
/* With cuts whose lookahead is this short (a delay set near 0), windows are instants, too short to
 * pay a meeting of the threads each: they run one group after another in this thread, the same
 * windows in the same order. */
#define SPLIT_SERIAL_NS 20000

static int run_groups(rt_engine *e, uint64_t step) {
    if (e->n_groups == 1) return group_window(&e->groups[0], step);
    if ((e->n_cuts && e->lookahead < SPLIT_SERIAL_NS) || pool_start(e) < 0) {
        /* no threads to be had, or windows too short: the same steps, one group after another */
        int stopped = 0;
        for (int i = 0; i < e->n_groups && !stopped; i++) stopped = group_window(&e->groups[i], step);
        return stopped;
    }
    e->pool_step = step;
    atomic_store(&e->remaining, (uint32_t)(e->n_groups - 1));
    atomic_fetch_add_explicit(&e->epoch, 1, memory_order_release);
    futex_wake(&e->epoch);
    int stopped = group_window(&e->groups[0], step);
    uint32_t r;
    while ((r = atomic_load_explicit(&e->remaining, memory_order_acquire)) != 0) await_change(&e->remaining, r);
    for (int i = 1; i < e->n_groups; i++) stopped |= e->groups[i].rc;
    return stopped;
}

/* Virtual time: advance every group to t together, stopping at each change's exact logical time
 * (every group meets there, so a change posted for one applies at the same step whatever the
 * thread count); 1 if stopped. */
static int advance_split(rt_engine *e, uint64_t t);

static int advance(rt_engine *e, uint64_t t) {
    if (VSPLIT(e)) return advance_split(e, t);
    for (;;) {
        uint64_t now = atomic_load(&e->now);
        uint64_t step = t;
        for (int i = 0; i < e->n_groups; i++) {
            group_t *g = &e->groups[i];
            take_inbox(g);
            if (g->pending.n && g->pending.a[0].at < step) step = g->pending.a[0].at < now ? now : g->pending.a[0].at;
        }
        if (run_groups(e, step)) return 1;
        atomic_store(&e->now, step);
        if (step >= t && !atomic_load_explicit(&e->posted, memory_order_acquire)) return 0;
    }
}

/* Virtual time with cuts: windows of at most the lookahead from the earliest possible event (the
 * least hold minus 1 ns, so that a hand-off's departure is after the window; with a hold of 0, one
 * instant at a time), stopping at every change too; the barrier flips the hand-off buffers, applies
 * the changes after taking the hand-offs, and now and then rebalances. 1 if stopped. */
static int advance_split(rt_engine *e, uint64_t t) {
    for (;;) {
        uint64_t now = atomic_load(&e->now);
        split_take_inboxes(e);
        if (e->pending.n && e->pending.a[0].at <= now) split_settle(e, now);
        uint64_t step = t, first = split_earliest(e);
        if (e->pending.n && e->pending.a[0].at < step) step = e->pending.a[0].at;
        if (first != RT_NEVER) {
            uint64_t l = e->lookahead ? e->lookahead - 1 : 0;
            uint64_t bound = first + l < first ? RT_NEVER : first + l;
            if (bound < step) step = bound;
        }
        if (step < now) step = now;
        int stopped = run_groups(e, step);
        e->cut_w ^= 1;
        if (stopped) return 1;
        e->windows++;
        atomic_store(&e->now, step);
        if (e->timed && ++e->since_rebalance >= e->rebalance_every) {
            e->since_rebalance = 0;
            rebalance(e);
        }
        if (step >= t && !atomic_load_explicit(&e->posted, memory_order_acquire) && split_earliest(e) > t) {
            split_settle(e, step);  /* what is handed off is in its destination when the call returns */
            return 0;
        }
    }
}

/* After a loop ends: changes posted during its last moments, and any now due, apply at once. */
static void split_settle(rt_engine *e, uint64_t now);
static void split_take_inboxes(rt_engine *e);

static void apply_due(rt_engine *e) {
    if (VSPLIT(e)) {
        split_take_inboxes(e);
        split_settle(e, atomic_load(&e->now));
        return;
    }
    for (int i = 0; i < e->n_groups; i++) {
        group_t *g = &e->groups[i];
        take_inbox(g);
        group_apply(g, atomic_load(&g->now));
    }
}

/* The time of a run, for the threads' load figures. */
static void wall_begin(rt_engine *e) { atomic_store(&e->wall0_ns, mono_ns()); }

static void wall_end(rt_engine *e) {
    uint64_t t0 = atomic_exchange(&e->wall0_ns, 0);
    if (t0) atomic_fetch_add(&e->wall_ns, mono_ns() - t0);
}

int rt_run_until(rt_engine *e, uint64_t t_ns) {
    if (e->thread_live || atomic_load(&e->busy) || e->n_ports) return RT_ESTATE;
    if (t_ns < atomic_load(&e->now)) return RT_EINVAL;
    int rc = seal(e);
    if (rc < 0) return rc;
    atomic_store(&e->busy, 1);
    wall_begin(e);
    advance(e, t_ns);
    wall_end(e);
    atomic_store(&e->busy, 0);
    apply_due(e);
    return RT_OK;
}

uint64_t rt_now(const rt_engine *e) {
    rt_engine *x = (rt_engine *)e;
    if (!atomic_load(&x->independent)) return atomic_load(&x->now);
    uint64_t t = RT_NEVER;  /* a real run on several threads: the time every one of them has reached */
    for (int i = 0; i < x->n_groups; i++) {
        uint64_t g = atomic_load(&x->groups[i].now);
        if (g < t) t = g;
    }
    return t;
}

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t next_deadline(rt_engine *e) {
    uint64_t t = e->pending.n ? e->pending.a[0].at : RT_NEVER;  /* with cuts, changes wait there */
    for (int i = 0; i < e->n_groups; i++) {
        uint64_t g = group_deadline(&e->groups[i]);
        if (g < t) t = g;
    }
    return t;
}

static void wake_group(group_t *g) {
    if (g->wakefd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(g->wakefd, &one, sizeof one);
        (void)w;  /* a full counter still wakes the loop */
    }
}

static void wake(rt_engine *e) {
    for (int i = 0; i < e->n_groups; i++) wake_group(&e->groups[i]);
}

/* What flush_ports gathers for one send: up to TX_BATCH frames of ports of one network namespace. */
typedef struct {
    rt_pkt *pkts[TX_BATCH];
    uint8_t *frames[TX_BATCH];
    uint32_t lens[TX_BATCH];
    gso_vnet vh[TX_BATCH];   /* GSO mode: each frame's virtio-net header */
    int ifx[TX_BATCH];
    port_t *owner[TX_BATCH];
    int n;
} tx_gather_t;

/* Put a port's batch into the send being gathered (`call`: the number that send will have): each
 * frame's lateness is the logical time now against the time it was due. */
/* GSO mode: merge the segments of p's batch that follow batch[i] on in one TCP stream into it (gso.h,
 * "Merging at egress"); the merged ones go back to the pool. Returns the index after the run. */
static int merge_run(port_t *p, int i) {
    rt_pkt *k = p->batch[i];
    gso_merge m;
    if (i + 1 >= p->n || k->gso_type != RT_GSO_NONE || p->batch[i + 1]->gso_type != RT_GSO_NONE ||
        gso_merge_start(&m, k->buf, k->len, k->vnet_flags & RT_VNET_NEEDS_CSUM) < 0)
        return i + 1;
    pool_t *pool = &p->node->sh->pool;
    int j = i + 1;
    for (; j < p->n; j++) {
        rt_pkt *b = p->batch[j];
        if (b->gso_type != RT_GSO_NONE || !gso_merge_fits(&m, b->buf, b->len, b->vnet_flags & RT_VNET_NEEDS_CSUM))
            break;
        uint32_t need = m.len + (b->len - m.g.hdr_len);
        if (need > k->cap) {  /* the first segment moves into a big buffer */
            uint8_t *small = k->buf;
            if (pool_room(pool, k, need) < 0) break;
            memcpy(k->buf, small, m.len);
            m.frame = k->buf;
        }
        gso_merge_add(&m, b->buf, b->len);
        pool_put(pool, b);
    }
    if (m.segs > 1) {
        gso_vnet vh;
        k->len = gso_merge_finish(&m, &vh);
        k->vnet_flags = vh.flags;
        k->gso_type = vh.gso_type;
        k->hdr_len = vh.hdr_len;
        k->gso_size = vh.gso_size;
        k->csum_start = vh.csum_start;
        k->csum_offset = vh.csum_offset;
        BUMP(p->gso_stats.merged_frames, 1);
        BUMP(p->gso_stats.merged_segments, m.segs);
    }
    return j;
}

static void port_gather(rt_engine *e, port_t *p, uint64_t lt, tx_gather_t *g, uint64_t call) {
    rt_lateness *L = &p->late;
    int ifindex = io_ifindex(p->io);
    for (int i = 0; i < p->n; i++) {  /* every segment's lateness, before any is merged */
        rt_pkt *k = p->batch[i];
        uint64_t late = lt > k->t ? lt - k->t : 0;
        if (lt < k->t) BUMP(L->early, 1);
        BUMP(L->hist[rt_hist_bucket(late)], 1);
        BUMP(L->sum_ns, late);
        if (late > L->max_ns) BUMP(L->max_ns, late - L->max_ns);
        if (late > e->late_threshold_ns) BUMP(L->late, 1);
    }
    for (int i = 0; i < p->n;) {
        rt_pkt *k = p->batch[i];
        i = p->merge ? merge_run(p, i) : i + 1;
        g->pkts[g->n] = k;
        g->frames[g->n] = k->buf;
        g->lens[g->n] = k->len;
        if (p->gso)
            g->vh[g->n] = (gso_vnet){.flags = k->vnet_flags, .gso_type = k->gso_type, .hdr_len = k->hdr_len,
                                     .gso_size = k->gso_size, .csum_start = k->csum_start, .csum_offset = k->csum_offset};
        g->ifx[g->n] = ifindex;
        g->owner[g->n++] = p;
    }
    BUMP(L->sent, p->n);
    if (p->last_call != call) {  /* its first frames in this call */
        p->last_call = call;
        BUMP(L->tx_calls, 1);
    }
    p->n = 0;
}

static void send_gathered(group_t *grp, port_t *via, tx_gather_t *g) {
    uint8_t ok[TX_BATCH];
    uint64_t calls = 0;
    io_send_to(via->io, g->frames, g->lens, g->vh, g->ifx, g->n, ok, &calls);
    BUMP(grp->timing.counters.tx_calls, calls);
    BUMP(grp->timing.counters.tx_frames, g->n);
    for (int j = 0; j < g->n; j++) {
        if (!ok[j]) g->owner[j]->tx_errors++;
        pool_put(&g->owner[j]->node->sh->pool, g->pkts[j]);
    }
    g->n = 0;
}

/* Send every port's batch of a group (the ports its thread owns): one sendmmsg (per TX_BATCH frames) for all the ports of a network
 * namespace and mode (GSO ports' transmit sockets carry virtio-net headers, plain ones do not),
 * each frame addressed to its port's interface; with coalescing off
 * (rt_engine_set_coalesce 0: the timing before batching), one per port. */
static void flush_ports(group_t *grp) {
    rt_engine *e = grp->e;
    tx_gather_t g;
    g.n = 0;
    uint64_t lt = e->logical0 + (mono_ns() - e->wall0);
    int per_port = e->coalesce_ns == 0;
    for (int first = 0; first < grp->n_ports; first++) {
        port_t *via = grp->ports[first];
        if (!via->n) continue;
        uint64_t ns = io_netns(via->io);
        for (int i = first; i < grp->n_ports; i++) {
            port_t *p = grp->ports[i];
            if (!p->n || (i != first && (per_port || io_netns(p->io) != ns || p->gso != via->gso))) continue;
            if (g.n + p->n > TX_BATCH) send_gathered(grp, via, &g);  /* no room for this port's frames */
            port_gather(e, p, lt, &g, grp->timing.counters.tx_calls + 1);
        }
        send_gathered(grp, via, &g);
    }
}

/* Frames the port's socket lost before the engine saw them: counted at the endpoint, never silent
 * (`exact`: the kernel's count read now, at the end of a run; else as the frames say, io_take_lost). */
static void port_count_lost(port_t *p, int exact) {
    uint64_t lost = io_take_lost(p->io, exact);
    if (lost) {
        BUMP(p->node->c.in_packets, lost);
        BUMP(p->node->c.dropped_packets, lost);
        BUMP(p->node->c.dropped[RT_DROP_RING], lost);
    }
}

/* Take up to 256 waiting frames of a port's ring into the graph. */
static void port_receive_all(port_t *p) {
    shard_t *sh = p->node->sh;
    uint64_t t0 = mono_ns();
    gen_open(sh);
    io_receive(p->io, port_receive, p, 256);
    port_count_lost(p, 0);
    gen_close(sh);
    group_key(sh->g, sh);
    BUMP(sh->g->busy_ns, mono_ns() - t0);
}

/* While the clock spins (precise mode): the group's ports with frames waiting, and the group itself
 * when a change or a stop is posted (its eventfd is read when it comes back as ready). */
static int ports_pending(void *arg, void **ready, int max) {
    group_t *g = arg;
    rt_engine *e = g->e;
    int n = 0;
    if (atomic_load_explicit(&e->stop, memory_order_relaxed) || atomic_load_explicit(&g->inbox_n, memory_order_relaxed) ||
        (e->rtsplit && split_waiting(g)))
        ready[n++] = g;
    for (int i = 0; i < g->n_ports && n < max; i++)
        if (io_pending(g->ports[i]->io)) ready[n++] = g->ports[i];
    return n;
}

/* Real time, one group: advance its shards to t (its changes at their exact times); 1 if stopped.
 * A change whose time was already past when it came (at once: at_ns 0) applies at t, the time the
 * loop woke for it, not at the time the loop last ran, which may be a long sleep earlier: a stopped
 * `bw` set going again must not send at once what the sleep would have let it send. */
static int group_advance(group_t *g, uint64_t t) {
    for (;;) {
        take_inbox(g);
        uint64_t now = atomic_load(&g->now), step = t;
        if (g->pending.n && g->pending.a[0].at < step) step = g->pending.a[0].at <= now ? t : g->pending.a[0].at;
        if (group_step(g, step)) return 1;
        if (step >= t && !atomic_load_explicit(&g->inbox_n, memory_order_acquire)) return 0;
    }
}

/* The real-time loop of one group (all of them when the engine has one thread): run its shards to
 * now, send what is due, then sleep (clock.c) until its next event is due, a frame arrives on one of
 * its ports, or a change or stop request wakes it. */
static void real_loop(group_t *g) {
    rt_engine *e = g->e;
    id_t tid = (id_t)syscall(SYS_gettid);
    if (e->nice) setpriority(PRIO_PROCESS, tid, e->nice);  /* refused without CAP_SYS_NICE: seen below */
    if (g->idx == 0) {
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, tid);
        atomic_store(&e->nice_now, errno ? 0 : nice);
        atomic_store(&e->nice_known, 1);
    }
    clock_ctx *ck = clock_open(e->precise, e->coalesce_ns, &g->timing);  /* precise: calibrates first */
    if (g->idx == 0) atomic_store(&e->timing_known, 1);
    if (!ck) { g->rc = RT_ESYS; return; }
    clock_watch(ck, g->wakefd, g);
    for (int i = 0; i < g->n_ports; i++) clock_watch(ck, io_fd(g->ports[i]->io), g->ports[i]);
    int split = e->rtsplit && g->n_split;  /* its regions hand off to other regions through rings */
    while (!atomic_load(&e->stop)) {
        uint64_t lt = e->logical0 + (mono_ns() - e->wall0);
        uint64_t target = lt < e->until ? lt : e->until;
        uint64_t t0 = mono_ns();
        if (split) split_take_real(g);
        BUMP(g->busy_ns, mono_ns() - t0);
        int stopped = group_advance(g, target);
        /* hand-offs between its own regions (or fresh ones) in the same turn, a few rounds at most:
         * its ports get their turn too */
        for (int round = 0; split && !stopped && round < 4 && split_waiting(g); round++) {
            t0 = mono_ns();
            split_take_real(g);
            BUMP(g->busy_ns, mono_ns() - t0);
            stopped = group_advance(g, target);
        }
        if (stopped) break;
        t0 = mono_ns();
        if (split) split_notify(g);
        flush_ports(g);
        if (split) split_give_back(g);
        BUMP(g->busy_ns, mono_ns() - t0);
        if (target >= e->until) break;
        uint64_t next = group_wake(g);
        /* ---- the wait: until `next` (logical time) is due, or a frame, change or stop arrives */
        uint64_t wake_at = RT_NEVER;
        if (next != RT_NEVER) {
            if (next > e->until) next = e->until;
            wake_at = e->wall0 + (next - e->logical0);
        }
        void *ready[16];
        int n;
        if (split && !split_may_sleep(g))  /* hand-offs came: no sleep, only the ports that have frames */
            n = ports_pending(g, ready, 16);
        else
            n = clock_wait_until(ck, wake_at, ready, 16, ports_pending, g);
        if (split) atomic_store(&g->sleeping, 0);
        for (int i = 0; i < n; i++) {
            uint64_t junk;
            if (ready[i] == g) { ssize_t r = read(g->wakefd, &junk, sizeof junk); (void)r; continue; }
            port_receive_all(ready[i]);
        }
        /* ---- end of the wait */
    }
    flush_ports(g);
    for (int i = 0; i < g->n_ports; i++) {  /* drops after the last frame handed over: exact at the end */
        gen_open(g->ports[i]->node->sh);
        port_count_lost(g->ports[i], 1);
        gen_close(g->ports[i]->node->sh);
    }
    clock_close(ck);
}

static void *group_thread(void *arg) {
    group_t *g = arg;
    pin(g->cpu);
    name_thread(g->idx);
    real_loop(g);
    return NULL;
}

/* A real run on several threads: groups 1.. each in a thread of its own, group 0 in this one. */
static void real_groups(rt_engine *e) {
    atomic_store(&e->independent, 1);  /* rt_now: the groups' own times (one group's too) */
    for (int i = 1; i < e->n_groups; i++)
        e->groups[i].thread_live = pthread_create(&e->groups[i].thread, NULL, group_thread, &e->groups[i]) == 0;
    for (int i = 1; i < e->n_groups; i++)
        if (!e->groups[i].thread_live) {  /* no thread: not forwarded at all is worse than a stop */
            e->groups[0].rc = RT_ESYS;
            atomic_store(&e->stop, 1);
            wake(e);
        }
    real_loop(&e->groups[0]);
    if (e->n_groups > 1) {  /* group 0 ended (stop or `until`): the others end with it */
        atomic_store(&e->stop, 1);
        wake(e);
    }
    for (int i = 1; i < e->n_groups; i++)
        if (e->groups[i].thread_live) { pthread_join(e->groups[i].thread, NULL); e->groups[i].thread_live = 0; }
    if (e->rtsplit) split_drain_real(e);  /* every thread has ended: the rings are this thread's now */
    uint64_t t = RT_NEVER;
    for (int i = 0; i < e->n_groups; i++)
        if (atomic_load(&e->groups[i].now) < t) t = atomic_load(&e->groups[i].now);
    atomic_store(&e->now, t);
    atomic_store(&e->independent, 0);
}

/* Virtual time in the engine thread advances by slices of this much (or to the next event, if later),
 * so that the engine's time moves for observers and changes posted meanwhile apply at a slice end. */
#define VIRTUAL_SLICE_NS 100000000ULL

/* The engine thread: virtual time runs as fast as it can; real time follows the monotonic clock,
 * sleeping until the next event is due or a change or stop request arrives. */
static void *engine_thread(void *arg) {
    rt_engine *e = arg;
    pin(e->groups[0].cpu);
    name_thread(0);
    uint64_t wall0 = mono_ns(), logical0 = atomic_load(&e->now);
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    e->clock_offset = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec - mono_ns();
    e->wall0 = wall0;
    e->logical0 = logical0;
    wall_begin(e);
    if (e->n_ports) {
        real_groups(e);
        goto done;
    }
    while (!atomic_load(&e->stop)) {
        uint64_t target = e->until, now = atomic_load(&e->now);
        if (e->clock == RT_CLOCK_REAL) {
            uint64_t lt = logical0 + (mono_ns() - wall0);
            if (lt < target) target = lt;
        } else if (target - now > VIRTUAL_SLICE_NS) {
            uint64_t next = next_deadline(e);
            target = next != RT_NEVER && next > now + VIRTUAL_SLICE_NS ? (next < target ? next : target)
                                                                       : now + VIRTUAL_SLICE_NS;
        }
        if (advance(e, target)) break;
        if (target >= e->until) break;
        if (e->clock == RT_CLOCK_VIRTUAL) continue;
        uint64_t next = next_deadline(e);
        if (next > e->until) next = e->until;
        uint64_t ahead = next - logical0;
        uint64_t wake = wall0 + (ahead < (1ULL << 62) ? ahead : (1ULL << 62));
        struct timespec ts = {(time_t)(wake / 1000000000u), (long)(wake % 1000000000u)};
        pthread_mutex_lock(&e->mu);
        while (!atomic_load(&e->stop) && !atomic_load(&e->posted) && mono_ns() < wake)
            if (pthread_cond_timedwait(&e->cv, &e->mu, &ts) == ETIMEDOUT) break;
        pthread_mutex_unlock(&e->mu);
    }
done:
    wall_end(e);
    if (e->log) log_flush(e->log);  /* the loop's records, before anyone reads the file */
    pthread_mutex_lock(&e->mu);
    atomic_store(&e->busy, 0);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

int rt_engine_start(rt_engine *e, uint64_t until_ns, int clock) {
    if (e->thread_live || atomic_load(&e->busy)) return RT_ESTATE;
    if (clock != RT_CLOCK_VIRTUAL && clock != RT_CLOCK_REAL) return RT_EINVAL;
    if (until_ns < atomic_load(&e->now)) return RT_EINVAL;
    if (e->n_ports && clock != RT_CLOCK_REAL) return RT_EINVAL;
    if (e->ports_returned) return RT_ESTATE;
    int rc = seal(e);
    if (rc < 0) return rc;
    for (int i = 0; e->n_ports && i < e->n_groups; i++)
        if (e->groups[i].wakefd < 0) {
            e->groups[i].wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (e->groups[i].wakefd < 0) return RT_ESYS;
        }
    e->until = until_ns;
    e->clock = clock;
    atomic_store(&e->stop, 0);
    atomic_store(&e->busy, 1);
    if (pthread_create(&e->thread, NULL, engine_thread, e) != 0) {
        atomic_store(&e->busy, 0);
        return RT_ESYS;
    }
    e->thread_live = 1;
    return RT_OK;
}

int rt_engine_running(const rt_engine *e) { return atomic_load(&((rt_engine *)e)->busy) != 0; }

static int join(rt_engine *e) {
    if (!e->thread_live) return RT_OK;
    pthread_join(e->thread, NULL);
    e->thread_live = 0;
    apply_due(e);
    return RT_OK;
}

int rt_engine_wait(rt_engine *e, int timeout_ms) {
    if (!e->thread_live) return RT_OK;
    pthread_mutex_lock(&e->mu);
    if (timeout_ms >= 0) {
        uint64_t wake = mono_ns() + (uint64_t)timeout_ms * 1000000u;
        struct timespec ts = {(time_t)(wake / 1000000000u), (long)(wake % 1000000000u)};
        while (atomic_load(&e->busy))
            if (pthread_cond_timedwait(&e->cv, &e->mu, &ts) == ETIMEDOUT) break;
    } else {
        while (atomic_load(&e->busy)) pthread_cond_wait(&e->cv, &e->mu);
    }
    int still = atomic_load(&e->busy);
    pthread_mutex_unlock(&e->mu);
    if (still) return RT_ESTATE;
    return join(e);
}

int rt_engine_stop(rt_engine *e) {
    if (!e->thread_live) return RT_OK;
    pthread_mutex_lock(&e->mu);
    atomic_store(&e->stop, 1);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    wake(e);
    return join(e);
}

/* ---------------------------------------------------------------- control */
int rt_cell_param(const rt_engine *e, int node, const char *name) {
    rt_node *n = node_at(e, node);
    if (!n) return RT_ERANGE;
    if (!n->ops->params || !name) return RT_ENOPARAM;
    for (int i = 0; n->ops->params[i]; i++)
        if (strcmp(n->ops->params[i], name) == 0) return i;
    return RT_ENOPARAM;
}

static int param_ok(const rt_node *n, int param) {
    if (!n->ops->params || !n->ops->control || param < 0) return 0;
    for (int i = 0; n->ops->params[i]; i++)
        if (i == param) return 1;
    return 0;
}

/* Hand change c to the group that owns its node (the engine runs): under mu, its order taken there. */
static int post(rt_engine *e, command_t c) {
    group_t *g = e->nodes[c.node]->sh->g;
    c.order = e->order++;
    int rc = cmd_insert(&g->inbox, c);
    if (rc == RT_OK) {
        atomic_store_explicit(&g->inbox_n, (int)g->inbox.n, memory_order_release);
        atomic_fetch_add(&e->posted, 1);
    }
    return rc;
}

/* A change while the engine is idle: applied now, or kept for its time (by its node's group once
 * sealed). */
static int keep_or_apply(rt_engine *e, command_t c) {
    rt_node *n = e->nodes[c.node];
    uint64_t now = n->sh ? atomic_load(&n->sh->g->now) : atomic_load(&e->now);
    c.order = e->order++;
    if (c.at > now) return cmd_insert(n->sh && !VSPLIT(e) ? &n->sh->g->pending : &e->pending, c);
    return apply(e, &c, now);
}

int rt_cell_control(rt_engine *e, int node, int param, double value, uint64_t at_ns) {
    rt_node *n = node_at(e, node);
    if (!n) return RT_ERANGE;
    if (!param_ok(n, param)) return RT_ENOPARAM;
    command_t c = {at_ns, 0, node, param, value};
    if (atomic_load(&e->busy)) {
        pthread_mutex_lock(&e->mu);
        int rc = post(e, c);
        group_t *g = n->sh->g;  /* read under mu: rebalancing moves regions between groups there */
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
        wake_group(g);
        return rc;
    }
    return keep_or_apply(e, c);
}

int rt_cell_control_many(rt_engine *e, const rt_change *changes, int n, uint64_t at_ns) {
    if (n < 0 || (n && !changes)) return RT_EINVAL;
    for (int i = 0; i < n; i++) {
        rt_node *x = node_at(e, changes[i].node);
        if (!x) return RT_ERANGE;
        if (!param_ok(x, changes[i].param)) return RT_ENOPARAM;
    }
    int rc = RT_OK;
    if (atomic_load(&e->busy)) {  /* one hand-over: each group takes all of its own in one drain */
        /* the groups to wake, read under mu: rebalancing moves regions between groups there */
        uint8_t *to = calloc((size_t)(e->n_groups > 0 ? e->n_groups : 1), 1);
        pthread_mutex_lock(&e->mu);
        for (int i = 0; i < n && rc == RT_OK; i++) {
            rc = post(e, (command_t){at_ns, 0, changes[i].node, changes[i].param, changes[i].value});
            if (to) to[e->nodes[changes[i].node]->sh->g->idx] = 1;
        }
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
        for (int i = 0; i < e->n_groups; i++)
            if (!to || to[i]) wake_group(&e->groups[i]);
        free(to);
        return rc;
    }
    for (int i = 0; i < n && rc >= 0; i++)
        rc = keep_or_apply(e, (command_t){at_ns, 0, changes[i].node, changes[i].param, changes[i].value});
    return rc < 0 ? rc : RT_OK;
}

/* ---------------------------------------------------------------- engine threads */
#define RT_MAX_THREADS_ 256

int rt_engine_set_threads(rt_engine *e, int n, const int *cpus) {
    rt_clear_error();
    if (e->shards || atomic_load(&e->busy)) {
        rt_set_error("the thread count is fixed once time has run");
        return RT_ESTATE;
    }
    if (n < 1 || n > RT_MAX_THREADS_) {
        rt_set_error("%d threads: between 1 and %d", n, RT_MAX_THREADS_);
        return RT_EINVAL;
    }
    int *copy = NULL;
    if (cpus) {
        cpu_set_t allowed;
        if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return RT_ESYS;
        for (int i = 0; i < n; i++) {
            if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE || !CPU_ISSET(cpus[i], &allowed)) {
                rt_set_error("core %d is not one this process may run on", cpus[i]);
                return RT_EINVAL;
            }
            for (int k = 0; k < i; k++)
                if (cpus[k] == cpus[i]) {
                    rt_set_error("core %d is given twice: one thread per core", cpus[i]);
                    return RT_EINVAL;
                }
        }
        copy = malloc((size_t)n * sizeof *copy);
        if (!copy) return RT_ENOMEM;
        memcpy(copy, cpus, (size_t)n * sizeof *copy);
    }
    free(e->cpus);
    e->cpus = copy;
    e->n_threads = n;
    return RT_OK;
}

int rt_engine_threads(const rt_engine *e) { return e->shards ? e->n_groups : e->n_threads; }

int rt_engine_thread_stats(const rt_engine *e, int i, rt_thread_stats *out) {
    if (!out || i < 0 || i >= rt_engine_threads(e)) return RT_ERANGE;
    memset(out, 0, sizeof *out);
    out->cpu = e->cpus ? e->cpus[i] : -1;
    uint64_t t0 = atomic_load(&((rt_engine *)e)->wall0_ns);
    out->wall_ns = atomic_load(&((rt_engine *)e)->wall_ns) + (t0 ? mono_ns() - t0 : 0);
    if (!e->shards) return RT_OK;
    group_t *g = &e->groups[i];
    if (e->n_cuts) pthread_mutex_lock(&((rt_engine *)e)->mu);  /* rebalancing may move regions meanwhile */
    out->shards = g->n_shards;
    out->nodes = g->n_nodes;
    out->busy_ns = atomic_load(&g->busy_ns);
    out->regions = g->n_split;
    out->rebalances = e->rebalances;
    for (int k = 0; k < g->n_shards; k++) {
        out->events += __atomic_load_n(&g->shards[k]->events, __ATOMIC_RELAXED);
        out->packets += __atomic_load_n(&g->shards[k]->packets, __ATOMIC_RELAXED);
    }
    if (e->n_cuts) pthread_mutex_unlock(&((rt_engine *)e)->mu);
    return RT_OK;
}

/* ---------------------------------------------------------------- observation */
/* Copy `size` bytes of shard-owned data consistently: retry while the loop is inside a batch. */
static void snapshot(const shard_t *s, void *dst, const void *src, size_t size) {
    if (!s) { memcpy(dst, src, size); return; }
    shard_t *sh = (shard_t *)s;
    atomic_fetch_add(&sh->readers, 1);
    for (;;) {
        uint64_t g1 = atomic_load_explicit(&sh->gen, memory_order_acquire);
        if (g1 & 1) { sched_yield(); continue; }
        const uint64_t *from = src;
        uint64_t *to = dst;
        for (size_t i = 0; i < size / sizeof(uint64_t); i++)  /* acquire: the check below cannot move up */
            to[i] = __atomic_load_n(&from[i], __ATOMIC_ACQUIRE);
        if (atomic_load_explicit(&sh->gen, memory_order_relaxed) == g1) break;
    }
    atomic_fetch_sub(&sh->readers, 1);
}

int rt_node_counters(const rt_engine *e, int node, rt_counters *out) {
    rt_node *n = node_at(e, node);
    if (!n || !out) return RT_ERANGE;
    snapshot(n->sh, out, &n->c, sizeof *out);
    for (int i = 0; i < e->n_cuts; i++)  /* a real run's hand-offs lost to a full ring: they reached it */
        if (e->cuts[i].dst == n) {
            uint64_t lost = __atomic_load_n(&e->cuts[i].ring_full, __ATOMIC_RELAXED);
            uint64_t bytes = __atomic_load_n(&e->cuts[i].ring_full_bytes, __ATOMIC_RELAXED);
            out->in_packets += lost;
            out->in_bytes += bytes;
            out->dropped_packets += lost;
            out->dropped_bytes += bytes;
            out->dropped[RT_DROP_HANDOFF] += lost;
        }
    return RT_OK;
}

/* The shard a flow's received packets are counted in (its destination's: with cuts, another region
 * than the flow's own may count them; its sent packets are counters read one by one). */
static shard_t *flow_rx_shard(const rt_engine *e, const flow_t *f) { return e->nodes[f->dst]->sh; }

int rt_flow_stats_get(const rt_engine *e, int flow, rt_flow_stats *out) {
    if (flow < 0 || flow >= e->n_flows || !out) return RT_ERANGE;
    rt_node *n = e->nodes[e->flow_nodes[flow]];
    snapshot(flow_rx_shard(e, (flow_t *)n->state), out, &((flow_t *)n->state)->st, sizeof *out);
    return RT_OK;
}

int rt_flow_delay_hist(const rt_engine *e, int flow, rt_flow_stats *stats, uint64_t *hist) {
    if (flow < 0 || flow >= e->n_flows || !hist) return RT_ERANGE;
    rt_node *n = e->nodes[e->flow_nodes[flow]];
    const flow_t *f = (const flow_t *)n->state;
    _Static_assert(offsetof(flow_t, hist) == offsetof(flow_t, st) + sizeof(rt_flow_stats), "st, hist adjacent");
    size_t size = sizeof f->st + sizeof f->hist;
    unsigned char *both = malloc(size);  /* 30 KiB: not on the caller's stack */
    if (!both) return RT_ENOMEM;
    snapshot(flow_rx_shard(e, f), both, &f->st, size);
    if (stats) memcpy(stats, both, sizeof f->st);
    memcpy(hist, both + sizeof f->st, sizeof f->hist);
    free(both);
    return RT_OK;
}

int rt_flow_keep_samples(rt_engine *e, int flow, int on) {
    if (flow < 0 || flow >= e->n_flows) return RT_ERANGE;
    if (e->shards || atomic_load(&e->busy)) return RT_ESTATE;
    flow_of(e, flow)->keep_samples = on != 0;
    return RT_OK;
}

int rt_flow_start_at(rt_engine *e, int flow, uint64_t at_ns) {
    if (flow < 0 || flow >= e->n_flows) return RT_ERANGE;
    if (e->shards || atomic_load(&e->busy)) return RT_ESTATE;
    flow_t *f = flow_of(e, flow);
    if (at_ns < f->t0) return RT_EINVAL;  /* not before it was added */
    f->next_t = f->t0 = at_ns;
    return RT_OK;
}

uint64_t rt_flow_samples(const rt_engine *e, int flow, uint64_t *delays, uint64_t *seqs, uint64_t cap) {
    if (flow < 0 || flow >= e->n_flows || atomic_load(&((rt_engine *)e)->busy)) return 0;
    const flow_t *f = flow_of((rt_engine *)e, flow);
    uint64_t n = f->n_delays < cap ? f->n_delays : cap;
    if (delays) memcpy(delays, f->delays, n * sizeof *delays);
    if (seqs) memcpy(seqs, f->seqs, n * sizeof *seqs);
    return n;
}

int rt_cell_read(const rt_engine *e, int node, int param, double *value) {
    rt_node *n = node_at(e, node);
    if (!n || !value) return RT_ERANGE;
    if (!n->ops->read || !param_ok(n, param)) return RT_ENOPARAM;
    if (n->sh) atomic_fetch_add(&n->sh->readers, 1);
    for (;;) {  /* same sequence lock as the counters */
        uint64_t g1 = n->sh ? atomic_load_explicit(&n->sh->gen, memory_order_acquire) : 0;
        if (g1 & 1) { sched_yield(); continue; }
        *value = n->ops->read(n->state, param, n->sh ? atomic_load(&n->sh->g->now) : atomic_load(&((rt_engine *)e)->now));
        if (!n->sh || atomic_load_explicit(&n->sh->gen, memory_order_seq_cst) == g1) break;
    }
    if (n->sh) atomic_fetch_sub(&n->sh->readers, 1);
    return RT_OK;
}

/* ---------------------------------------------------------------- step functions (traces) */
double rt_steps_at(rt_steps *s, uint64_t t) {
    uint64_t rel = t > s->base ? t - s->base : 0;
    if (s->loop && rel >= s->period) {  /* [loop_at, period) repeats */
        uint64_t cycle = s->period - s->loop_at, k = (rel - s->loop_at) / cycle;
        s->base += k * cycle;
        rel -= k * cycle;
        s->i = 0;
    }
    if (rel < s->at[s->i]) s->i = 0;  /* time went back within a period: cannot for one cell, but be safe */
    while (s->i + 1 < s->len && s->at[s->i + 1] <= rel) s->i++;
    return s->value[s->i];
}

uint64_t rt_steps_next(const rt_steps *s, uint64_t t) {
    if (!s->len) return RT_NEVER;
    uint64_t base = s->base, rel = t > base ? t - base : 0;
    if (s->loop && s->period && rel >= s->period) {
        uint64_t cycle = s->period - s->loop_at, k = (rel - s->loop_at) / cycle;
        base += k * cycle;
        rel -= k * cycle;
    }
    uint32_t lo = 0, hi = s->len;  /* the first step strictly after rel */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->at[mid] <= rel) lo = mid + 1; else hi = mid;
    }
    if (lo < s->len) return base + s->at[lo];
    return s->loop && s->period ? base + s->period : RT_NEVER;
}

void rt_steps_free(rt_steps *s) {
    free(s->at);
    free(s->value);
    s->at = NULL;
    s->value = NULL;
}
