/* `delay`: constant delay plus optional jitter (uniform, normal, pareto, paretonormal) with
 * correlation; packets keep their order unless `reorder`. With `round_up`, a packet's arrival time is
 * first rounded up to the next multiple of `round_up` counted from the channel's first packet
 * (upstream's DelayCell `ingress_round_up`, rattan-core/src/cells/delay.rs). */
#define RT_CELL_API
#include "rattan_engine.h"

#include <stdlib.h>
#include <string.h>

enum { RT_DIST_UNIFORM, RT_DIST_NORMAL, RT_DIST_PARETO, RT_DIST_PARETONORMAL };
static const char *const distributions[] = {"uniform", "normal", "pareto", "paretonormal", NULL};

typedef struct {
    struct {
        uint64_t delay_ns, jitter_ns;
        int distribution;
        double correlation;
        int reorder;
        uint64_t round_up_ns;  /* 0: off */
    } cfg;
    rt_fifo fifo;            /* without reordering: departures are non-decreasing */
    rt_pheap heap;           /* with reordering */
    uint64_t last_depart;
    double last_jitter;
} delay_t;

enum { P_DELAY, P_JITTER, P_CORRELATION };
static const char *const params[] = {"delay", "jitter", "correlation", NULL};

static int delay_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    delay_t *d = state;
    (void)n_outputs; (void)now;
    d->cfg.round_up_ns = rt_cfg_has(c, "round_up") ? rt_cfg_u64(c, "round_up") : 0;
    d->cfg.delay_ns = rt_cfg_u64(c, "delay");
    d->cfg.jitter_ns = rt_cfg_u64(c, "jitter");
    d->cfg.correlation = rt_cfg_float(c, "correlation");
    d->cfg.reorder = rt_cfg_bool(c, "reorder");
    const char *dist = rt_cfg_str(c, "distribution");
    if (rt_cfg_status(c)) return RT_EINVAL;
    d->cfg.distribution = -1;
    for (int i = 0; distributions[i]; i++)
        if (strcmp(dist, distributions[i]) == 0) d->cfg.distribution = i;
    if (d->cfg.distribution < 0) return rt_cfg_fail(c, "distribution", "expected uniform, normal, pareto or paretonormal");
    if (!(d->cfg.correlation >= 0 && d->cfg.correlation <= 1)) return rt_cfg_fail(c, "correlation", "must be between 0 and 1");
    return RT_OK;
}

static void delay_destroy(void *state) { free(((delay_t *)state)->heap.a); }

/* Pareto with shape 3, shifted to mean 0 and scaled to standard deviation 1. */
static double pareto_unit(rt_rng *r) {
    const double a = 3.0, mean = 1.5, sd = 0.5 * 1.7320508075688772;  /* xm = 1: mean a/(a-1), sd sqrt(a/(a-2))/(a-1) */
    double v = 1.0 / pow(1.0 - rt_rng_unit(r), 1.0 / a);
    return (v - mean) / sd;
}

static double jitter(delay_t *d, rt_rng *r) {
    double j = (double)d->cfg.jitter_ns, x;
    if (j == 0) return 0;
    switch (d->cfg.distribution) {
    case RT_DIST_NORMAL: x = rt_rng_normal(r) * j; break;
    case RT_DIST_PARETO: x = pareto_unit(r) * j; break;
    case RT_DIST_PARETONORMAL:  /* netem's mix: 25 % Pareto, 75 % normal, both with deviation j */
        x = (rt_rng_unit(r) < 0.25 ? pareto_unit(r) : rt_rng_normal(r)) * j;
        break;
    default: x = (2.0 * rt_rng_unit(r) - 1.0) * j; break;
    }
    double c = d->cfg.correlation;
    if (c > 0) x = c * d->last_jitter + (1.0 - c) * x;
    d->last_jitter = x;
    return x;
}

static void delay_enqueue(rt_node *n, void *state, rt_pkt *k) {
    delay_t *d = state;
    double x = (double)d->cfg.delay_ns + jitter(d, rt_node_rng(n));
    /* Upstream's trace start is FIRST_PACKET_INSTANT under its default `first-packet` feature: the
     * first packet into Rattan, in either direction (rt_first_arrival: the first into this channel). */
    uint64_t t = rt_round_up_from(k->t, rt_first_arrival(n), d->cfg.round_up_ns);
    uint64_t dep = t + (x > 0 ? (uint64_t)llround(x) : 0);
    k->seq = rt_next_seq(n);
    if (d->cfg.reorder) {
        k->depart = dep;
        if (rt_pheap_push(&d->heap, k) != RT_OK) { rt_drop(n, k, RT_DROP_POOL); return; }
    } else {
        if (dep < d->last_depart) dep = d->last_depart;
        d->last_depart = dep;
        k->depart = dep;
        rt_fifo_push(&d->fifo, k);
    }
    rt_hold(n, k, +1);
    rt_reschedule(n);
}

static uint64_t delay_next_event(const void *state) {
    const delay_t *d = state;
    if (d->cfg.reorder) return rt_pheap_next(&d->heap);
    return d->fifo.head ? d->fifo.head->depart : RT_NEVER;
}

static void delay_fire(rt_node *n, void *state, uint64_t t) {
    delay_t *d = state;
    for (;;) {
        rt_pkt *k;
        if (d->cfg.reorder) {
            if (!d->heap.n || d->heap.a[0]->depart > t) break;
            k = rt_pheap_pop(&d->heap);
        } else {
            if (!d->fifo.head || d->fifo.head->depart > t) break;
            k = rt_fifo_pop(&d->fifo);
        }
        rt_hold(n, k, -1);
        rt_emit(n, 0, k, k->depart);
    }
}

/* New values apply to packets that arrive from now on; packets already delayed keep their time. */
static int delay_control(rt_node *n, void *state, int param, double value, uint64_t now) {
    delay_t *d = state;
    (void)n; (void)now;
    if (param == P_CORRELATION) {
        if (!(value >= 0 && value <= 1)) return RT_EINVAL;
        d->cfg.correlation = value;
        return RT_OK;
    }
    if (!(value >= 0 && value < 1.8e19)) return RT_EINVAL;
    if (param == P_DELAY) d->cfg.delay_ns = (uint64_t)value;
    else d->cfg.jitter_ns = (uint64_t)value;
    return RT_OK;
}

static double delay_read(const void *state, int param, uint64_t now) {
    const delay_t *d = state;
    (void)now;
    return param == P_DELAY ? (double)d->cfg.delay_ns : param == P_JITTER ? (double)d->cfg.jitter_ns
                                                                          : d->cfg.correlation;
}

/* The least delay a packet arriving from now on gets. A uniform draw is at least -jitter, a Pareto
 * one at least -jitter/sqrt(3) (its support starts 1/sqrt(3) standard deviations below its mean); a
 * normal one has no bound. With correlation, a draw mixes the last one with a fresh one, so it is
 * never below the lower of the two; keeping order and rounding up only delay further. */
static uint64_t delay_min_hold(const void *state) {
    const delay_t *d = state;
    double j = (double)d->cfg.jitter_ns, low = -j;
    if (j == 0) low = 0;
    else if (d->cfg.distribution == RT_DIST_PARETO) low = -0.5774 * j;
    else if (d->cfg.distribution != RT_DIST_UNIFORM) return 0;
    if (d->cfg.correlation > 0 && d->last_jitter < low) low = d->last_jitter;
    double x = (double)d->cfg.delay_ns + low;
    return x >= 1 ? (uint64_t)floor(x) : 0;
}

const rt_cell_ops rt_cell_delay = {.type = "delay", .state_size = sizeof(delay_t), .params = params,
                                   .init = delay_init, .destroy = delay_destroy, .enqueue = delay_enqueue,
                                   .next_event = delay_next_event, .fire = delay_fire,
                                   .control = delay_control, .read = delay_read, .min_hold = delay_min_hold};
