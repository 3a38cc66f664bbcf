/* `pass`: forwards every packet unchanged, at once. */
#define RT_CELL_API
#include "rattan_engine.h"

static void pass_enqueue(rt_node *n, void *state, rt_pkt *k) {
    (void)state;
    rt_emit(n, 0, k, k->t);
}

const rt_cell_ops rt_cell_pass = {.type = "pass", .enqueue = pass_enqueue};
