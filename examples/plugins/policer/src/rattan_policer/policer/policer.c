/* `policer`: a single-rate policer. Tokens (bytes) accumulate at `rate` up to `burst`; a packet that
 * finds at least its size in tokens takes them and passes at once, any other is dropped. The bucket
 * starts full. Written from scratch as a plugin (rattan new-cell policer --lang c); see
 * docs/cells-c.md in rattan for the interface.
 *
 * Tokens are counted exactly, in bit-nanoseconds: a bucket of B bytes holds B * 8e9 of them and a
 * rate of R bit/s adds R per ns, so no rounding accumulates over a long run. */
#define RT_CELL_API
#include "rattan_engine.h"

typedef struct {
    uint64_t rate_bps;       /* runtime `rate` */
    uint64_t burst_bytes;
    unsigned __int128 tokens, cap;  /* bit-nanoseconds (8e9 per byte) */
    uint64_t last;           /* logical time the tokens were counted at */
} policer_t;

enum { P_RATE };
static const char *const params[] = {"rate", NULL};

#define PER_BYTE ((unsigned __int128)8000000000u)

static int policer_init(void *state, rt_config *cfg, int n_outputs, uint64_t now) {
    policer_t *p = state;
    (void)n_outputs;
    p->rate_bps = rt_cfg_u64(cfg, "rate");
    p->burst_bytes = rt_cfg_u64(cfg, "burst");
    if (rt_cfg_status(cfg)) return RT_EINVAL;
    if (p->burst_bytes == 0) return rt_cfg_fail(cfg, "burst", "must be at least 1 byte");
    p->cap = p->tokens = p->burst_bytes * PER_BYTE;
    p->last = now;
    return RT_OK;
}

/* Tokens earned from the last count up to t, at the rate in force. */
static void refill(policer_t *p, uint64_t t) {
    if (t <= p->last) return;
    unsigned __int128 add = (unsigned __int128)(t - p->last) * p->rate_bps;
    p->tokens = add >= p->cap - p->tokens ? p->cap : p->tokens + add;
    p->last = t;
}

static void policer_enqueue(rt_node *n, void *state, rt_pkt *k) {
    policer_t *p = state;
    refill(p, k->t);
    unsigned __int128 need = k->size * PER_BYTE;
    if (p->tokens >= need) {
        p->tokens -= need;
        rt_emit(n, 0, k, k->t);
    } else {
        rt_drop(n, k, RT_DROP_POLICER);
    }
}

/* A new rate counts from `now`: the tokens up to now are earned at the old one. */
static int policer_control(rt_node *n, void *state, int param, double value, uint64_t now) {
    policer_t *p = state;
    (void)n;
    if (param != P_RATE || !(value >= 0 && value < 1.8e19)) return RT_EINVAL;
    refill(p, now);
    p->rate_bps = (uint64_t)value;
    return RT_OK;
}

static double policer_read(const void *state, int param, uint64_t now) {
    (void)param; (void)now;
    return (double)((const policer_t *)state)->rate_bps;
}

const rt_cell_ops rt_cell_policer = {
    .type = "policer", .state_size = sizeof(policer_t), .params = params,
    .init = policer_init, .enqueue = policer_enqueue, .control = policer_control, .read = policer_read,
};

RT_PLUGIN(&rt_cell_policer);
