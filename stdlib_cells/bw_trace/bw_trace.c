/* `bw_trace`: a link whose capacity follows a Mahimahi trace: each listed millisecond is one
 * delivery opportunity of `trace_mtu` bytes; the trace repeats when `loop`. With
 * `start = first_packet` the trace's time 0 is the first packet into the channel (upstream's
 * BwReplay under its default `first-packet` feature). */
#include "bw/bw.h"

#include <stdlib.h>
#include <string.h>

/* The cell's state: bw's, then what only bw_trace needs (bw's functions take it as a bw_t). */
typedef struct {
    bw_t b;
    int first_packet, started;
} bw_trace_t;

enum { P_OVERHEAD };
static const char *const params[] = {"overhead", NULL};

/* The next opportunity at or after t; the current one is reused while it has budget left,
 * unless `skip`. */
static uint64_t seek(bw_t *b, uint64_t t, int skip) {
    uint32_t i = 0;
    if (b->trace_started) {
        uint64_t cur = b->trace_base + b->trace[b->trace_idx];
        if (!skip && cur >= t && b->trace_budget > 0) return cur;
        i = b->trace_idx + 1;
    }
    for (;;) {
        if (i >= b->trace_len) {
            if (!b->trace_loop) return RT_NEVER;
            b->trace_base += b->trace_period;
            i = 0;
        }
        uint64_t rel = t > b->trace_base ? t - b->trace_base : 0;
        if (b->trace_loop && rel >= b->trace_period) {  /* idle for whole periods: jump over them */
            b->trace_base += (rel / b->trace_period) * b->trace_period;
            rel = t - b->trace_base;
            i = 0;
        }
        uint32_t lo = i, hi = b->trace_len;  /* first opportunity >= rel, from i */
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (b->trace[mid] < rel) lo = mid + 1; else hi = mid;
        }
        if (lo < b->trace_len) {
            b->trace_started = 1;
            b->trace_idx = lo;
            b->trace_budget = b->trace_mtu;
            return b->trace_base + b->trace[lo];
        }
        i = b->trace_len;
    }
}

/* Byte-exact, as Mahimahi: each opportunity carries `trace_mtu` bytes; a packet (size + overhead)
 * takes what is left of the current one and spills into the next ones, and leaves at the
 * opportunity that carries its last byte. */
static uint64_t trace_finish(bw_t *b, const rt_pkt *h, uint64_t at) {
    int64_t need = (int64_t)h->size + b->overhead;
    uint64_t t = seek(b, at, 0);
    while (t != RT_NEVER && b->trace_budget < need) {
        need -= b->trace_budget > 0 ? b->trace_budget : 0;
        b->trace_budget = 0;
        t = seek(b, t, 1);
    }
    if (t != RT_NEVER) b->trace_budget -= need;
    return t;
}

/* A netem-trace bandwidth model: the rate steps at each segment's start; a packet on the wire when
 * it steps sends its remaining bits at the new rate (as `bw` does when its rate is changed). */
static void model_enqueue(rt_node *n, void *state, rt_pkt *k) {
    bw_t *b = state;
    if (!b->q.q.head) b->rate_bps = (uint64_t)rt_steps_at(&b->rates, k->t);  /* idle: the rate in force */
    bw_enqueue(n, state, k);
}

static uint64_t model_next_event(const void *state) {
    const bw_t *b = state;
    if (!b->q.q.head) return RT_NEVER;
    uint64_t step = rt_steps_next(&b->rates, b->head_start);
    return step < b->head_finish ? step : b->head_finish;
}

static void model_fire(rt_node *n, void *state, uint64_t t) {
    bw_t *b = state;
    for (;;) {
        uint64_t step = b->q.q.head ? rt_steps_next(&b->rates, b->head_start) : RT_NEVER;
        if (step > t) { bw_fire(n, b, t); return; }
        bw_fire(n, b, step - 1);  /* what leaves before the step */
        if (!b->q.q.head) continue;
        step = rt_steps_next(&b->rates, b->head_start);  /* the head may have changed */
        if (step > t) continue;
        bw_set_rate(n, b, (uint64_t)rt_steps_at(&b->rates, step), step);
        if (b->head_start < step) b->head_start = step;  /* its remaining bits start at the step */
    }
}

static int bw_trace_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    bw_t *b = state;
    bw_trace_t *bt = state;
    (void)n_outputs;
    int loop = rt_cfg_bool(c, "loop");
    if (rt_cfg_trace_start(c, &bt->first_packet) < 0) return rt_cfg_status(c);
    rt_config trace = rt_cfg_get(c, "trace");
    int rc = bw_init_common(b, c);
    if (rc < 0) return rc;
    if (strcmp(rt_cfg_str(&trace, "format"), "segments") == 0) {
        rc = rt_steps_from_trace(&b->rates, &trace, loop, now);
        if (rc < 0) return rc;
        b->rate_steps = 1;
        b->rate_bps = (uint64_t)rt_steps_at(&b->rates, now);
        b->finish = bw_rate_finish;
        return RT_OK;
    }
    int64_t len = rt_cfg_ints(&trace, "opportunities_ns", &b->trace);
    uint64_t period = rt_cfg_u64(&trace, "period_ns"), mtu = rt_cfg_u64(&trace, "mtu_bytes");
    if (rt_cfg_status(c)) return RT_EINVAL;
    if (len <= 0) return rt_cfg_fail(&trace, "opportunities_ns", "the trace has no delivery opportunity");
    if (!period) return rt_cfg_fail(&trace, "period_ns", "must be longer than 0");
    if (!mtu || mtu > UINT32_MAX) return rt_cfg_fail(&trace, "mtu_bytes", "must be between 1 and 2^32 - 1 bytes");
    for (int64_t i = 1; i < len; i++)
        if (b->trace[i] < b->trace[i - 1]) return rt_cfg_fail(&trace, "opportunities_ns", "times must not decrease");
    if (loop && b->trace[len - 1] > period)
        return rt_cfg_fail(&trace, "period_ns", "a looping trace's period must not end before its last opportunity");
    b->trace_len = (uint32_t)len;
    b->trace_mtu = (uint32_t)mtu;
    b->trace_period = period;
    b->trace_loop = loop;
    b->trace_base = now;
    b->finish = trace_finish;
    return RT_OK;
}

static void bw_trace_destroy(void *state) {
    bw_t *b = state;
    free(b->trace);
    rt_steps_free(&b->rates);
}

static void bw_trace_enqueue(rt_node *n, void *state, rt_pkt *k) {
    bw_trace_t *bt = state;
    if (bt->first_packet && !bt->started) {  /* the trace starts at the channel's first packet */
        uint64_t t0 = rt_trace_origin(n, k->t);
        bt->started = 1;
        if (bt->b.rate_steps) {
            bt->b.rates.base = t0;
            bt->b.rates.i = 0;
        } else {
            bt->b.trace_base = t0;
            bt->b.trace_started = 0;
        }
    }
    if (((bw_t *)state)->rate_steps) model_enqueue(n, state, k);
    else bw_enqueue(n, state, k);
}

static uint64_t bw_trace_next_event(const void *state) {
    return ((const bw_t *)state)->rate_steps ? model_next_event(state) : bw_next_event(state);
}

static void bw_trace_fire(rt_node *n, void *state, uint64_t t) {
    if (((bw_t *)state)->rate_steps) model_fire(n, state, t);
    else bw_fire(n, state, t);
}

static int bw_trace_control(rt_node *n, void *state, int param, double value, uint64_t now) {
    bw_t *b = state;
    (void)n; (void)param; (void)now;
    if (!(value >= 0 && value <= 65535)) return RT_EINVAL;
    b->overhead = (uint32_t)value;  /* from the next packet on */
    return RT_OK;
}

static double bw_trace_read(const void *state, int param, uint64_t now) {
    (void)param; (void)now;
    return (double)((const bw_t *)state)->overhead;
}

const rt_cell_ops rt_cell_bw_trace = {.type = "bw_trace", .state_size = sizeof(bw_trace_t), .params = params,
                                      .init = bw_trace_init, .destroy = bw_trace_destroy, .enqueue = bw_trace_enqueue,
                                      .next_event = bw_trace_next_event, .fire = bw_trace_fire, .control = bw_trace_control,
                                      .read = bw_trace_read};
