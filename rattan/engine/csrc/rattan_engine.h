/* The one public header of the Rattan packet engine.
 *
 * Opaque handles, integer error codes, plain configuration structs.
 * Everything per packet happens behind this header, in C; Python only builds
 * the graph, drives time and reads counters.
 */
#ifndef RATTAN_ENGINE_H
#define RATTAN_ENGINE_H

#include <stdint.h>

#define RT_ABI_VERSION 1

/* Error codes: 0 is success, negative values are errors. */
#define RT_OK 0
#define RT_ENOMEM -1
#define RT_EINVAL -2
#define RT_ERANGE -3
#define RT_ESTATE -4

#define RT_NEVER UINT64_MAX

/* Why a packet was dropped (index into rt_counters.dropped). */
#define RT_DROP_QUEUE_FULL 0
#define RT_DROP_AQM 1
#define RT_DROP_LOSS 2
#define RT_DROP_POLICER 3
#define RT_DROP_NO_ROUTE 4
#define RT_DROP_OUTAGE 5
#define RT_DROP_POOL 6
#define RT_DROP_REASONS 7

/* Queue kinds of bw-like cells. */
#define RT_QUEUE_INFINITE 0
#define RT_QUEUE_DROPTAIL 1
#define RT_QUEUE_DROPHEAD 2

/* Jitter distributions of the delay cell. */
#define RT_DIST_UNIFORM 0
#define RT_DIST_NORMAL 1
#define RT_DIST_PARETO 2
#define RT_DIST_PARETONORMAL 3

/* Active queue management of bw-like cells (besides the limits). */
#define RT_AQM_NONE 0
#define RT_AQM_CODEL 1
#define RT_AQM_PIE 2
#define RT_AQM_RED 3

/* Loss models. */
#define RT_LOSS_BERNOULLI 0
#define RT_LOSS_GILBERT_ELLIOTT 1
#define RT_LOSS_PATTERN 2

/* Flow kinds of the synthetic traffic generator. */
#define RT_FLOW_CBR 0
#define RT_FLOW_POISSON 1

typedef struct rt_engine rt_engine;

/* Per node: in + created = out + dropped + queued, in packets and in bytes.
 * `created` counts copies made by `duplicate`; `modified` packets changed in place (`corrupt`). */
typedef struct {
    uint64_t in_packets, in_bytes;
    uint64_t out_packets, out_bytes;
    uint64_t queued_packets, queued_bytes;
    uint64_t dropped_packets, dropped_bytes;
    uint64_t created_packets, created_bytes;
    uint64_t modified_packets;
    uint64_t dropped[RT_DROP_REASONS];
} rt_counters;

typedef struct {
    uint64_t rate_bps;
    uint32_t overhead_bytes;
    int32_t queue_kind;
    uint64_t limit_packets;   /* 0: no limit in packets */
    uint64_t limit_bytes;     /* 0: no limit in bytes */
    int32_t aqm;              /* RT_AQM_*; limits still apply (tail drop) */
    uint64_t target_ns;       /* CoDel, PIE: target queueing delay */
    uint64_t interval_ns;     /* CoDel: interval; PIE: t_update */
    uint64_t red_min_bytes, red_max_bytes;
    double red_max_p;
    /* Mahimahi trace: delivery opportunities (ns, non-decreasing) within `trace_period_ns`;
     * when set, `rate_bps` is ignored. The arrays are copied. */
    const uint64_t *trace_ns;
    uint32_t trace_len;
    uint64_t trace_period_ns;
    uint32_t trace_mtu;
    int32_t trace_loop;
} rt_bw_config;

typedef struct {
    uint64_t rate_bps;
    uint64_t burst_bytes;
    uint64_t limit_bytes;     /* 0: police (drop excess); > 0: shape, queueing up to this many bytes */
    uint64_t peak_rate_bps;   /* 0: no peak-rate bucket */
    uint64_t min_burst_bytes; /* size of the peak-rate bucket */
} rt_token_bucket_config;

typedef struct {
    uint32_t addr, mask;      /* IPv4, host order */
    int32_t port;
} rt_route;

typedef struct {
    uint64_t delay_ns;
    uint64_t jitter_ns;
    int32_t distribution;
    double correlation;
    int32_t reorder;
} rt_delay_config;

typedef struct {
    int32_t model;
    double rate;                  /* Bernoulli */
    double p, r, h, k;            /* Gilbert-Elliott: transitions, loss in Bad (h) and Good (k) */
    const double *pattern;        /* loss probability after n consecutive losses; last repeats */
    uint32_t pattern_len;
} rt_loss_config;

typedef struct {
    uint64_t sent_packets, sent_bytes;
    uint64_t received_packets, received_bytes;
} rt_flow_stats;

int rt_abi_version(void);

/* An engine with its packet pool and random seed. */
rt_engine *rt_engine_new(uint64_t seed);
void rt_engine_free(rt_engine *e);

/* Nodes: endpoints and cells share one index space; every call returns the node id (>= 0) or an error. */
int rt_add_endpoint(rt_engine *e);
int rt_add_pass(rt_engine *e);
int rt_add_bw(rt_engine *e, const rt_bw_config *cfg);
int rt_add_delay(rt_engine *e, const rt_delay_config *cfg);
int rt_add_loss(rt_engine *e, const rt_loss_config *cfg);
int rt_add_token_bucket(rt_engine *e, const rt_token_bucket_config *cfg);
int rt_add_duplicate(rt_engine *e, double rate);
int rt_add_corrupt(rt_engine *e, double rate);
/* Longest prefix match on the destination address; `default_port` < 0 drops unmatched packets. */
int rt_add_router(rt_engine *e, const rt_route *routes, uint32_t n_routes, int n_outputs, int default_port);
/* Link up/down: periodic when up_ns and down_ns are both > 0, starting in `down` (0 or 1). */
int rt_add_outage(rt_engine *e, uint64_t up_ns, uint64_t down_ns, int down);

/* An endpoint's IPv4 address (host order): the destination of flows sent to it. */
int rt_endpoint_set_addr(rt_engine *e, int node, uint32_t addr);

/* Output `port` of `src` feeds `dst`. */
int rt_link(rt_engine *e, int src, int port, int dst);

/* Runtime changes (applied in place at the engine's current logical time). */
int rt_bw_set_rate(rt_engine *e, int node, uint64_t rate_bps);
int rt_outage_set_down(rt_engine *e, int node, int down);

/* Synthetic traffic: a flow from endpoint `src` to endpoint `dst`, starting at t=0. */
int rt_add_flow(rt_engine *e, int src, int dst, int kind, uint64_t rate_bps, uint32_t size_bytes);

/* Virtual time: process every event up to and including `t_ns`. */
int rt_run_until(rt_engine *e, uint64_t t_ns);
uint64_t rt_now(const rt_engine *e);

int rt_node_counters(const rt_engine *e, int node, rt_counters *out);
int rt_flow_stats_get(const rt_engine *e, int flow, rt_flow_stats *out);
/* Per received packet, in arrival order: its one-way delay (ns) and its sequence number in the
 * flow (0 for the first packet sent). Either array may be NULL; returns how many were copied. */
uint64_t rt_flow_samples(const rt_engine *e, int flow, uint64_t *delays, uint64_t *seqs, uint64_t cap);

#endif
