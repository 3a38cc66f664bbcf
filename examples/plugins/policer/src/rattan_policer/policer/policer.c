/* `policer`: a link that sends one packet at a time at `rate`, holding up to `queue` bytes
 * (a drop-tail queue); what does not fit is dropped. Replace it with your model.
 *
 * The interface (rattan_engine.h, part 2, under RT_CELL_API; docs/cells-c.md in rattan):
 * - A cell is an rt_cell_ops table (at the end of this file). The engine owns the packets, the
 *   counters and the clock; the cell owns `state_size` bytes of state, zeroed before `init`.
 * - Time is logical (ns). A packet carries the time it reached this cell (k->t); the cell says when it
 *   leaves with rt_emit(n, port, k, t), t >= k->t. A cell never reads a clock, so the same cell runs in
 *   virtual time (`rattan sim`, deterministic) and in real time (`rattan run`).
 * - Every packet ends in exactly one of: rt_emit (sent on), rt_drop (counted by reason and freed),
 *   or held (rt_hold(+1) when kept; rt_hold(-1) before it is emitted from `fire`).
 * - No allocation per packet: packets come from the engine's pool; rt_fifo chains them.
 * - The schema (cell.schema.json next to this file) is the single source of the parameters: init
 *   receives them in the plan's form, in base units (ns, bit/s, bytes), defaults filled in.
 */
#define RT_CELL_API
#include "rattan_engine.h"

typedef struct {
    uint64_t rate_bps;      /* runtime parameter `rate` */
    uint64_t queue_bytes;   /* what the cell may hold, the packet being sent included */
    uint64_t free_at;       /* when the link has sent everything it started */
    rt_fifo q;              /* held packets, oldest first; the head's k->depart is planned */
} policer_t;

/* Runtime parameters, by index: the schema's `x-runtime` properties, in this order. */
enum { P_RATE };
static const char *const params[] = {"rate", NULL};

/* Time to send `size` bytes at `rate` bit/s, in ns. */
static uint64_t send_ns(uint64_t size, uint64_t rate_bps) {
    return (uint64_t)((double)size * 8e9 / (double)rate_bps + 0.5);
}

/* Read the configuration with the rt_cfg_* readers. A missing or mistyped parameter records one error
 * naming it, so read everything, then return rt_cfg_status; rt_cfg_fail refuses a value with a reason
 * (both become an EngineError / `rattan sim` message naming the cell and the parameter). */
static int policer_init(void *state, rt_config *cfg, int n_outputs, uint64_t now) {
    policer_t *s = state;
    (void)n_outputs;  /* the schema's x-rattan.outputs (1) */
    s->rate_bps = rt_cfg_u64(cfg, "rate");
    s->queue_bytes = rt_cfg_u64(cfg, "queue");  /* has a default in the schema: always present */
    if (rt_cfg_status(cfg)) return RT_EINVAL;
    if (s->rate_bps == 0) return rt_cfg_fail(cfg, "rate", "must be at least 1 bit/s");
    s->free_at = now;
    return RT_OK;
}

/* The packet at the head starts when it is there and the link is free. */
static void plan_head(policer_t *s) {
    rt_pkt *k = s->q.head;
    if (!k) return;
    uint64_t start = k->t > s->free_at ? k->t : s->free_at;
    k->depart = start + send_ns(k->size, s->rate_bps);
    s->free_at = k->depart;
}

/* A packet reaches the cell at logical time k->t: emit, drop or hold it. */
static void policer_enqueue(rt_node *n, void *state, rt_pkt *k) {
    policer_t *s = state;
    if (s->q.bytes + k->size > s->queue_bytes) {
        rt_drop(n, k, RT_DROP_QUEUE_FULL);
        return;
    }
    int was_idle = s->q.head == NULL;
    rt_fifo_push(&s->q, k);
    rt_hold(n, k, +1);
    if (was_idle) {
        plan_head(s);
        rt_reschedule(n);  /* next_event changed: tell the engine */
    }
}

/* When the cell next releases a packet (RT_NEVER: holds none). A cell that never holds packets
 * leaves next_event and fire NULL. */
static uint64_t policer_next_event(const void *state) {
    const policer_t *s = state;
    return s->q.head ? s->q.head->depart : RT_NEVER;
}

/* Release everything due at `t` (the engine calls this at next_event's time). */
static void policer_fire(rt_node *n, void *state, uint64_t t) {
    policer_t *s = state;
    while (s->q.head && s->q.head->depart <= t) {
        rt_pkt *k = rt_fifo_pop(&s->q);
        rt_hold(n, k, -1);
        rt_emit(n, 0, k, k->depart);
        plan_head(s);
    }
}

/* Change runtime parameter `param` at logical time `now` (a timeline, the control API, a Python
 * cell). Values come as doubles in base units; RT_EINVAL refuses one. The packet being sent keeps
 * its departure; the next ones are sent at the new rate. */
static int policer_control(rt_node *n, void *state, int param, double value, uint64_t now) {
    policer_t *s = state;
    (void)n; (void)now;
    if (param != P_RATE || !(value >= 1 && value < 1.8e19)) return RT_EINVAL;
    s->rate_bps = (uint64_t)value;
    return RT_OK;
}

/* The value of `param` in force at `now` (telemetry, `rattan ctl get`). */
static double policer_read(const void *state, int param, uint64_t now) {
    const policer_t *s = state;
    (void)param; (void)now;
    return (double)s->rate_bps;
}

/* `type` is the schema's title. `destroy` (NULL here) frees what init allocated. */
const rt_cell_ops rt_cell_policer = {
    .type = "policer", .state_size = sizeof(policer_t), .params = params,
    .init = policer_init, .enqueue = policer_enqueue,
    .next_event = policer_next_event, .fire = policer_fire,
    .control = policer_control, .read = policer_read,
};

/* The library's cells, once per library: defines rt_plugin_abi (this header's RT_ABI_VERSION, checked
 * when rattan loads the library) and rt_plugin_cells. */
RT_PLUGIN(&rt_cell_policer);
