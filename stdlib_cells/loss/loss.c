/* `loss`: drops packets at random: Bernoulli, Gilbert-Elliott, or a pattern of burst probabilities. */
#define RT_CELL_API
#include "rattan_engine.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    rt_loss_config cfg;
    double *pattern;
    uint32_t run;            /* consecutive losses so far (pattern) */
    int bad;                 /* Gilbert-Elliott state */
} loss_t;

static const char *const params[] = {"rate", NULL};

static int loss_init(void *state, const void *config, int n_outputs, uint64_t now) {
    const rt_loss_config *c = config;
    loss_t *l = state;
    (void)n_outputs; (void)now;
    if (!c || c->model < RT_LOSS_BERNOULLI || c->model > RT_LOSS_PATTERN) return RT_EINVAL;
    if (c->model == RT_LOSS_PATTERN && (!c->pattern || c->pattern_len == 0)) return RT_EINVAL;
    l->cfg = *c;
    l->cfg.pattern = NULL;
    if (c->model == RT_LOSS_PATTERN) {
        l->pattern = malloc(c->pattern_len * sizeof *l->pattern);
        if (!l->pattern) return RT_ENOMEM;
        memcpy(l->pattern, c->pattern, c->pattern_len * sizeof *l->pattern);
    }
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
    case RT_LOSS_PATTERN: {
        uint32_t i = l->run < l->cfg.pattern_len ? l->run : l->cfg.pattern_len - 1;
        int drop = u < l->pattern[i];
        l->run = drop ? l->run + 1 : 0;
        return drop;
    }
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
