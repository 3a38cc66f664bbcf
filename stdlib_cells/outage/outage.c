/* `outage`: drops everything while the link is down; periodic (`up`, `down`) or switched by `state`. */
#define RT_CELL_API
#include "rattan_engine.h"

#include <string.h>

typedef struct {
    uint64_t up, down;       /* periods; both 0: only a change of `state` switches it */
    int start_down;
    uint64_t t0;             /* start of the current schedule */
} outage_t;

enum { P_UP, P_DOWN, P_STATE };
static const char *const params[] = {"up", "down", "state", NULL};

static int outage_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    outage_t *o = state;
    (void)n_outputs;
    o->up = rt_cfg_has(c, "up") ? rt_cfg_u64(c, "up") : 0;
    o->down = rt_cfg_has(c, "down") ? rt_cfg_u64(c, "down") : 0;
    const char *s = rt_cfg_str(c, "state");
    if (rt_cfg_status(c)) return RT_EINVAL;
    if ((o->up == 0) != (o->down == 0)) return rt_cfg_fail(c, o->up ? "down" : "up", "a periodic outage needs both `up` and `down`");
    if (strcmp(s, "up") != 0 && strcmp(s, "down") != 0) return rt_cfg_fail(c, "state", "expected `up` or `down`");
    o->start_down = s[0] == 'd';
    o->t0 = now;
    return RT_OK;
}
static int is_down(const outage_t *o, uint64_t t) {
    if (!o->up || !o->down) return o->start_down;
    uint64_t phase = (t - o->t0) % (o->up + o->down);
    return o->start_down ? phase < o->down : phase >= o->up;
}

static void outage_enqueue(rt_node *n, void *state, rt_pkt *k) {
    if (is_down(state, k->t)) rt_drop(n, k, RT_DROP_OUTAGE);
    else rt_emit(n, 0, k, k->t);
}

/* Every change restarts the schedule at `now`, in the state in force then (or the state set). */
static int outage_control(rt_node *n, void *state, int param, double value, uint64_t now) {
    outage_t *o = state;
    (void)n;
    if (!(value >= 0 && value < 1.8e19)) return RT_EINVAL;
    int down = is_down(o, now);
    if (param == P_STATE) {
        if (value != 0 && value != 1) return RT_EINVAL;
        down = value != 0;
    } else if (param == P_UP) {
        o->up = (uint64_t)value;
    } else {
        o->down = (uint64_t)value;
    }
    o->start_down = down;
    o->t0 = now;
    return RT_OK;
}

static double outage_read(const void *state, int param, uint64_t now) {
    const outage_t *o = state;
    if (param == P_UP) return (double)o->up;
    if (param == P_DOWN) return (double)o->down;
    return is_down(o, now);
}

const rt_cell_ops rt_cell_outage = {.type = "outage", .state_size = sizeof(outage_t), .params = params,
                                    .init = outage_init, .enqueue = outage_enqueue,
                                    .control = outage_control, .read = outage_read};
