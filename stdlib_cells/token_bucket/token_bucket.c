/* `token_bucket`: a policer (drops what does not conform) or, with a `limit`, a shaper (queues it);
 * optionally a second, peak-rate bucket of `min_burst` bytes. The bucket starts full. */
#define RT_CELL_API
#include "rattan_engine.h"

#include <string.h>

typedef struct {
    struct {
        uint64_t rate_bps, burst_bytes;
        uint64_t limit_bytes;     /* 0: police (drop excess); > 0: shape, queueing up to this many bytes
                                   * (UINT64_MAX: `unlimited`) */
        uint64_t peak_rate_bps;   /* 0: no peak-rate bucket */
        uint64_t min_burst_bytes; /* size of the peak-rate bucket */
    } cfg;
    double tokens, ptokens;  /* bytes */
    uint64_t last;           /* time of the last refill */
    rt_fifo q;
} tbf_t;

enum { P_RATE, P_BURST, P_PEAK_RATE };
static const char *const params[] = {"rate", "burst", "peak_rate", NULL};

#define TOKEN_EPS 1e-6

static int tbf_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    tbf_t *b = state;
    (void)n_outputs;
    b->cfg.rate_bps = rt_cfg_u64(c, "rate");
    b->cfg.burst_bytes = rt_cfg_u64(c, "burst");
    if (rt_cfg_kind(c, "limit") == RT_VAL_STR) {  /* `unlimited`: upstream's TokenBucket without `limit` */
        if (strcmp(rt_cfg_str(c, "limit"), "unlimited") != 0) return rt_cfg_fail(c, "limit", "expected a size or `unlimited`");
        b->cfg.limit_bytes = UINT64_MAX;
    } else {
        b->cfg.limit_bytes = rt_cfg_u64(c, "limit");
    }
    b->cfg.peak_rate_bps = rt_cfg_has(c, "peak_rate") ? rt_cfg_u64(c, "peak_rate") : 0;
    b->cfg.min_burst_bytes = rt_cfg_u64(c, "min_burst");  /* kept without a peak rate: one may be set later */
    if (rt_cfg_status(c)) return RT_EINVAL;
    if (b->cfg.burst_bytes == 0) return rt_cfg_fail(c, "burst", "must be at least 1 byte");
    if (b->cfg.peak_rate_bps && b->cfg.min_burst_bytes == 0) return rt_cfg_fail(c, "min_burst", "must be at least 1 byte");
    b->tokens = (double)b->cfg.burst_bytes;  /* a full bucket at the start: a burst passes at once */
    b->ptokens = (double)b->cfg.min_burst_bytes;
    b->last = now;
    return RT_OK;
}

static void refill(tbf_t *b, uint64_t t) {
    if (t <= b->last) return;
    double dt = (double)(t - b->last);
    b->tokens += dt * (double)b->cfg.rate_bps / 8e9;
    if (b->tokens > (double)b->cfg.burst_bytes) b->tokens = (double)b->cfg.burst_bytes;
    if (b->cfg.peak_rate_bps) {
        b->ptokens += dt * (double)b->cfg.peak_rate_bps / 8e9;
        if (b->ptokens > (double)b->cfg.min_burst_bytes) b->ptokens = (double)b->cfg.min_burst_bytes;
    }
    b->last = t;
}

static int conforms(const tbf_t *b, uint32_t size) {
    return b->tokens + TOKEN_EPS >= size && (!b->cfg.peak_rate_bps || b->ptokens + TOKEN_EPS >= size);
}

static void take(tbf_t *b, uint32_t size) {
    b->tokens -= size;
    if (b->cfg.peak_rate_bps) b->ptokens -= size;
}

/* When the shaper's head packet conforms (RT_NEVER if it never can). */
static uint64_t tbf_next_event(const void *state) {
    const tbf_t *b = state;
    if (!b->q.head) return RT_NEVER;
    double size = b->q.head->size, wait = 0;
    if (b->tokens + TOKEN_EPS < size) {
        if (!b->cfg.rate_bps || size > (double)b->cfg.burst_bytes) return RT_NEVER;
        wait = (size - b->tokens) * 8e9 / (double)b->cfg.rate_bps;
    }
    if (b->cfg.peak_rate_bps && b->ptokens + TOKEN_EPS < size) {
        if (size > (double)b->cfg.min_burst_bytes) return RT_NEVER;
        double w = (size - b->ptokens) * 8e9 / (double)b->cfg.peak_rate_bps;
        if (w > wait) wait = w;
    }
    uint64_t t = b->last + (uint64_t)ceil(wait);
    uint64_t arrive = b->q.head->t;
    return t > arrive ? t : arrive;
}

static void tbf_enqueue(rt_node *n, void *state, rt_pkt *k) {
    tbf_t *b = state;
    uint64_t t = k->t;
    refill(b, t);
    if (k->size > b->cfg.burst_bytes || (b->cfg.peak_rate_bps && k->size > b->cfg.min_burst_bytes)) {
        rt_drop(n, k, RT_DROP_POLICER);  /* can never conform */
        return;
    }
    if (b->cfg.limit_bytes == 0) {  /* policer */
        if (conforms(b, k->size)) { take(b, k->size); rt_emit(n, 0, k, t); }
        else rt_drop(n, k, RT_DROP_POLICER);
        return;
    }
    if (!b->q.head && conforms(b, k->size)) { take(b, k->size); rt_emit(n, 0, k, t); return; }
    if (b->q.bytes + k->size > b->cfg.limit_bytes || b->q.bytes + k->size < b->q.bytes) { rt_drop(n, k, RT_DROP_QUEUE_FULL); return; }
    rt_fifo_push(&b->q, k);
    rt_hold(n, k, +1);
    rt_reschedule(n);
}

static void tbf_fire(rt_node *n, void *state, uint64_t t) {
    tbf_t *b = state;
    for (;;) {
        uint64_t ready = tbf_next_event(b);
        if (ready > t) break;
        refill(b, ready);
        rt_pkt *k = rt_fifo_pop(&b->q);
        take(b, k->size);
        rt_hold(n, k, -1);
        rt_emit(n, 0, k, ready);
    }
}

/* The buckets are brought up to `now` at the old rate first; a smaller bucket loses its excess. */
static int tbf_control(rt_node *n, void *state, int param, double value, uint64_t now) {
    tbf_t *b = state;
    (void)n;
    if (!(value >= 0 && value < 1.8e19)) return RT_EINVAL;
    uint64_t v = (uint64_t)value;
    if (param == P_BURST && v == 0) return RT_EINVAL;
    if (param == P_PEAK_RATE && v && !b->cfg.min_burst_bytes) return RT_EINVAL;
    refill(b, now);
    if (param == P_RATE) b->cfg.rate_bps = v;
    else if (param == P_PEAK_RATE) { b->cfg.peak_rate_bps = v; b->ptokens = (double)b->cfg.min_burst_bytes; }
    else {
        b->cfg.burst_bytes = v;
        if (b->tokens > (double)v) b->tokens = (double)v;
    }
    return RT_OK;
}

static double tbf_read(const void *state, int param, uint64_t now) {
    const tbf_t *b = state;
    (void)now;
    return param == P_RATE ? (double)b->cfg.rate_bps : param == P_BURST ? (double)b->cfg.burst_bytes
                                                                        : (double)b->cfg.peak_rate_bps;
}

const rt_cell_ops rt_cell_token_bucket = {.type = "token_bucket", .state_size = sizeof(tbf_t), .params = params,
                                          .init = tbf_init, .enqueue = tbf_enqueue, .next_event = tbf_next_event,
                                          .fire = tbf_fire, .control = tbf_control, .read = tbf_read};
