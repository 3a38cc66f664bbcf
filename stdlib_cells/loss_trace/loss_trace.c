/* `loss_trace`: loss whose probability follows a step trace of time since the start of the run, or
 * with `start = first_packet` since the first packet into the channel (upstream's LossReplay under
 * its default `first-packet` feature). A step of a netem-trace model holds a loss pattern, as
 * upstream's LossReplay (rattan-core/src/cells/loss.rs) applies it: entry k is the loss probability
 * after k consecutive losses, the last repeating; the count of losses in a row carries over from one
 * step to the next (upstream's `prev_loss` belongs to the cell). A one-entry pattern (every `.rtn`
 * trace) is Bernoulli loss. After a finite model ends, its last pattern stays in force (upstream:
 * `update_loss` returns false and keeps the config, "the last value will be used"). */
#define RT_CELL_API
#include "rattan_engine.h"

#include <string.h>

typedef struct {
    rt_steps steps;
    rt_step_patterns patterns;   /* step i's loss pattern */
    uint32_t run;                /* packets lost in a row so far */
    int first_packet, started;
} loss_trace_t;

static int loss_trace_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    loss_trace_t *l = state;
    rt_steps *s = &l->steps;
    (void)n_outputs;
    if (rt_cfg_trace_start(c, &l->first_packet) < 0) return rt_cfg_status(c);
    rt_config trace = rt_cfg_get(c, "trace");
    int rc = rt_steps_from_loss_trace(s, &l->patterns, &trace, rt_cfg_bool(c, "loop"), now);
    if (rc < 0) return rc;
    for (uint32_t i = 0; i < l->patterns.n_p; i++)
        if (!(l->patterns.p[i] >= 0 && l->patterns.p[i] <= 1)) return rt_cfg_fail(c, "trace", "a loss probability must be between 0 and 1");
    return RT_OK;
}

static void loss_trace_destroy(void *state) {
    loss_trace_t *l = state;
    rt_steps_free(&l->steps);
    rt_step_patterns_free(&l->patterns);
}

static void loss_trace_enqueue(rt_node *n, void *state, rt_pkt *k) {
    loss_trace_t *l = state;
    if (l->first_packet && !l->started) {  /* the trace starts at the channel's first packet */
        l->steps.base = rt_trace_origin(n, k->t);
        l->steps.i = 0;
        l->started = 1;
    }
    rt_steps_at(&l->steps, k->t);
    uint32_t i = l->steps.i;  /* the step in force */
    if (rt_pattern_lost(l->patterns.p + l->patterns.off[i], l->patterns.len[i], &l->run, rt_rng_unit(rt_node_rng(n))))
        rt_drop(n, k, RT_DROP_LOSS);
    else rt_emit(n, 0, k, k->t);
}

const rt_cell_ops rt_cell_loss_trace = {.type = "loss_trace", .state_size = sizeof(loss_trace_t),
                                        .init = loss_trace_init, .destroy = loss_trace_destroy,
                                        .enqueue = loss_trace_enqueue};
