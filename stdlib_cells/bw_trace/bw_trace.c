/* `bw_trace`: a link whose capacity follows a Mahimahi trace: each listed millisecond is one
 * delivery opportunity of `trace_mtu` bytes; the trace repeats when `loop`. */
#include "bw/bw.h"

#include <stdlib.h>
#include <string.h>

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

static int bw_trace_init(void *state, const void *config, int n_outputs, uint64_t now) {
    const rt_bw_config *c = config;
    bw_t *b = state;
    (void)n_outputs;
    if (!c || !c->trace_ns || !c->trace_len || !c->trace_period_ns || !c->trace_mtu) return RT_EINVAL;
    for (uint32_t i = 1; i < c->trace_len; i++)
        if (c->trace_ns[i] < c->trace_ns[i - 1]) return RT_EINVAL;
    if (c->trace_loop && c->trace_ns[c->trace_len - 1] > c->trace_period_ns) return RT_EINVAL;
    int rc = bw_init_queue(b, c);
    if (rc < 0) return rc;
    b->trace = malloc(c->trace_len * sizeof *b->trace);
    if (!b->trace) return RT_ENOMEM;
    memcpy(b->trace, c->trace_ns, c->trace_len * sizeof *b->trace);
    b->trace_len = c->trace_len;
    b->trace_mtu = c->trace_mtu;
    b->trace_period = c->trace_period_ns;
    b->trace_loop = c->trace_loop;
    b->trace_base = now;
    b->finish = trace_finish;
    return RT_OK;
}

static void bw_trace_destroy(void *state) { free(((bw_t *)state)->trace); }

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

const rt_cell_ops rt_cell_bw_trace = {.type = "bw_trace", .state_size = sizeof(bw_t), .params = params,
                                      .init = bw_trace_init, .destroy = bw_trace_destroy, .enqueue = bw_enqueue,
                                      .next_event = bw_next_event, .fire = bw_fire, .control = bw_trace_control,
                                      .read = bw_trace_read};
