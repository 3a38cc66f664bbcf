/* `duplicate`: sends a second copy of a packet with probability `rate`. */
#define RT_CELL_API
#include "rattan_engine.h"

typedef struct { double rate; } duplicate_t;

static const char *const params[] = {"rate", NULL};

static int duplicate_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    double rate = rt_cfg_float(c, "rate");
    (void)n_outputs; (void)now;
    if (!rt_cfg_status(c) && !(rate >= 0 && rate <= 1)) return rt_cfg_fail(c, "rate", "must be between 0 and 1");
    ((duplicate_t *)state)->rate = rate;
    return rt_cfg_status(c);
}

static void duplicate_enqueue(rt_node *n, void *state, rt_pkt *k) {
    duplicate_t *d = state;
    rt_pkt *copy = rt_rng_unit(rt_node_rng(n)) < d->rate ? rt_clone(n, k) : NULL;
    uint64_t t = k->t;
    rt_emit(n, 0, k, t);
    if (copy) rt_emit(n, 0, copy, t);
}

static int duplicate_control(rt_node *n, void *state, int param, double value, uint64_t now) {
    (void)n; (void)param; (void)now;
    if (!(value >= 0 && value <= 1)) return RT_EINVAL;
    ((duplicate_t *)state)->rate = value;
    return RT_OK;
}

static double duplicate_read(const void *state, int param, uint64_t now) { (void)param; (void)now; return ((const duplicate_t *)state)->rate; }

const rt_cell_ops rt_cell_duplicate = {.type = "duplicate", .state_size = sizeof(duplicate_t), .params = params,
                                       .init = duplicate_init, .enqueue = duplicate_enqueue,
                                       .control = duplicate_control, .read = duplicate_read};
