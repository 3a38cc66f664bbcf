/* `loss_trace`: Bernoulli loss whose probability follows a step trace of time since the start of
 * the run, or with `start = first_packet` since the first packet into the channel (upstream's
 * LossReplay under its default `first-packet` feature). */
#define RT_CELL_API
#include "rattan_engine.h"

#include <string.h>

typedef struct { rt_steps steps; int first_packet, started; } loss_trace_t;

static int loss_trace_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    loss_trace_t *l = state;
    rt_steps *s = &l->steps;
    (void)n_outputs;
    const char *start = rt_cfg_has(c, "start") ? rt_cfg_str(c, "start") : "run";
    l->first_packet = strcmp(start, "first_packet") == 0;
    if (!l->first_packet && strcmp(start, "run") != 0 && !rt_cfg_status(c))
        return rt_cfg_fail(c, "start", "must be `run` or `first_packet`");
    rt_config trace = rt_cfg_get(c, "trace");
    int rc = rt_steps_from_trace(s, &trace, rt_cfg_bool(c, "loop"), now);
    if (rc < 0) return rc;
    for (uint32_t i = 0; i < s->len; i++)
        if (!(s->value[i] >= 0 && s->value[i] <= 1)) return rt_cfg_fail(c, "trace", "a loss probability must be between 0 and 1");
    return RT_OK;
}

static void loss_trace_destroy(void *state) { rt_steps_free(&((loss_trace_t *)state)->steps); }

static void loss_trace_enqueue(rt_node *n, void *state, rt_pkt *k) {
    loss_trace_t *l = state;
    if (l->first_packet && !l->started) {  /* the trace starts at the channel's first packet */
        uint64_t t0 = rt_first_arrival(n);
        l->steps.base = t0 <= k->t ? t0 : k->t;
        l->steps.i = 0;
        l->started = 1;
    }
    double p = rt_steps_at(&l->steps, k->t);
    if (rt_rng_unit(rt_node_rng(n)) < p) rt_drop(n, k, RT_DROP_LOSS);
    else rt_emit(n, 0, k, k->t);
}

const rt_cell_ops rt_cell_loss_trace = {.type = "loss_trace", .state_size = sizeof(loss_trace_t),
                                        .init = loss_trace_init, .destroy = loss_trace_destroy,
                                        .enqueue = loss_trace_enqueue};
