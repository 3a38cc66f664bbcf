/* `aggregate`: holds packets and releases them in bursts at the end of fixed slots, as Wi-Fi frame
 * aggregation (one A-MPDU per transmit opportunity) and cellular schedulers (one grant per TTI) do.
 *
 * Slots of `interval` start at `origin` (the cell's start, or the last change of `interval`); at each
 * slot's end the packets that arrived before it leave in FIFO order, up to `max_bytes` in all. The
 * budget is per slot: what a slot leaves unused is lost, as an unused grant is. */
#define RT_CELL_API
#include "rattan_engine.h"

typedef struct {
    struct {
        uint64_t interval_ns;
        uint64_t max_bytes;   /* released per slot at most */
        uint64_t limit_bytes; /* waiting packets at most */
    } cfg;
    uint64_t origin;  /* slot ends are origin + k * interval, k >= 1 */
    uint64_t last;    /* the last slot end that released (origin until one has) */
    rt_fifo q;
} aggregate_t;

enum { P_INTERVAL, P_MAX_BYTES };
static const char *const params[] = {"interval", "max_bytes", NULL};

static int aggregate_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    aggregate_t *a = state;
    (void)n_outputs;
    a->cfg.interval_ns = rt_cfg_u64(c, "interval");
    a->cfg.max_bytes = rt_cfg_u64(c, "max_bytes");
    a->cfg.limit_bytes = rt_cfg_u64(c, "limit");
    if (rt_cfg_status(c)) return RT_EINVAL;
    if (a->cfg.interval_ns == 0) return rt_cfg_fail(c, "interval", "must be longer than 0 ns");
    if (a->cfg.max_bytes == 0) return rt_cfg_fail(c, "max_bytes", "must be at least 1 byte");
    if (a->cfg.limit_bytes == 0) return rt_cfg_fail(c, "limit", "must be at least 1 byte");
    a->origin = a->last = now;
    return RT_OK;
}

/* The end of the slot a packet arriving at t belongs to: the first slot end after t (a packet at a
 * slot's very end is in the next slot, whichever of the two events the engine runs first). */
static uint64_t slot_end_after(const aggregate_t *a, uint64_t t) {
    if (t < a->origin) return a->origin + a->cfg.interval_ns;  /* waiting since before a change of interval */
    uint64_t k = (t - a->origin) / a->cfg.interval_ns + 1;
    return a->origin + k * a->cfg.interval_ns;
}

/* The next slot end with a packet to release: after the head's arrival and after the last release. */
static uint64_t aggregate_next_event(const void *state) {
    const aggregate_t *a = state;
    if (!a->q.head) return RT_NEVER;
    uint64_t t = slot_end_after(a, a->q.head->t);
    uint64_t next = a->last + a->cfg.interval_ns;
    return t > next ? t : next;
}

static void aggregate_enqueue(rt_node *n, void *state, rt_pkt *k) {
    aggregate_t *a = state;
    if (k->size > a->cfg.max_bytes) { rt_drop(n, k, RT_DROP_CELL); return; }  /* no slot can carry it */
    if (a->q.bytes + k->size > a->cfg.limit_bytes) { rt_drop(n, k, RT_DROP_QUEUE_FULL); return; }
    rt_fifo_push(&a->q, k);
    rt_hold(n, k, +1);
    rt_reschedule(n);
}

/* One slot end: release its burst in FIFO order until the next packet does not fit. */
static void release(rt_node *n, aggregate_t *a, uint64_t end) {
    uint64_t left = a->cfg.max_bytes;
    while (a->q.head && a->q.head->t < end) {
        rt_pkt *k = a->q.head;
        if (k->size > a->cfg.max_bytes) {  /* max_bytes shrank below it while it waited */
            rt_fifo_pop(&a->q);
            rt_hold(n, k, -1);
            rt_drop(n, k, RT_DROP_CELL);
            continue;
        }
        if (k->size > left) break;
        left -= k->size;
        rt_fifo_pop(&a->q);
        rt_hold(n, k, -1);
        rt_emit(n, 0, k, end);
    }
    a->last = end;
}

static void aggregate_fire(rt_node *n, void *state, uint64_t t) {
    aggregate_t *a = state;
    for (;;) {
        uint64_t end = aggregate_next_event(a);
        if (end > t) break;
        release(n, a, end);
    }
}

/* A new interval starts a slot at `now`; a new max_bytes holds from the next slot end. */
static int aggregate_control(rt_node *n, void *state, int param, double value, uint64_t now) {
    aggregate_t *a = state;
    (void)n;
    if (!(value >= 1 && value < 1.8e19)) return RT_EINVAL;
    uint64_t v = (uint64_t)value;
    if (param == P_INTERVAL) {
        a->cfg.interval_ns = v;
        a->origin = a->last = now;
    } else {
        a->cfg.max_bytes = v;
    }
    return RT_OK;
}

static double aggregate_read(const void *state, int param, uint64_t now) {
    const aggregate_t *a = state;
    (void)now;
    return param == P_INTERVAL ? (double)a->cfg.interval_ns : (double)a->cfg.max_bytes;
}

const rt_cell_ops rt_cell_aggregate = {.type = "aggregate", .state_size = sizeof(aggregate_t), .params = params,
                                       .init = aggregate_init, .enqueue = aggregate_enqueue,
                                       .next_event = aggregate_next_event, .fire = aggregate_fire,
                                       .control = aggregate_control, .read = aggregate_read};
