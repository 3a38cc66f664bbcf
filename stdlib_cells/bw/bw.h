/* The serializer shared by `bw` (a rate) and `bw_trace` (Mahimahi delivery opportunities):
 * one packet on the wire at a time, the rest in an rt_queue. */
#ifndef RATTAN_BW_H
#define RATTAN_BW_H

#include "queues/queue.h"

typedef struct bw bw_t;

struct bw {
    rt_queue q;
    uint64_t rate_bps;
    uint32_t overhead;
    uint64_t head_start;     /* when the head packet starts transmitting */
    uint64_t head_finish;    /* when its last bit leaves (RT_NEVER at rate 0) */
    uint64_t frac;           /* remainder of bits*1e9/rate carried to the next packet: no drift */
    uint64_t busy_until;     /* when the link is next free */
    /* when the head packet `h`, starting at `at`, has left */
    uint64_t (*finish)(bw_t *b, const rt_pkt *h, uint64_t at);
    /* bw_trace */
    uint64_t *trace;
    uint32_t trace_len, trace_mtu, trace_idx;
    uint64_t trace_period, trace_base;
    int trace_loop, trace_started;
    int64_t trace_budget;    /* bytes left in the current opportunity */
    rt_steps rates;          /* bw_trace with a netem-trace model: the rate as a step function */
    int rate_steps;
};

/* When the head packet `h`, starting at `at`, has left at `rate_bps` (the remainder carried in frac). */
uint64_t bw_rate_finish(bw_t *b, const rt_pkt *h, uint64_t at);
/* The parts bw and bw_trace share: `overhead` and `queue`. */
int bw_init_common(bw_t *b, const rt_config *c);
void bw_enqueue(rt_node *n, void *state, rt_pkt *k);
uint64_t bw_next_event(const void *state);
void bw_fire(rt_node *n, void *state, uint64_t t);
/* The link is free from `start`: choose the next packet (CoDel may drop some) and time it. */
void bw_next(rt_node *n, bw_t *b, uint64_t start);
/* The rate becomes `v` at `now`; a packet on the wire sends its remaining bits at the new rate. */
void bw_set_rate(rt_node *n, bw_t *b, uint64_t v, uint64_t now);

#endif
