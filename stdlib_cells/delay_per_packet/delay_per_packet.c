/* `delay_per_packet`: each packet gets the next delay of a model of segments (static, normal,
 * log-normal), as upstream Rattan's DelayPerPacket cell (rattan-core/src/cells/per_packet/delay.rs)
 * with netem-trace's per-packet delay models (src/model/delay_per_packet.rs, 0.4.4). Packets leave in
 * order of their departure times (they may overtake); once the model has ended, packets are dropped. */
#define RT_CELL_API
#include "rattan_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SEG_STATIC, SEG_NORMAL, SEG_LOGNORMAL };

typedef struct {
    int kind;
    uint64_t count;        /* packets of the segment; 0: it never ends */
    uint64_t seed;
    uint64_t delay_ns;     /* static */
    double a, b;           /* normal: mean, std_dev (ns); lognormal: mu, sigma (of the delay's ln in seconds) */
    uint64_t lower_ns;
    uint64_t upper_ns;     /* UINT64_MAX: no upper bound */
} seg_t;

/* Min-heap of packets by (depart, seq): upstream's DelayedQueue is a map from departure instant to a
 * FIFO, so equal departures keep their arrival order; seq increases with arrivals. */

typedef struct {
    seg_t *segs;
    uint32_t n_segs;
    uint64_t repeat;       /* 0: forever */
    uint32_t seg;          /* the current segment */
    uint64_t done;         /* packets the current segment has given a delay to */
    uint64_t cycle;        /* completed plays of the list */
    int ended;
    rt_rng rng;            /* the current segment's generator */
    rt_pheap heap;
} dpp_t;

static int read_segment(seg_t *s, rt_config *item, uint64_t cell_seed) {
    const char *kind = rt_cfg_str(item, "kind");
    if (rt_cfg_status(item)) return RT_EINVAL;
    s->count = rt_cfg_u64(item, "count");
    s->upper_ns = UINT64_MAX;
    s->seed = cell_seed;
    if (strcmp(kind, "static") == 0) {
        s->kind = SEG_STATIC;
        s->delay_ns = rt_cfg_u64(item, "delay");
        return rt_cfg_status(item);
    }
    if (strcmp(kind, "normal") == 0) s->kind = SEG_NORMAL;
    else if (strcmp(kind, "lognormal") == 0) s->kind = SEG_LOGNORMAL;
    else return rt_cfg_fail(item, "kind", "expected a `static`, `normal` or `lognormal` segment");
    double mean = (double)rt_cfg_u64(item, "mean"), sd = (double)rt_cfg_u64(item, "std_dev");
    s->lower_ns = rt_cfg_u64(item, "lower_bound");
    if (rt_cfg_has(item, "upper_bound")) s->upper_ns = rt_cfg_u64(item, "upper_bound");
    if (rt_cfg_has(item, "seed")) s->seed = rt_cfg_u64(item, "seed");
    if (rt_cfg_status(item)) return RT_EINVAL;
    if (s->kind == SEG_NORMAL) { s->a = mean; s->b = sd; return RT_OK; }
    if (mean <= 0) return rt_cfg_fail(item, "mean", "a log-normal segment's mean must be more than 0");
    /* netem-trace's LogNormalizedDelayPerPacketConfig::build, in seconds as there */
    double m = mean * 1e-9, v = sd * 1e-9;
    double sigma = sqrt(log(1.0 + (v * v) / (m * m)));
    s->a = log(m) - sigma * sigma / 2.0;
    s->b = sigma;
    return RT_OK;
}

static int dpp_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    dpp_t *d = state;
    (void)n_outputs; (void)now;
    rt_config model = rt_cfg_get(c, "model");
    uint32_t n = rt_cfg_len(&model);
    d->repeat = rt_cfg_u64(c, "repeat");
    uint64_t seed = rt_cfg_u64(c, "seed");
    if (rt_cfg_status(c)) return RT_EINVAL;
    if (n == 0) return rt_cfg_fail(c, "model", "needs at least one segment");
    d->segs = calloc(n, sizeof *d->segs);
    if (!d->segs) return RT_ENOMEM;
    d->n_segs = n;
    for (uint32_t i = 0; i < n; i++) {
        rt_config item = rt_cfg_item(&model, i);
        int rc = read_segment(&d->segs[i], &item, seed);
        if (rc) return rc;
    }
    rt_rng_seed(&d->rng, d->segs[0].seed);
    return RT_OK;
}

static void dpp_destroy(void *state) {
    dpp_t *d = state;
    free(d->segs);
    free(d->heap.a);
}

static uint64_t sample(const seg_t *s, rt_rng *r) {
    if (s->kind == SEG_STATIC) return s->delay_ns;
    double x = s->kind == SEG_NORMAL ? s->a + s->b * rt_rng_normal(r)       /* ns */
                                     : exp(s->a + s->b * rt_rng_normal(r)) * 1e9;  /* s -> ns */
    uint64_t ns = x > 0 ? (x < 1.8e19 ? (uint64_t)llround(x) : UINT64_MAX) : 0;  /* upstream: max(0.0) */
    if (ns < s->lower_ns) ns = s->lower_ns;  /* then max(lower_bound), then min(upper_bound) */
    if (ns > s->upper_ns) ns = s->upper_ns;
    return ns;
}

/* The next packet's delay, or -1 once the model has ended (netem-trace's RepeatedDelayPerPacketPattern:
 * a segment with count 0 never ends; each segment starts afresh, its generator seeded again). */
static int next_delay(dpp_t *d, uint64_t *delay) {
    while (!d->ended) {
        seg_t *s = &d->segs[d->seg];
        if (s->count == 0 || d->done < s->count) {
            d->done++;
            *delay = sample(s, &d->rng);
            return 0;
        }
        d->done = 0;
        if (++d->seg == d->n_segs) {
            d->seg = 0;
            if (++d->cycle >= d->repeat && d->repeat) { d->ended = 1; break; }
        }
        rt_rng_seed(&d->rng, d->segs[d->seg].seed);
    }
    return -1;
}

static void dpp_enqueue(rt_node *n, void *state, rt_pkt *k) {
    dpp_t *d = state;
    uint64_t delay;
    if (next_delay(d, &delay) < 0) { rt_drop(n, k, RT_DROP_MODEL_END); return; }
    k->depart = delay > UINT64_MAX - k->t ? UINT64_MAX - 1 : k->t + delay;
    k->seq = rt_next_seq(n);
    if (rt_pheap_push(&d->heap, k) != RT_OK) { rt_drop(n, k, RT_DROP_POOL); return; }
    rt_hold(n, k, +1);
    rt_reschedule(n);
}

static uint64_t dpp_next_event(const void *state) {
    const dpp_t *d = state;
    return rt_pheap_next(&d->heap);
}

static void dpp_fire(rt_node *n, void *state, uint64_t t) {
    dpp_t *d = state;
    while (d->heap.n && d->heap.a[0]->depart <= t) {
        rt_pkt *k = rt_pheap_pop(&d->heap);
        rt_hold(n, k, -1);
        rt_emit(n, 0, k, k->depart);
    }
}

const rt_cell_ops rt_cell_delay_per_packet = {.type = "delay_per_packet", .state_size = sizeof(dpp_t),
                                              .init = dpp_init, .destroy = dpp_destroy, .enqueue = dpp_enqueue,
                                              .next_event = dpp_next_event, .fire = dpp_fire};
