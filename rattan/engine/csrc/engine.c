/* The Rattan packet engine: packet pool, event scheduler, cells, virtual time.
 *
 * Every packet carries the logical time at which it reached its current
 * cell; a cell computes departures from that time, never from "now", so timer
 * lateness cannot accumulate along a chain. One binary heap orders the next
 * event of every cell (and of every synthetic flow) by (time, sequence), which
 * makes runs deterministic. Packets come from a pool that grows by chunks;
 * nothing is allocated per packet.
 */
#include "rattan_engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- random */
typedef struct { uint64_t s[4]; } rng_t;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(rng_t *r) { /* xoshiro256** */
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

/* uniform in [0, 1) with 53 random bits */
static inline double rng_unit(rng_t *r) { return (rng_next(r) >> 11) * 0x1.0p-53; }

static double rng_normal(rng_t *r) { /* Marsaglia polar method, one value per call */
    double u, v, s;
    do {
        u = 2.0 * rng_unit(r) - 1.0;
        v = 2.0 * rng_unit(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s);
}

static double rng_exponential(rng_t *r) { return -log1p(-rng_unit(r)); }

/* ---------------------------------------------------------------- packets */
typedef struct rt_pkt {
    struct rt_pkt *next;
    uint64_t t;        /* logical arrival time at the current cell */
    uint64_t depart;   /* planned departure from the current cell */
    uint64_t born;     /* creation time, for one-way delay */
    uint64_t fseq;     /* sequence number within its flow */
    uint64_t seq;      /* tie-break for equal departures */
    uint32_t size;
    uint32_t dst_addr;  /* IPv4 destination, host order (routers match on it) */
    int32_t flow;
} rt_pkt;

#define POOL_CHUNK 4096

typedef struct {
    rt_pkt *free;
    rt_pkt **chunks;
    size_t n_chunks, cap_chunks;
} pool_t;

static rt_pkt *pool_get(pool_t *p) {
    if (!p->free) {
        if (p->n_chunks == p->cap_chunks) {
            size_t cap = p->cap_chunks ? p->cap_chunks * 2 : 16;
            rt_pkt **c = realloc(p->chunks, cap * sizeof *c);
            if (!c) return NULL;
            p->chunks = c;
            p->cap_chunks = cap;
        }
        rt_pkt *chunk = malloc(POOL_CHUNK * sizeof *chunk);
        if (!chunk) return NULL;
        p->chunks[p->n_chunks++] = chunk;
        for (size_t i = 0; i < POOL_CHUNK; i++) {
            chunk[i].next = p->free;
            p->free = &chunk[i];
        }
    }
    rt_pkt *k = p->free;
    p->free = k->next;
    k->next = NULL;
    return k;
}

static inline void pool_put(pool_t *p, rt_pkt *k) { k->next = p->free; p->free = k; }

static void pool_free(pool_t *p) {
    for (size_t i = 0; i < p->n_chunks; i++) free(p->chunks[i]);
    free(p->chunks);
}

/* FIFO of packets */
typedef struct { rt_pkt *head, *tail; uint64_t packets, bytes; } fifo_t;

static inline void fifo_push(fifo_t *q, rt_pkt *k) {
    k->next = NULL;
    if (q->tail) q->tail->next = k; else q->head = k;
    q->tail = k;
    q->packets++;
    q->bytes += k->size;
}

static inline rt_pkt *fifo_pop(fifo_t *q) {
    rt_pkt *k = q->head;
    if (!k) return NULL;
    q->head = k->next;
    if (!q->head) q->tail = NULL;
    q->packets--;
    q->bytes -= k->size;
    k->next = NULL;
    return k;
}

/* Min-heap of packets by (depart, seq): the delay cell when reordering is allowed. */
typedef struct { rt_pkt **a; size_t n, cap; uint64_t bytes; } pheap_t;

static inline int pkt_before(const rt_pkt *x, const rt_pkt *y) {
    return x->depart < y->depart || (x->depart == y->depart && x->seq < y->seq);
}

static int pheap_push(pheap_t *h, rt_pkt *k) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        rt_pkt **a = realloc(h->a, cap * sizeof *a);
        if (!a) return RT_ENOMEM;
        h->a = a;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!pkt_before(k, h->a[p])) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = k;
    h->bytes += k->size;
    return RT_OK;
}

static rt_pkt *pheap_pop(pheap_t *h) {
    if (!h->n) return NULL;
    rt_pkt *top = h->a[0], *last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && pkt_before(h->a[c + 1], h->a[c])) c++;
        if (!pkt_before(h->a[c], last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n) h->a[i] = last;
    h->bytes -= top->size;
    return top;
}

/* ---------------------------------------------------------------- nodes */
enum { K_ENDPOINT, K_PASS, K_BW, K_DELAY, K_LOSS, K_FLOW, K_TBF, K_DUPLICATE, K_CORRUPT, K_ROUTER,
       K_OUTAGE };

#define MTU 1500

typedef struct {
    rt_bw_config cfg;
    fifo_t q;
    uint64_t head_finish;    /* when the head packet's last bit leaves (RT_NEVER at rate 0) */
    uint64_t head_start;
    uint64_t frac;           /* remainder of bits*1e9/rate carried to the next packet */
    uint64_t busy_until;     /* when the link is next free (after head_finish) */
    /* CoDel (RFC 8289) */
    uint64_t first_above, drop_next;
    uint32_t count, lastcount;
    int dropping;
    /* PIE (RFC 8033) */
    double pie_p;
    uint64_t pie_qdelay_old, pie_last_update;
    /* RED */
    double red_avg;
    int64_t red_count;
    uint64_t idle_since;
    /* Mahimahi trace */
    uint64_t *trace;
    uint64_t trace_base;     /* start of the current pass through the trace */
    uint32_t trace_idx;      /* current opportunity */
    int64_t trace_budget;    /* bytes left in it */
    int trace_started;
} bw_t;

typedef struct {
    rt_token_bucket_config cfg;
    double tokens, ptokens;
    uint64_t last;
    fifo_t q;
} tbf_t;

typedef struct { double rate; } prob_t;

typedef struct {
    rt_route *routes;        /* sorted by prefix length, longest first */
    uint32_t n;
    int default_port;
} router_t;

typedef struct {
    uint64_t up, down;       /* periods; both 0: only rt_outage_set_down changes the state */
    int start_down;
    uint64_t t0;
} outage_t;

typedef struct {
    rt_delay_config cfg;
    fifo_t fifo;             /* without reordering: departures are non-decreasing */
    pheap_t heap;            /* with reordering */
    uint64_t last_depart;
    double last_jitter;
} delay_t;

typedef struct {
    rt_loss_config cfg;
    double *pattern;
    uint32_t run;            /* consecutive losses so far (pattern) */
    int bad;                 /* Gilbert-Elliott state */
} loss_t;

typedef struct {
    int fid, src, dst, kind;
    uint64_t rate_bps;
    uint32_t size;
    uint64_t n;              /* packets generated */
    uint64_t next_t;
    rt_flow_stats st;
    uint64_t *delays;        /* one-way delay of each received packet */
    uint64_t *seqs;          /* and its sequence number in the flow */
    uint64_t n_delays, cap_delays;
} flow_t;

typedef struct {
    /* hot: read for every packet */
    int kind;
    int n_out;
    int out1;                /* destination of output 0 (single-output nodes need no other lookup) */
    int *out;                /* destination node per output port, -1 if none; out[0] == out1 */
    uint64_t sched_t;        /* time of its entry in the event heap, RT_NEVER if none */
    rng_t rng;
    rt_counters c;
    uint32_t addr;           /* endpoints: IPv4 address, host order */
    union { bw_t bw; delay_t delay; loss_t loss; flow_t flow; tbf_t tbf; prob_t prob; router_t router;
            outage_t outage; } u;
} node_t;

typedef struct { uint64_t t, seq; int node; } event_t;

struct rt_engine {
    uint64_t seed;
    uint64_t now;
    uint64_t seq;
    pool_t pool;
    node_t *nodes;
    int n_nodes, cap_nodes;
    int *flow_nodes;
    int n_flows, cap_flows;
    event_t *ev;
    size_t n_ev, cap_ev;
};

int rt_abi_version(void) { return RT_ABI_VERSION; }

rt_engine *rt_engine_new(uint64_t seed) {
    rt_engine *e = calloc(1, sizeof *e);
    if (e) e->seed = seed;
    return e;
}

void rt_engine_free(rt_engine *e) {
    if (!e) return;
    for (int i = 0; i < e->n_nodes; i++) {
        node_t *n = &e->nodes[i];
        free(n->out);
        if (n->kind == K_DELAY) free(n->u.delay.heap.a);
        if (n->kind == K_LOSS) free(n->u.loss.pattern);
        if (n->kind == K_BW) free(n->u.bw.trace);
        if (n->kind == K_ROUTER) free(n->u.router.routes);
        if (n->kind == K_FLOW) { free(n->u.flow.delays); free(n->u.flow.seqs); }
    }
    free(e->nodes);
    free(e->flow_nodes);
    free(e->ev);
    pool_free(&e->pool);
    free(e);
}

static int add_node(rt_engine *e, int kind, int n_out) {
    if (e->n_nodes == e->cap_nodes) {
        int cap = e->cap_nodes ? e->cap_nodes * 2 : 16;
        node_t *a = realloc(e->nodes, (size_t)cap * sizeof *a);
        if (!a) return RT_ENOMEM;
        e->nodes = a;
        e->cap_nodes = cap;
    }
    int id = e->n_nodes;
    node_t *n = &e->nodes[id];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->sched_t = RT_NEVER;
    n->n_out = n_out;
    if (n_out > 0) {
        n->out = malloc((size_t)n_out * sizeof *n->out);
        if (!n->out) return RT_ENOMEM;
        for (int i = 0; i < n_out; i++) n->out[i] = -1;
        n->out1 = -1;
    }
    rng_seed(&n->rng, e->seed, (uint64_t)id + 1);
    e->n_nodes++;
    return id;
}

/* ---------------------------------------------------------------- event heap */
/* The event heap is 4-ary: half the depth of a binary heap, and a node's children share a cache line. */
#define EV_ARITY 4

static inline int ev_before(const event_t *a, const event_t *b) {
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static int ev_push(rt_engine *e, uint64_t t, int node) {
    if (e->n_ev == e->cap_ev) {
        size_t cap = e->cap_ev ? e->cap_ev * 2 : 64;
        event_t *a = realloc(e->ev, cap * sizeof *a);
        if (!a) return RT_ENOMEM;
        e->ev = a;
        e->cap_ev = cap;
    }
    event_t x = {t, e->seq++, node};
    size_t i = e->n_ev++;
    while (i > 0) {
        size_t p = (i - 1) / EV_ARITY;
        if (!ev_before(&x, &e->ev[p])) break;
        e->ev[i] = e->ev[p];
        i = p;
    }
    e->ev[i] = x;
    return RT_OK;
}

static event_t ev_pop(rt_engine *e) {
    event_t top = e->ev[0], last = e->ev[--e->n_ev];
    size_t i = 0, n = e->n_ev;
    for (;;) {
        size_t c = EV_ARITY * i + 1;
        if (c >= n) break;
        size_t best = c, end = c + EV_ARITY < n ? c + EV_ARITY : n;
        for (size_t j = c + 1; j < end; j++)
            if (ev_before(&e->ev[j], &e->ev[best])) best = j;
        if (!ev_before(&e->ev[best], &last)) break;
        e->ev[i] = e->ev[best];
        i = best;
    }
    if (n) e->ev[i] = last;
    return top;
}

static uint64_t next_event(rt_engine *e, node_t *n);

/* (Re)schedule a node whose next event may have moved earlier; stale heap entries are skipped on pop. */
static void reschedule(rt_engine *e, int id) {
    node_t *n = &e->nodes[id];
    uint64_t t = next_event(e, n);
    if (t < n->sched_t) {
        n->sched_t = t;
        ev_push(e, t, id);
    }
}

/* ---------------------------------------------------------------- forwarding */
/* A cell starts (+1) or stops (-1) holding a packet: its `queued` counters follow. */
static inline void held(node_t *n, const rt_pkt *k, int sign) {
    n->c.queued_packets += (uint64_t)(int64_t)sign;
    n->c.queued_bytes += (uint64_t)((int64_t)sign * k->size);
}

static void enqueue(rt_engine *e, int id, rt_pkt *k, uint64_t t);

static inline void drop(rt_engine *e, node_t *n, rt_pkt *k, int reason) {
    n->c.dropped_packets++;
    n->c.dropped_bytes += k->size;
    n->c.dropped[reason]++;
    pool_put(&e->pool, k);
}

/* Send a packet out of `port` of node `id` at logical time t. */
static void emit(rt_engine *e, int id, int port, rt_pkt *k, uint64_t t) {
    node_t *n = &e->nodes[id];
    int dst = port == 0 && n->n_out > 0 ? n->out1 : (port >= 0 && port < n->n_out) ? n->out[port] : -1;
    if (dst < 0) {
        drop(e, n, k, RT_DROP_NO_ROUTE);
        return;
    }
    n->c.out_packets++;
    n->c.out_bytes += k->size;
    enqueue(e, dst, k, t);
}

static uint64_t tx_time(bw_t *b, uint32_t size, uint64_t *frac) {
    if (b->cfg.rate_bps == 0) return RT_NEVER;
    unsigned __int128 num = (unsigned __int128)(size + b->cfg.overhead_bytes) * 8u * 1000000000u + *frac;
    uint64_t ns = (uint64_t)(num / b->cfg.rate_bps);
    *frac = (uint64_t)(num % b->cfg.rate_bps);
    return ns;
}

/* The next Mahimahi opportunity at or after t; the current one is reused while it has budget
 * left, unless `skip`. Each opportunity carries `trace_mtu` bytes. */
static uint64_t trace_seek(bw_t *b, uint64_t t, int skip) {
    const rt_bw_config *c = &b->cfg;
    uint32_t i = 0;
    if (b->trace_started) {
        uint64_t cur = b->trace_base + b->trace[b->trace_idx];
        if (!skip && cur >= t && b->trace_budget > 0) return cur;
        i = b->trace_idx + 1;
    }
    for (;;) {
        if (i >= c->trace_len) {
            if (!c->trace_loop) return RT_NEVER;
            b->trace_base += c->trace_period_ns;
            i = 0;
        }
        uint64_t rel = t > b->trace_base ? t - b->trace_base : 0;
        if (c->trace_loop && rel >= c->trace_period_ns) {
            /* idle for whole periods: jump over them */
            b->trace_base += (rel / c->trace_period_ns) * c->trace_period_ns;
            rel = t - b->trace_base;
            i = 0;
        }
        uint32_t lo = i, hi = c->trace_len;  /* first opportunity >= rel, from i */
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (b->trace[mid] < rel) lo = mid + 1; else hi = mid;
        }
        if (lo < c->trace_len) {
            b->trace_started = 1;
            b->trace_idx = lo;
            b->trace_budget = c->trace_mtu;
            return b->trace_base + b->trace[lo];
        }
        i = c->trace_len;
    }
}

static inline uint64_t control_law(uint64_t t, uint64_t interval, uint32_t count) {
    return t + (uint64_t)((double)interval / sqrt((double)count));
}

/* CoDel's decision for the packet about to start transmitting at `now` (RFC 8289, dequeue side). */
static int codel_drop(bw_t *b, rt_pkt *k, uint64_t now) {
    uint64_t target = b->cfg.target_ns, interval = b->cfg.interval_ns;
    int ok = 0;
    if (now - k->t < target || b->q.bytes - k->size <= MTU) {
        b->first_above = 0;
    } else if (b->first_above == 0) {
        b->first_above = now + interval;
    } else if (now >= b->first_above) {
        ok = 1;
    }
    if (b->dropping) {
        if (!ok) { b->dropping = 0; return 0; }
        if (now >= b->drop_next) {
            b->count++;
            b->drop_next = control_law(b->drop_next, interval, b->count);
            return 1;
        }
        return 0;
    }
    if (ok) {
        uint32_t delta = b->count - b->lastcount;
        /* signed: drop_next may still lie ahead of now when dropping resumes soon after it stopped */
        b->count = (delta > 1 && (int64_t)(now - b->drop_next) < (int64_t)(16 * interval)) ? delta : 1;
        b->drop_next = control_law(now, interval, b->count);
        b->lastcount = b->count;
        b->dropping = 1;
        return 1;
    }
    return 0;
}

static void drop(rt_engine *e, node_t *n, rt_pkt *k, int reason);

/* The bw cell's link is free from `start`: pick the next packet (CoDel may drop some) and time it. */
static void bw_next(rt_engine *e, int id, uint64_t start) {
    node_t *n = &e->nodes[id];
    bw_t *b = &n->u.bw;
    for (;;) {
        rt_pkt *h = b->q.head;
        if (!h) { b->idle_since = start; return; }
        uint64_t at = start < h->t ? h->t : start;
        if (b->cfg.aqm == RT_AQM_CODEL && codel_drop(b, h, at)) {
            fifo_pop(&b->q);
            held(n, h, -1);
            drop(e, n, h, RT_DROP_AQM);
            continue;
        }
        if (start < h->t) b->frac = 0;
        b->head_start = at;
        if (b->trace) {
            uint32_t need = h->size + b->cfg.overhead_bytes;
            uint64_t t = trace_seek(b, at, 0);
            if (t != RT_NEVER && b->trace_budget < (int64_t)need && b->trace_budget < (int64_t)b->cfg.trace_mtu)
                t = trace_seek(b, at, 1);  /* this opportunity is used up: the next one */
            if (t != RT_NEVER) b->trace_budget -= need;
            b->head_finish = t;
        } else {
            uint64_t d = tx_time(b, h->size, &b->frac);
            b->head_finish = d == RT_NEVER ? RT_NEVER : at + d;
        }
        return;
    }
}

/* PIE's drop probability, brought up to date at t (RFC 8033, updated every t_update). */
static void pie_update(bw_t *b, uint64_t t) {
    uint64_t tu = b->cfg.interval_ns;
    if (b->pie_last_update == 0) b->pie_last_update = t;
    uint32_t rounds = 0;
    while (t >= b->pie_last_update + tu && rounds++ < 10000) {
        uint64_t qdelay = b->cfg.rate_bps ? (uint64_t)((double)b->q.bytes * 8e9 / (double)b->cfg.rate_bps) : 0;
        double delta = 0.125 * ((double)qdelay - (double)b->cfg.target_ns) / 1e9 +
                       1.25 * ((double)qdelay - (double)b->pie_qdelay_old) / 1e9;
        double p = b->pie_p;
        if (p < 0.000001) delta /= 2048; else if (p < 0.00001) delta /= 512;
        else if (p < 0.0001) delta /= 128; else if (p < 0.001) delta /= 32;
        else if (p < 0.01) delta /= 8; else if (p < 0.1) delta /= 2;
        p += delta;
        if (qdelay == 0 && b->pie_qdelay_old == 0) p *= 0.98;
        b->pie_p = p < 0 ? 0 : p > 1 ? 1 : p;
        b->pie_qdelay_old = qdelay;
        b->pie_last_update += tu;
    }
    if (rounds >= 10000) b->pie_last_update = t;
}

/* Enqueue-side AQM (PIE, RED): true if the arriving packet is dropped. */
static int aqm_enqueue_drop(node_t *n, rt_pkt *k, uint64_t t) {
    bw_t *b = &n->u.bw;
    if (b->cfg.aqm == RT_AQM_PIE) {
        pie_update(b, t);
        if ((b->pie_qdelay_old < b->cfg.target_ns / 2 && b->pie_p < 0.2) || b->q.bytes <= 2 * MTU) return 0;
        return rng_unit(&n->rng) < b->pie_p;
    }
    if (b->cfg.aqm == RT_AQM_RED) {
        const double w = 0.002;
        if (!b->q.head && b->cfg.rate_bps && t > b->idle_since) {
            double m = (double)(t - b->idle_since) * (double)b->cfg.rate_bps / 8e9 / MTU;
            b->red_avg *= pow(1 - w, m);
        }
        b->red_avg = (1 - w) * b->red_avg + w * (double)b->q.bytes;
        double lo = (double)b->cfg.red_min_bytes, hi = (double)b->cfg.red_max_bytes;
        if (b->red_avg < lo) { b->red_count = -1; return 0; }
        if (b->red_avg >= hi) { b->red_count = 0; return 1; }
        b->red_count++;
        double pb = b->cfg.red_max_p * (b->red_avg - lo) / (hi - lo);
        double pa = b->red_count * pb >= 1 ? 1.0 : pb / (1 - b->red_count * pb);
        if (rng_unit(&n->rng) < pa) { b->red_count = 0; return 1; }
        return 0;
    }
    (void)k;
    return 0;
}

static int bw_over_limit(bw_t *b, uint32_t extra) {
    return (b->cfg.limit_packets && b->q.packets + 1 > b->cfg.limit_packets) ||
           (b->cfg.limit_bytes && b->q.bytes + extra > b->cfg.limit_bytes);
}

static double delay_jitter(node_t *n) {
    delay_t *d = &n->u.delay;
    double j = (double)d->cfg.jitter_ns, x;
    if (j == 0) return 0;
    switch (d->cfg.distribution) {
    case RT_DIST_NORMAL: x = rng_normal(&n->rng) * j; break;
    case RT_DIST_PARETO: {
        /* Pareto with shape 3, shifted to mean 0 and scaled to standard deviation j. */
        double a = 3.0, xm = 1.0;
        double v = xm / pow(1.0 - rng_unit(&n->rng), 1.0 / a);
        double mean = a * xm / (a - 1), sd = xm / (a - 1) * sqrt(a / (a - 2));
        x = (v - mean) / sd * j;
        break;
    }
    case RT_DIST_PARETONORMAL: {
        /* netem's mix: 25 % Pareto, 75 % normal, both with standard deviation j. */
        if (rng_unit(&n->rng) < 0.25) {
            double a = 3.0, v = 1.0 / pow(1.0 - rng_unit(&n->rng), 1.0 / a);
            double mean = 1.5, sd = 0.5 * sqrt(3.0);
            x = (v - mean) / sd * j;
        } else {
            x = rng_normal(&n->rng) * j;
        }
        break;
    }
    default: x = (2.0 * rng_unit(&n->rng) - 1.0) * j; break;
    }
    double c = d->cfg.correlation;
    if (c > 0) x = c * d->last_jitter + (1.0 - c) * x;
    d->last_jitter = x;
    return x;
}

static int loss_drops(node_t *n) {
    loss_t *l = &n->u.loss;
    double u = rng_unit(&n->rng);
    switch (l->cfg.model) {
    case RT_LOSS_GILBERT_ELLIOTT: {
        int lost = u < (l->bad ? l->cfg.h : l->cfg.k);
        double v = rng_unit(&n->rng);
        if (l->bad) { if (v < l->cfg.r) l->bad = 0; }
        else if (v < l->cfg.p) l->bad = 1;
        return lost;
    }
    case RT_LOSS_PATTERN: {
        uint32_t i = l->run < l->cfg.pattern_len ? l->run : l->cfg.pattern_len - 1;
        int lost = u < l->pattern[i];
        l->run = lost ? l->run + 1 : 0;
        return lost;
    }
    default:
        return u < l->cfg.rate;
    }
}

static void tbf_refill(tbf_t *b, uint64_t t) {
    if (t <= b->last) return;
    double dt = (double)(t - b->last);
    b->tokens += dt * (double)b->cfg.rate_bps / 8e9;
    if (b->tokens > (double)b->cfg.burst_bytes) b->tokens = (double)b->cfg.burst_bytes;
    if (b->cfg.peak_rate_bps) {
        b->ptokens += dt * (double)b->cfg.peak_rate_bps / 8e9;
        if (b->ptokens > (double)b->cfg.min_burst_bytes) b->ptokens = (double)b->cfg.min_burst_bytes;
    }
    b->last = t;
}

#define TOKEN_EPS 1e-6

static int tbf_conforms(const tbf_t *b, uint32_t size) {
    return b->tokens + TOKEN_EPS >= size && (!b->cfg.peak_rate_bps || b->ptokens + TOKEN_EPS >= size);
}

static void tbf_take(tbf_t *b, uint32_t size) {
    b->tokens -= size;
    if (b->cfg.peak_rate_bps) b->ptokens -= size;
}

/* When the shaper's head packet conforms (RT_NEVER if it never can). */
static uint64_t tbf_ready(const tbf_t *b) {
    if (!b->q.head) return RT_NEVER;
    double size = b->q.head->size, wait = 0;
    if (b->tokens + TOKEN_EPS < size) {
        if (!b->cfg.rate_bps) return RT_NEVER;
        wait = (size - b->tokens) * 8e9 / (double)b->cfg.rate_bps;
    }
    if (b->cfg.peak_rate_bps && b->ptokens + TOKEN_EPS < size) {
        double w = (size - b->ptokens) * 8e9 / (double)b->cfg.peak_rate_bps;
        if (w > wait) wait = w;
    }
    uint64_t t = b->last + (uint64_t)ceil(wait);
    uint64_t arrive = b->q.head->t;
    return t > arrive ? t : arrive;
}

static int route_port(const router_t *r, uint32_t addr) {
    for (uint32_t i = 0; i < r->n; i++)
        if ((addr & r->routes[i].mask) == r->routes[i].addr) return r->routes[i].port;
    return r->default_port;
}

static int outage_down(const outage_t *o, uint64_t t) {
    if (!o->up || !o->down) return o->start_down;
    uint64_t phase = (t - o->t0) % (o->up + o->down);
    return o->start_down ? phase < o->down : phase >= o->up;
}

static void flow_deliver(rt_engine *e, rt_pkt *k, uint64_t t) {
    if (k->flow < 0 || k->flow >= e->n_flows) return;
    flow_t *f = &e->nodes[e->flow_nodes[k->flow]].u.flow;
    f->st.received_packets++;
    f->st.received_bytes += k->size;
    if (f->n_delays == f->cap_delays) {
        uint64_t cap = f->cap_delays ? f->cap_delays * 2 : 1024;
        uint64_t *a = realloc(f->delays, cap * sizeof *a);
        if (!a) return;
        f->delays = a;
        uint64_t *b = realloc(f->seqs, cap * sizeof *b);
        if (!b) return;
        f->seqs = b;
        f->cap_delays = cap;
    }
    f->seqs[f->n_delays] = k->fseq;
    f->delays[f->n_delays++] = t - k->born;
}

static void enqueue(rt_engine *e, int id, rt_pkt *k, uint64_t t) {
    node_t *n = &e->nodes[id];
    n->c.in_packets++;
    n->c.in_bytes += k->size;
    k->t = t;
    switch (n->kind) {
    case K_ENDPOINT:
        n->c.out_packets++;   /* delivered to the endpoint's application */
        n->c.out_bytes += k->size;
        flow_deliver(e, k, t);
        pool_put(&e->pool, k);
        return;
    case K_PASS:
        emit(e, id, 0, k, t);
        return;
    case K_LOSS:
        if (loss_drops(n)) drop(e, n, k, RT_DROP_LOSS);
        else emit(e, id, 0, k, t);
        return;
    case K_DUPLICATE:
        if (rng_unit(&n->rng) < n->u.prob.rate) {
            rt_pkt *copy = pool_get(&e->pool);
            if (copy) {
                *copy = *k;
                copy->next = NULL;
                n->c.created_packets++;
                n->c.created_bytes += copy->size;
                emit(e, id, 0, k, t);
                emit(e, id, 0, copy, t);
                return;
            }
        }
        emit(e, id, 0, k, t);
        return;
    case K_CORRUPT:
        /* In virtual time packets have no payload: the corruption is counted (a real run flips a bit). */
        if (rng_unit(&n->rng) < n->u.prob.rate) n->c.modified_packets++;
        emit(e, id, 0, k, t);
        return;
    case K_ROUTER: {
        int port = route_port(&n->u.router, k->dst_addr);
        if (port < 0) drop(e, n, k, RT_DROP_NO_ROUTE);
        else emit(e, id, port, k, t);
        return;
    }
    case K_OUTAGE:
        if (outage_down(&n->u.outage, t)) drop(e, n, k, RT_DROP_OUTAGE);
        else emit(e, id, 0, k, t);
        return;
    case K_TBF: {
        tbf_t *b = &n->u.tbf;
        tbf_refill(b, t);
        if (k->size > b->cfg.burst_bytes || (b->cfg.peak_rate_bps && k->size > b->cfg.min_burst_bytes)) {
            drop(e, n, k, RT_DROP_POLICER);  /* can never conform */
            return;
        }
        if (b->cfg.limit_bytes == 0) {  /* policer */
            if (tbf_conforms(b, k->size)) { tbf_take(b, k->size); emit(e, id, 0, k, t); }
            else drop(e, n, k, RT_DROP_POLICER);
            return;
        }
        if (!b->q.head && tbf_conforms(b, k->size)) { tbf_take(b, k->size); emit(e, id, 0, k, t); return; }
        if (b->q.bytes + k->size > b->cfg.limit_bytes) { drop(e, n, k, RT_DROP_QUEUE_FULL); return; }
        fifo_push(&b->q, k);
        held(n, k, +1);
        reschedule(e, id);
        return;
    }
    case K_DELAY: {
        delay_t *d = &n->u.delay;
        double x = (double)d->cfg.delay_ns + delay_jitter(n);
        uint64_t dep = t + (x > 0 ? (uint64_t)llround(x) : 0);
        k->seq = e->seq++;
        if (d->cfg.reorder) {
            k->depart = dep;
            if (pheap_push(&d->heap, k) != RT_OK) { drop(e, n, k, RT_DROP_POOL); return; }
        } else {
            if (dep < d->last_depart) dep = d->last_depart;
            d->last_depart = dep;
            k->depart = dep;
            fifo_push(&d->fifo, k);
        }
        held(n, k, +1);
        reschedule(e, id);
        return;
    }
    case K_BW: {
        bw_t *b = &n->u.bw;
        if (bw_over_limit(b, k->size)) {
            if (b->cfg.queue_kind == RT_QUEUE_DROPHEAD && b->q.packets > 1) {
                /* drop the oldest packet that has not started transmitting */
                rt_pkt *head = b->q.head, *victim = head->next;
                head->next = victim->next;
                if (b->q.tail == victim) b->q.tail = head;
                b->q.packets--;
                b->q.bytes -= victim->size;
                held(n, victim, -1);
                drop(e, n, victim, RT_DROP_QUEUE_FULL);
                if (bw_over_limit(b, k->size)) { drop(e, n, k, RT_DROP_QUEUE_FULL); return; }
            } else {
                drop(e, n, k, RT_DROP_QUEUE_FULL);
                return;
            }
        }
        if (aqm_enqueue_drop(n, k, t)) { drop(e, n, k, RT_DROP_AQM); return; }
        int was_empty = b->q.head == NULL;
        fifo_push(&b->q, k);
        held(n, k, +1);
        if (was_empty) bw_next(e, id, b->busy_until > t ? b->busy_until : t);
        reschedule(e, id);
        return;
    }
    default:
        pool_put(&e->pool, k);
    }
}

static uint64_t next_event(rt_engine *e, node_t *n) {
    (void)e;
    switch (n->kind) {
    case K_BW: return n->u.bw.q.head ? n->u.bw.head_finish : RT_NEVER;
    case K_DELAY:
        if (n->u.delay.cfg.reorder) return n->u.delay.heap.n ? n->u.delay.heap.a[0]->depart : RT_NEVER;
        return n->u.delay.fifo.head ? n->u.delay.fifo.head->depart : RT_NEVER;
    case K_FLOW: return n->u.flow.next_t;
    case K_TBF: return tbf_ready(&n->u.tbf);
    default: return RT_NEVER;
    }
}

static uint64_t flow_time(flow_t *f, uint64_t n, rng_t *r) {
    if (f->kind == RT_FLOW_POISSON) {
        double mean = (double)f->size * 8e9 / (double)f->rate_bps;
        return f->next_t + (uint64_t)llround(rng_exponential(r) * mean);
    }
    unsigned __int128 num = (unsigned __int128)n * f->size * 8u * 1000000000u;
    return (uint64_t)(num / f->rate_bps);
}

/* A node's event at time t is due: release what it holds for t. */
static void fire(rt_engine *e, int id, uint64_t t) {
    node_t *n = &e->nodes[id];
    switch (n->kind) {
    case K_BW: {
        bw_t *b = &n->u.bw;
        while (b->q.head && b->head_finish <= t) {
            rt_pkt *k = fifo_pop(&b->q);
            uint64_t done = b->head_finish;
            held(n, k, -1);
            b->busy_until = done;
            bw_next(e, id, done);
            emit(e, id, 0, k, done);
            n = &e->nodes[id];
            b = &n->u.bw;
        }
        break;
    }
    case K_DELAY: {
        delay_t *d = &n->u.delay;
        for (;;) {
            rt_pkt *k;
            if (d->cfg.reorder) {
                if (!d->heap.n || d->heap.a[0]->depart > t) break;
                k = pheap_pop(&d->heap);
            } else {
                if (!d->fifo.head || d->fifo.head->depart > t) break;
                k = fifo_pop(&d->fifo);
            }
            held(n, k, -1);
            emit(e, id, 0, k, k->depart);
            n = &e->nodes[id];
            d = &n->u.delay;
        }
        break;
    }
    case K_TBF: {
        tbf_t *b = &n->u.tbf;
        for (;;) {
            uint64_t ready = tbf_ready(b);
            if (ready > t) break;
            tbf_refill(b, ready);
            rt_pkt *k = fifo_pop(&b->q);
            tbf_take(b, k->size);
            held(n, k, -1);
            emit(e, id, 0, k, ready);
            n = &e->nodes[id];
            b = &n->u.tbf;
        }
        break;
    }
    case K_FLOW: {
        flow_t *f = &n->u.flow;
        while (f->next_t <= t) {
            rt_pkt *k = pool_get(&e->pool);
            uint64_t at = f->next_t;
            f->n++;
            f->next_t = flow_time(f, f->n, &n->rng);
            if (!k) { n->c.dropped_packets++; n->c.dropped[RT_DROP_POOL]++; continue; }
            k->born = at;
            k->dst_addr = e->nodes[f->dst].addr;
            k->fseq = f->n - 1;
            k->size = f->size;
            k->flow = f->fid;
            f->st.sent_packets++;
            f->st.sent_bytes += k->size;
            n->c.out_packets++;
            n->c.out_bytes += k->size;
            /* the packet leaves the source endpoint */
            node_t *src = &e->nodes[f->src];
            src->c.in_packets++;
            src->c.in_bytes += k->size;
            emit(e, f->src, 0, k, at);
            n = &e->nodes[id];
            f = &n->u.flow;
        }
        break;
    }
    default:
        break;
    }
}

/* ---------------------------------------------------------------- public API */
int rt_add_endpoint(rt_engine *e) { return add_node(e, K_ENDPOINT, 1); }
int rt_add_pass(rt_engine *e) { return add_node(e, K_PASS, 1); }

int rt_add_bw(rt_engine *e, const rt_bw_config *cfg) {
    if (!cfg || cfg->queue_kind < RT_QUEUE_INFINITE || cfg->queue_kind > RT_QUEUE_DROPHEAD) return RT_EINVAL;
    if (cfg->aqm < RT_AQM_NONE || cfg->aqm > RT_AQM_RED) return RT_EINVAL;
    if ((cfg->aqm == RT_AQM_CODEL || cfg->aqm == RT_AQM_PIE) && (!cfg->target_ns || !cfg->interval_ns))
        return RT_EINVAL;
    if (cfg->aqm == RT_AQM_RED && (cfg->red_min_bytes >= cfg->red_max_bytes || !(cfg->red_max_p >= 0 && cfg->red_max_p <= 1)))
        return RT_EINVAL;
    if (cfg->trace_ns) {
        if (!cfg->trace_len || !cfg->trace_period_ns || !cfg->trace_mtu) return RT_EINVAL;
        for (uint32_t i = 1; i < cfg->trace_len; i++)
            if (cfg->trace_ns[i] < cfg->trace_ns[i - 1]) return RT_EINVAL;
        if (cfg->trace_ns[cfg->trace_len - 1] >= cfg->trace_period_ns + 1 && cfg->trace_loop) return RT_EINVAL;
    }
    int id = add_node(e, K_BW, 1);
    if (id < 0) return id;
    bw_t *b = &e->nodes[id].u.bw;
    b->cfg = *cfg;
    if (cfg->trace_ns) {
        b->trace = malloc(cfg->trace_len * sizeof *b->trace);
        if (!b->trace) return RT_ENOMEM;
        memcpy(b->trace, cfg->trace_ns, cfg->trace_len * sizeof *b->trace);
        b->trace_base = e->now;
    }
    b->cfg.trace_ns = NULL;
    if (cfg->queue_kind == RT_QUEUE_INFINITE) {
        e->nodes[id].u.bw.cfg.limit_packets = 0;
        e->nodes[id].u.bw.cfg.limit_bytes = 0;
    }
    return id;
}

int rt_add_delay(rt_engine *e, const rt_delay_config *cfg) {
    if (!cfg || cfg->correlation < 0 || cfg->correlation > 1 || cfg->distribution < 0 ||
        cfg->distribution > RT_DIST_PARETONORMAL) return RT_EINVAL;
    int id = add_node(e, K_DELAY, 1);
    if (id < 0) return id;
    e->nodes[id].u.delay.cfg = *cfg;
    return id;
}

int rt_add_loss(rt_engine *e, const rt_loss_config *cfg) {
    if (!cfg || cfg->model < RT_LOSS_BERNOULLI || cfg->model > RT_LOSS_PATTERN) return RT_EINVAL;
    if (cfg->model == RT_LOSS_PATTERN && (!cfg->pattern || cfg->pattern_len == 0)) return RT_EINVAL;
    int id = add_node(e, K_LOSS, 1);
    if (id < 0) return id;
    loss_t *l = &e->nodes[id].u.loss;
    l->cfg = *cfg;
    if (cfg->model == RT_LOSS_PATTERN) {
        l->pattern = malloc(cfg->pattern_len * sizeof *l->pattern);
        if (!l->pattern) return RT_ENOMEM;
        memcpy(l->pattern, cfg->pattern, cfg->pattern_len * sizeof *l->pattern);
    }
    l->cfg.pattern = NULL;
    return id;
}

int rt_add_token_bucket(rt_engine *e, const rt_token_bucket_config *cfg) {
    if (!cfg || cfg->burst_bytes == 0 || (cfg->peak_rate_bps && cfg->min_burst_bytes == 0)) return RT_EINVAL;
    int id = add_node(e, K_TBF, 1);
    if (id < 0) return id;
    tbf_t *b = &e->nodes[id].u.tbf;
    b->cfg = *cfg;
    b->tokens = (double)cfg->burst_bytes;      /* a full bucket at the start: a burst passes at once */
    b->ptokens = (double)cfg->min_burst_bytes;
    b->last = e->now;
    return id;
}

static int add_prob(rt_engine *e, int kind, double rate) {
    if (!(rate >= 0 && rate <= 1)) return RT_EINVAL;
    int id = add_node(e, kind, 1);
    if (id >= 0) e->nodes[id].u.prob.rate = rate;
    return id;
}

int rt_add_duplicate(rt_engine *e, double rate) { return add_prob(e, K_DUPLICATE, rate); }
int rt_add_corrupt(rt_engine *e, double rate) { return add_prob(e, K_CORRUPT, rate); }

static int prefix_len(uint32_t mask) { int n = 0; while (mask & 0x80000000u) { n++; mask <<= 1; } return n; }

int rt_add_router(rt_engine *e, const rt_route *routes, uint32_t n_routes, int n_outputs, int default_port) {
    if (n_outputs < 1 || default_port >= n_outputs) return RT_EINVAL;
    for (uint32_t i = 0; i < n_routes; i++)
        if (routes[i].port < 0 || routes[i].port >= n_outputs) return RT_EINVAL;
    rt_route *copy = malloc((n_routes ? n_routes : 1) * sizeof *copy);
    if (!copy) return RT_ENOMEM;
    memcpy(copy, routes, n_routes * sizeof *copy);
    /* longest prefix first (stable insertion sort: few routes) */
    for (uint32_t i = 1; i < n_routes; i++) {
        rt_route x = copy[i];
        uint32_t j = i;
        while (j > 0 && prefix_len(copy[j - 1].mask) < prefix_len(x.mask)) { copy[j] = copy[j - 1]; j--; }
        copy[j] = x;
    }
    for (uint32_t i = 0; i < n_routes; i++) copy[i].addr &= copy[i].mask;
    int id = add_node(e, K_ROUTER, n_outputs);
    if (id < 0) { free(copy); return id; }
    router_t *r = &e->nodes[id].u.router;
    r->routes = copy;
    r->n = n_routes;
    r->default_port = default_port;
    return id;
}

int rt_add_outage(rt_engine *e, uint64_t up_ns, uint64_t down_ns, int down) {
    if ((up_ns == 0) != (down_ns == 0)) return RT_EINVAL;
    int id = add_node(e, K_OUTAGE, 1);
    if (id < 0) return id;
    outage_t *o = &e->nodes[id].u.outage;
    o->up = up_ns; o->down = down_ns; o->start_down = down != 0; o->t0 = e->now;
    return id;
}

int rt_outage_set_down(rt_engine *e, int node, int down) {
    if (node < 0 || node >= e->n_nodes || e->nodes[node].kind != K_OUTAGE) return RT_ERANGE;
    outage_t *o = &e->nodes[node].u.outage;
    o->start_down = down != 0;
    o->t0 = e->now;  /* a periodic schedule restarts with this state */
    return RT_OK;
}

int rt_endpoint_set_addr(rt_engine *e, int node, uint32_t addr) {
    if (node < 0 || node >= e->n_nodes || e->nodes[node].kind != K_ENDPOINT) return RT_ERANGE;
    e->nodes[node].addr = addr;
    return RT_OK;
}

int rt_link(rt_engine *e, int src, int port, int dst) {
    if (src < 0 || src >= e->n_nodes || dst < 0 || dst >= e->n_nodes) return RT_ERANGE;
    node_t *n = &e->nodes[src];
    if (port < 0 || port >= n->n_out) return RT_ERANGE;
    if (n->out[port] >= 0) return RT_ESTATE;
    n->out[port] = dst;
    if (port == 0) n->out1 = dst;
    return RT_OK;
}

int rt_bw_set_rate(rt_engine *e, int node, uint64_t rate_bps) {
    if (node < 0 || node >= e->n_nodes || e->nodes[node].kind != K_BW) return RT_ERANGE;
    bw_t *b = &e->nodes[node].u.bw;
    uint64_t now = e->now;
    if (b->q.head && b->head_start < now && b->head_finish != RT_NEVER && b->head_finish > now) {
        /* a packet is on the wire: the bits not yet sent go at the new rate */
        unsigned __int128 left_bits = (unsigned __int128)(b->head_finish - now) * b->cfg.rate_bps;
        b->cfg.rate_bps = rate_bps;
        b->frac = 0;
        b->head_finish = rate_bps ? now + (uint64_t)(left_bits / rate_bps) : RT_NEVER;
    } else if (b->q.head && b->head_finish == RT_NEVER) {
        uint64_t start = b->head_start > now ? b->head_start : now;
        b->cfg.rate_bps = rate_bps;
        b->frac = 0;
        bw_next(e, node, start);
    } else if (b->q.head && b->head_start >= now) {
        b->cfg.rate_bps = rate_bps;
        b->frac = 0;
        bw_next(e, node, b->head_start);
    } else {
        b->cfg.rate_bps = rate_bps;
    }
    e->nodes[node].sched_t = RT_NEVER;  /* force a fresh entry at the new time */
    reschedule(e, node);
    return RT_OK;
}

int rt_add_flow(rt_engine *e, int src, int dst, int kind, uint64_t rate_bps, uint32_t size_bytes) {
    if (src < 0 || src >= e->n_nodes || dst < 0 || dst >= e->n_nodes) return RT_ERANGE;
    if (e->nodes[src].kind != K_ENDPOINT || e->nodes[dst].kind != K_ENDPOINT) return RT_EINVAL;
    if (rate_bps == 0 || size_bytes == 0 || (kind != RT_FLOW_CBR && kind != RT_FLOW_POISSON)) return RT_EINVAL;
    if (e->n_flows == e->cap_flows) {
        int cap = e->cap_flows ? e->cap_flows * 2 : 8;
        int *a = realloc(e->flow_nodes, (size_t)cap * sizeof *a);
        if (!a) return RT_ENOMEM;
        e->flow_nodes = a;
        e->cap_flows = cap;
    }
    int id = add_node(e, K_FLOW, 0);
    if (id < 0) return id;
    flow_t *f = &e->nodes[id].u.flow;
    f->src = src; f->dst = dst; f->kind = kind; f->rate_bps = rate_bps; f->size = size_bytes;
    f->next_t = e->now;
    int fid = e->n_flows++;
    e->flow_nodes[fid] = id;
    f->fid = fid;
    reschedule(e, id);
    return fid;
}

int rt_run_until(rt_engine *e, uint64_t t_ns) {
    if (t_ns < e->now) return RT_EINVAL;
    while (e->n_ev && e->ev[0].t <= t_ns) {
        event_t x = ev_pop(e);
        node_t *n = &e->nodes[x.node];
        if (x.t != n->sched_t) continue;   /* stale: the node was rescheduled since */
        n->sched_t = RT_NEVER;
        e->now = x.t;
        fire(e, x.node, x.t);
        reschedule(e, x.node);
    }
    e->now = t_ns;
    return RT_OK;
}

uint64_t rt_now(const rt_engine *e) { return e->now; }

int rt_node_counters(const rt_engine *e, int node, rt_counters *out) {
    if (node < 0 || node >= e->n_nodes || !out) return RT_ERANGE;
    *out = e->nodes[node].c;
    return RT_OK;
}

int rt_flow_stats_get(const rt_engine *e, int flow, rt_flow_stats *out) {
    if (flow < 0 || flow >= e->n_flows || !out) return RT_ERANGE;
    *out = e->nodes[e->flow_nodes[flow]].u.flow.st;
    return RT_OK;
}

uint64_t rt_flow_samples(const rt_engine *e, int flow, uint64_t *delays, uint64_t *seqs, uint64_t cap) {
    if (flow < 0 || flow >= e->n_flows) return 0;
    const flow_t *f = &e->nodes[e->flow_nodes[flow]].u.flow;
    uint64_t n = f->n_delays < cap ? f->n_delays : cap;
    if (delays) memcpy(delays, f->delays, n * sizeof *delays);
    if (seqs) memcpy(seqs, f->seqs, n * sizeof *seqs);
    return n;
}
