/* `bw`: a link of `rate` bit/s with per-packet `overhead` and a queue (see queues/). The exact
 * serialization time carries its remainder, so a long run has no drift; a change of rate in the
 * middle of a packet sends the bits still to go at the new rate. */
#include "bw/bw.h"

enum { P_RATE, P_OVERHEAD };
static const char *const params[] = {"rate", "overhead", NULL};

int bw_init_common(bw_t *b, const rt_config *c) {
    uint64_t overhead = rt_cfg_u64(c, "overhead");
    if (overhead > UINT32_MAX) return rt_cfg_fail(c, "overhead", "too large");
    b->overhead = (uint32_t)overhead;
    rt_config queue = rt_cfg_get(c, "queue");
    if (rt_cfg_status(c)) return RT_EINVAL;
    return rt_queue_init(&b->q, &queue);
}

uint64_t bw_rate_finish(bw_t *b, const rt_pkt *h, uint64_t at) {
    if (b->rate_bps == 0) return RT_NEVER;
    unsigned __int128 num = (unsigned __int128)(h->size + b->overhead) * 8u * 1000000000u + b->frac;
    b->frac = (uint64_t)(num % b->rate_bps);
    return at + (uint64_t)(num / b->rate_bps);
}

static int bw_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    bw_t *b = state;
    (void)n_outputs; (void)now;
    b->rate_bps = rt_cfg_u64(c, "rate");
    b->finish = bw_rate_finish;
    return bw_init_common(b, c);
}

void bw_next(rt_node *n, bw_t *b, uint64_t start) {
    rt_pkt *h = rt_queue_head(&b->q, n, start);
    if (!h) return;
    if (start < h->t) { start = h->t; b->frac = 0; }  /* the link was idle: no remainder to carry */
    b->head_start = start;
    b->head_finish = b->finish(b, h, start);
}

void bw_enqueue(rt_node *n, void *state, rt_pkt *k) {
    bw_t *b = state;
    int was_empty = b->q.q.head == NULL;
    if (!rt_queue_admit(&b->q, n, k, b->rate_bps)) return;
    if (was_empty) bw_next(n, b, b->busy_until > k->t ? b->busy_until : k->t);
    rt_reschedule(n);
}

uint64_t bw_next_event(const void *state) {
    const bw_t *b = state;
    return b->q.q.head ? b->head_finish : RT_NEVER;
}

void bw_fire(rt_node *n, void *state, uint64_t t) {
    bw_t *b = state;
    while (b->q.q.head && b->head_finish <= t) {
        rt_pkt *k = rt_fifo_pop(&b->q.q);
        uint64_t done = b->head_finish;
        rt_hold(n, k, -1);
        b->busy_until = done;
        bw_next(n, b, done);
        rt_emit(n, 0, k, done);
    }
}

static int bw_control(rt_node *n, void *state, int param, double value, uint64_t now) {
    bw_t *b = state;
    if (!(value >= 0 && value < 1.8e19)) return RT_EINVAL;
    uint64_t v = (uint64_t)value;
    if (param == P_OVERHEAD) {  /* from the next packet on */
        if (v > 65535) return RT_EINVAL;
        b->overhead = (uint32_t)v;
        return RT_OK;
    }
    bw_set_rate(n, b, v, now);
    return RT_OK;
}

void bw_set_rate(rt_node *n, bw_t *b, uint64_t v, uint64_t now) {
    if (b->q.q.head && b->head_start < now && b->head_finish != RT_NEVER && b->head_finish > now) {
        /* a packet is on the wire: the bits not yet sent go at the new rate */
        unsigned __int128 left_bits = (unsigned __int128)(b->head_finish - now) * b->rate_bps;
        b->rate_bps = v;
        b->frac = 0;
        b->head_finish = v ? now + (uint64_t)(left_bits / v) : RT_NEVER;
    } else if (b->q.q.head && b->head_finish == RT_NEVER) {  /* stalled at rate 0: start now */
        uint64_t start = b->head_start > now ? b->head_start : now;
        b->rate_bps = v;
        b->frac = 0;
        bw_next(n, b, start);
    } else if (b->q.q.head && b->head_start >= now) {  /* not started yet: time it again */
        b->rate_bps = v;
        b->frac = 0;
        bw_next(n, b, b->head_start);
    } else {
        b->rate_bps = v;
    }
}

static double bw_read(const void *state, int param, uint64_t now) {
    const bw_t *b = state;
    (void)now;
    return param == P_RATE ? (double)b->rate_bps : (double)b->overhead;
}

const rt_cell_ops rt_cell_bw = {.type = "bw", .state_size = sizeof(bw_t), .params = params, .init = bw_init,
                                .enqueue = bw_enqueue, .next_event = bw_next_event, .fire = bw_fire,
                                .control = bw_control, .read = bw_read};
