/* `delay_trace`: each packet gets the delay a step trace gives for the moment it arrives;
 * packets keep their order (one that would overtake leaves right after the earlier one). With
 * `start = first_packet` the trace's time 0 is the first packet into the channel (upstream's
 * DelayReplay under its default `first-packet` feature). With `round_up`, a packet's arrival time is
 * first rounded up to the next multiple of `round_up` counted from the trace's time 0, and the trace
 * is read at that time (upstream's DelayReplayCell `ingress_round_up`, rattan-core/src/cells/delay.rs). */
#define RT_CELL_API
#include "rattan_engine.h"

#include <string.h>

typedef struct {
    rt_steps steps;
    rt_fifo fifo;
    uint64_t last_depart;
    int first_packet, started;
    uint64_t round_up_ns, origin;  /* round_up (0: off) and the trace's time 0 it counts from */
} delay_trace_t;

static int delay_trace_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    delay_trace_t *d = state;
    rt_steps *s = &d->steps;
    (void)n_outputs;
    if (rt_cfg_trace_start(c, &d->first_packet) < 0) return rt_cfg_status(c);
    d->round_up_ns = rt_cfg_has(c, "round_up") ? rt_cfg_u64(c, "round_up") : 0;
    d->origin = now;  /* `start = run`; set again at the first packet with `start = first_packet` */
    rt_config trace = rt_cfg_get(c, "trace");
    int rc = rt_steps_from_trace(s, &trace, rt_cfg_bool(c, "loop"), now);
    if (rc < 0) return rc;
    for (uint32_t i = 0; i < s->len; i++)
        if (!(s->value[i] >= 0 && s->value[i] < 1.8e19)) return rt_cfg_fail(c, "trace", "a delay must not be negative");
    return RT_OK;
}

static void delay_trace_destroy(void *state) { rt_steps_free(&((delay_trace_t *)state)->steps); }

static void delay_trace_enqueue(rt_node *n, void *state, rt_pkt *k) {
    delay_trace_t *d = state;
    if (d->first_packet && !d->started) {  /* the trace starts at the channel's first packet */
        d->steps.base = rt_trace_origin(n, k->t);
        d->steps.i = 0;
        d->started = 1;
        d->origin = d->steps.base;  /* round_up's time 0 (steps.base moves on as the trace loops) */
    }
    uint64_t t = rt_round_up_from(k->t, d->origin, d->round_up_ns);
    uint64_t dep = t + (uint64_t)rt_steps_at(&d->steps, t);
    if (dep < d->last_depart) dep = d->last_depart;
    d->last_depart = dep;
    k->depart = dep;
    rt_fifo_push(&d->fifo, k);
    rt_hold(n, k, +1);
    rt_reschedule(n);
}

static uint64_t delay_trace_next_event(const void *state) {
    const delay_trace_t *d = state;
    return d->fifo.head ? d->fifo.head->depart : RT_NEVER;
}

static void delay_trace_fire(rt_node *n, void *state, uint64_t t) {
    delay_trace_t *d = state;
    while (d->fifo.head && d->fifo.head->depart <= t) {
        rt_pkt *k = rt_fifo_pop(&d->fifo);
        rt_hold(n, k, -1);
        rt_emit(n, 0, k, k->depart);
    }
}

const rt_cell_ops rt_cell_delay_trace = {.type = "delay_trace", .state_size = sizeof(delay_trace_t),
                                         .init = delay_trace_init, .destroy = delay_trace_destroy,
                                         .enqueue = delay_trace_enqueue, .next_event = delay_trace_next_event,
                                         .fire = delay_trace_fire};
