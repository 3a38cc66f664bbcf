/* `loss`: drops packets at random: Bernoulli, Gilbert-Elliott, or a pattern of burst probabilities. */
#define RT_CELL_API
#include "rattan_engine.h"

#include <stdlib.h>
#include <string.h>

enum { RT_LOSS_BERNOULLI, RT_LOSS_GILBERT_ELLIOTT, RT_LOSS_PATTERN };

typedef struct {
    struct {
        int model;
        double rate;              /* Bernoulli */
        double p, r, h, k;        /* Gilbert-Elliott: transitions, loss in Bad (h) and Good (k) */
        uint32_t pattern_len;     /* loss probability after n consecutive losses; the last repeats */
    } cfg;
    double *pattern;
    uint32_t run;            /* consecutive losses so far (pattern) */
    int bad;                 /* Gilbert-Elliott state */
} loss_t;

static const char *const params[] = {"rate", NULL};

static int probability(const rt_config *c, const char *name, double *out) {
    *out = rt_cfg_float(c, name);
    if (!rt_cfg_status(c) && !(*out >= 0 && *out <= 1)) return rt_cfg_fail(c, name, "must be between 0 and 1");
    return rt_cfg_status(c);
}

/* One of: `rate` (Bernoulli), `model` (a gilbert_elliott record), `pattern` (burst probabilities). */
static int loss_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    loss_t *l = state;
    (void)n_outputs; (void)now;
    if (rt_cfg_has(c, "model")) {
        rt_config m = rt_cfg_get(c, "model");
        l->cfg.model = RT_LOSS_GILBERT_ELLIOTT;
        probability(&m, "p", &l->cfg.p);
        probability(&m, "r", &l->cfg.r);
        probability(&m, "h", &l->cfg.h);
        probability(&m, "k", &l->cfg.k);
        return rt_cfg_status(c);
    }
    if (rt_cfg_has(c, "pattern")) {
        int64_t n = rt_cfg_floats(c, "pattern", &l->pattern);
        if (n < 0) return RT_EINVAL;
        if (n == 0) return rt_cfg_fail(c, "pattern", "needs at least one probability");
        for (int64_t i = 0; i < n; i++)
            if (!(l->pattern[i] >= 0 && l->pattern[i] <= 1)) return rt_cfg_fail(c, "pattern", "probabilities must be between 0 and 1");
        l->cfg.model = RT_LOSS_PATTERN;
        l->cfg.pattern_len = (uint32_t)n;
        return RT_OK;
    }
    l->cfg.model = RT_LOSS_BERNOULLI;
    if (rt_cfg_has(c, "rate")) return probability(c, "rate", &l->cfg.rate);
    return RT_OK;
}

static void loss_destroy(void *state) { free(((loss_t *)state)->pattern); }

static int lost(loss_t *l, rt_rng *rng) {
    double u = rt_rng_unit(rng);
    switch (l->cfg.model) {
    case RT_LOSS_GILBERT_ELLIOTT: {
        int drop = u < (l->bad ? l->cfg.h : l->cfg.k);
        double v = rt_rng_unit(rng);
        if (l->bad) { if (v < l->cfg.r) l->bad = 0; }
        else if (v < l->cfg.p) l->bad = 1;
        return drop;
    }
    case RT_LOSS_PATTERN:
        return rt_pattern_lost(l->pattern, l->cfg.pattern_len, &l->run, u);
    default:
        return u < l->cfg.rate;
    }
}

static void loss_enqueue(rt_node *n, void *state, rt_pkt *k) {
    if (lost(state, rt_node_rng(n))) rt_drop(n, k, RT_DROP_LOSS);
    else rt_emit(n, 0, k, k->t);
}

/* A new `rate` makes the cell a Bernoulli one from now on. */
static int loss_control(rt_node *n, void *state, int param, double value, uint64_t now) {
    loss_t *l = state;
    (void)n; (void)param; (void)now;
    if (!(value >= 0 && value <= 1)) return RT_EINVAL;
    l->cfg.model = RT_LOSS_BERNOULLI;
    l->cfg.rate = value;
    return RT_OK;
}

static double loss_read(const void *state, int param, uint64_t now) {
    const loss_t *l = state;
    (void)param; (void)now;
    if (l->cfg.model == RT_LOSS_GILBERT_ELLIOTT) {  /* the stationary loss rate */
        double pb = l->cfg.p + l->cfg.r > 0 ? l->cfg.p / (l->cfg.p + l->cfg.r) : 0;
        return pb * l->cfg.h + (1 - pb) * l->cfg.k;
    }
    return l->cfg.model == RT_LOSS_PATTERN ? l->pattern[0] : l->cfg.rate;
}

const rt_cell_ops rt_cell_loss = {.type = "loss", .state_size = sizeof(loss_t), .params = params,
                                  .init = loss_init, .destroy = loss_destroy, .enqueue = loss_enqueue,
                                  .control = loss_control, .read = loss_read};
