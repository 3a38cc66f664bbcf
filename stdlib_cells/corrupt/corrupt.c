/* `corrupt`: damages a packet with probability `rate`.
 * In virtual time packets have no payload, so the damage is only counted (`modified`). */
#define RT_CELL_API
#include "rattan_engine.h"

typedef struct { double rate; } corrupt_t;

static const char *const params[] = {"rate", NULL};

static int corrupt_init(void *state, rt_config *c, int n_outputs, uint64_t now) {
    double rate = rt_cfg_float(c, "rate");
    (void)n_outputs; (void)now;
    if (!rt_cfg_status(c) && !(rate >= 0 && rate <= 1)) return rt_cfg_fail(c, "rate", "must be between 0 and 1");
    ((corrupt_t *)state)->rate = rate;
    return rt_cfg_status(c);
}

/* A real packet gets one bit flipped past its Ethernet and IP headers, so it still reaches its
 * destination, whose transport checksum then fails as on a noisy link. */
static void corrupt_enqueue(rt_node *n, void *state, rt_pkt *k) {
    rt_rng *rng = rt_node_rng(n);
    if (rt_rng_unit(rng) < ((corrupt_t *)state)->rate) {
        rt_count_modified(n);
        if (k->buf && k->len > 34) {
            uint64_t bit = rt_rng_next(rng) % ((uint64_t)(k->len - 34) * 8);
            k->buf[34 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
    }
    rt_emit(n, 0, k, k->t);
}

static int corrupt_control(rt_node *n, void *state, int param, double value, uint64_t now) {
    (void)n; (void)param; (void)now;
    if (!(value >= 0 && value <= 1)) return RT_EINVAL;
    ((corrupt_t *)state)->rate = value;
    return RT_OK;
}

static double corrupt_read(const void *state, int param, uint64_t now) { (void)param; (void)now; return ((const corrupt_t *)state)->rate; }

const rt_cell_ops rt_cell_corrupt = {.type = "corrupt", .state_size = sizeof(corrupt_t), .params = params,
                                     .init = corrupt_init, .enqueue = corrupt_enqueue,
                                     .control = corrupt_control, .read = corrupt_read};
