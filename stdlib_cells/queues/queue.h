/* The queue of bw-like cells: limits (droptail, drophead, infinite) and AQM (CoDel, PIE, RED).
 * Shared by stdlib_cells/bw and stdlib_cells/bw_trace; the kinds' parameters are in *.schema.json here. */
#ifndef RATTAN_QUEUE_H
#define RATTAN_QUEUE_H

#define RT_CELL_API
#include "rattan_engine.h"

/* Queue kinds (the `kind` of a queue record) and active queue management (besides the limits). */
enum { RT_QUEUE_INFINITE, RT_QUEUE_DROPTAIL, RT_QUEUE_DROPHEAD };
enum { RT_AQM_NONE, RT_AQM_CODEL, RT_AQM_PIE, RT_AQM_RED };

typedef struct {
    int kind, aqm;
    uint64_t limit_packets, limit_bytes;
    uint64_t target, interval;       /* CoDel: target, interval; PIE: target, t_update */
    double red_min, red_max, red_max_p;
    rt_fifo q;
    /* CoDel (RFC 8289) */
    uint64_t first_above, drop_next;
    uint32_t count, lastcount;
    int dropping;
    /* PIE (RFC 8033) */
    double pie_p;
    uint64_t pie_qdelay_old, pie_last_update;
    /* RED */
    double red_avg;
    int64_t red_count;
    uint64_t idle_since;
} rt_queue;

/* From a queue record of the plan ({kind: "droptail", packets: 100}, {kind: "codel", target, ...}). */
int rt_queue_init(rt_queue *q, const rt_config *c);
/* A packet arrives at k->t on a link serving `rate_bps` (0: unknown): queue it (1), or drop it or
 * an older packet as the limits and the AQM say, counting the drops on `n`. */
int rt_queue_admit(rt_queue *q, rt_node *n, rt_pkt *k, uint64_t rate_bps);
/* The packet that starts transmitting at `at`, after CoDel's drops at the head (NULL: empty). */
rt_pkt *rt_queue_head(rt_queue *q, rt_node *n, uint64_t at);

#endif
