/* The queue of bw-like cells: limits (droptail, drophead, infinite) and AQM (CoDel, PIE, RED).
 * Shared by stdlib_cells/bw and stdlib_cells/bw_trace; the kinds' parameters are in *.schema.json here.
 *
 * The cell keeps the packet it is sending at the head of `q` (the packet "on the wire") and asks
 * rt_queue_head for the next one each time the link becomes free. As in upstream Rattan
 * (rattan-core/src/cells/bandwidth/queue/), Linux qdiscs and Mahimahi, the packet being sent has
 * left the queue: limits and AQM count only the packets waiting behind it (`waiting`,
 * `waiting_bytes`). A limit of 0 (`packets = 0` or `bytes = 0`) therefore holds nothing: a packet
 * passes only when the link is idle, as upstream's zero-buffer queues. */
#ifndef RATTAN_QUEUE_H
#define RATTAN_QUEUE_H

#define RT_CELL_API
#include "rattan_engine.h"

/* Queue kinds (the `kind` of a queue record) and active queue management (besides the limits). */
enum { RT_QUEUE_INFINITE, RT_QUEUE_DROPTAIL, RT_QUEUE_DROPHEAD };
enum { RT_AQM_NONE, RT_AQM_CODEL, RT_AQM_PIE, RT_AQM_RED };

#define RT_QUEUE_UNLIMITED UINT64_MAX

typedef struct {
    int kind, aqm;
    int zero;                        /* a limit of 0: a packet passes only when the link is idle */
    uint64_t limit_packets, limit_bytes;  /* RT_QUEUE_UNLIMITED: none */
    uint32_t overhead;               /* bytes added to each packet counted against `limit_bytes` */
    rt_fifo q;                       /* the packet on the wire (once chosen) and those waiting */
    const rt_pkt *wire;              /* the head once rt_queue_head chose it; NULL: none yet */
    uint64_t waiting, waiting_bytes; /* behind the packet on the wire; bytes include `overhead` */
    rt_rng rng;                      /* with `seed`: the queue's own generator */
    int own_rng;
    /* CoDel (upstream codel.rs, after Linux and Mahimahi) */
    uint64_t target, interval, mtu;
    uint64_t first_above, drop_next;
    uint32_t count, lastcount;
    int dropping, above;
    /* PIE (upstream pie.rs: RFC 8033 Appendix B) */
    uint64_t t_update;
    double ref_del, max_burst_ms, alpha, beta;
    double pie_p, old_del, burst_allowance, avg_drate;
    uint64_t start_update, start_measurement, dq_count;
    int has_update, measuring;
    /* RED (upstream red.rs: RED with optional ARED) */
    double w_q, min_th, max_th, max_p, pkt_tx_ns;
    int adaptive;
    double red_avg;
    int64_t red_count;
    uint64_t idle_start, last_max_p_update;
    int idle, has_max_p_update;
} rt_queue;

/* From a queue record of the plan ({kind: "droptail", packets: 100}, {kind: "codel", target, ...}). */
int rt_queue_init(rt_queue *q, const rt_config *c);
/* A packet arrives at k->t: queue it (1), or drop it or older packets as the limits and the AQM
 * say, counting the drops on `n`. `rate_bps` is unused (kept for the cells' calls). */
int rt_queue_admit(rt_queue *q, rt_node *n, rt_pkt *k, uint64_t rate_bps);
/* The packet that starts transmitting at `at`, after CoDel's drops at the head (NULL: empty). The
 * cell leaves it at the head of `q` while it is on the wire and pops it when it has left. */
rt_pkt *rt_queue_head(rt_queue *q, rt_node *n, uint64_t at);

#endif
