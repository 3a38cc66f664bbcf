/* The one public header of the Rattan packet engine.
 *
 * Part 1 (what Python sees through cffi): opaque handles, integer error codes,
 * and one way to add any cell: rt_add_cell(type, config), its configuration a
 * typed record of named values (rt_value) that no cell type shapes. Everything
 * per packet happens behind it, in C; Python only builds the graph, drives
 * time, changes parameters and reads counters.
 *
 * Part 2 (under RT_CELL_API): the cell interface. Every built-in cell in
 * stdlib_cells/<type>/<type>.c is an rt_cell_ops table written against it, and
 * so is every plugin cell, compiled against this header as installed
 * (`rattan include-dir`) and registered the same way (RT_PLUGIN).
 */
#ifndef RATTAN_ENGINE_H
#define RATTAN_ENGINE_H

#include <stdint.h>

#define RT_ABI_VERSION 16

/* Error codes: 0 is success, negative values are errors. */
#define RT_OK 0
#define RT_ENOMEM -1
#define RT_EINVAL -2
#define RT_ERANGE -3
#define RT_ESTATE -4
#define RT_ENOTYPE -5
#define RT_ENOPARAM -6
#define RT_ESYS -7

#define RT_NEVER UINT64_MAX

/* Why a packet was dropped (index into rt_counters.dropped): one table, X(CONSTANT, "name", meaning).
 * The names are the ones telemetry, plots and the packet log show; Python reads them from C. A new
 * reason goes at the end: packet logs store the index, so earlier logs keep their meaning. */
#define RT_DROP_REASON_TABLE(X) \
    X(RT_DROP_QUEUE_FULL, "queue_full", "a queue was full") \
    X(RT_DROP_AQM, "aqm", "active queue management (CoDel, PIE, RED) dropped it") \
    X(RT_DROP_LOSS, "loss", "a loss model dropped it") \
    X(RT_DROP_POLICER, "policer", "it did not conform to a token bucket") \
    X(RT_DROP_NO_ROUTE, "no_route", "no route matched its destination") \
    X(RT_DROP_OUTAGE, "outage", "the link was down") \
    X(RT_DROP_POOL, "pool", "the engine ran out of packet buffers") \
    X(RT_DROP_RING, "ring", "real runs: the endpoint's receive ring was full (or the frame too large)") \
    X(RT_DROP_CELL, "cell", "a cell's own rule (a plugin cell's reason)") \
    X(RT_DROP_ROUTE, "drop_route", "a router's drop route (a route without a port) matched its destination") \
    X(RT_DROP_NOT_IPV4, "not_ipv4", "a router with only_ipv4 got a frame that is not IPv4 (ARP, IPv6, ...)") \
    X(RT_DROP_MODEL_END, "model_end", "it arrived after the cell's per-packet model had ended") \
    X(RT_DROP_HANDOFF, "handoff", "a real run split over threads: the ring into its region was full")
#define RT_DROP_ENUM_(c, name, meaning) c,
enum { RT_DROP_REASON_TABLE(RT_DROP_ENUM_) RT_DROP_REASONS };
#undef RT_DROP_ENUM_
/* The name of drop reason `i` (NULL out of range). */
const char *rt_drop_reason_name(int i);

/* Flow kinds of the synthetic traffic generator. */
#define RT_FLOW_CBR 0
#define RT_FLOW_POISSON 1

/* How rt_engine_start paces the clock. */
#define RT_CLOCK_VIRTUAL 0
#define RT_CLOCK_REAL 1

typedef struct rt_engine rt_engine;

/* Per node: in + created = out + dropped + queued, in packets and in bytes.
 * `created` counts copies made by `duplicate`; `modified` packets changed in place (`corrupt`).
 * An endpoint's `in` counts what its flows or interface sent and what arrived from the path, its
 * `out` what it sent into the path and what was delivered to it; `delivered` is the latter alone
 * (frames handed to its application or interface; 0 for cells), so out - delivered is what any
 * node sent into the path. `first_out_ns`, `last_out_ns`: the logical times of the node's first
 * and last departure into the path; they mean something only once out > delivered (a departure
 * at time 0 is a real one in virtual time). */
typedef struct {
    /* what every forwarded packet touches (rt_emit, endpoint delivery): together, in 64 bytes */
    uint64_t in_packets, in_bytes;
    uint64_t out_packets, out_bytes;
    uint64_t delivered_packets, delivered_bytes;
    uint64_t first_out_ns, last_out_ns;
    uint64_t queued_packets, queued_bytes;
    uint64_t dropped_packets, dropped_bytes;
    uint64_t created_packets, created_bytes;
    uint64_t modified_packets;
    uint64_t dropped[RT_DROP_REASONS];
} rt_counters;

/* A cell's configuration: its parameters by name, in the plan's form (integers in base units: ns,
 * bit/s, bytes; floats; strings; records; lists; arrays of numbers for traces). The loader builds it
 * from the cell's schema; the cell's init reads it by name (part 2). Every pointer is read during
 * rt_add_cell only: the cell copies what it keeps. */
#define RT_VAL_INT 1       /* i */
#define RT_VAL_FLOAT 2     /* f */
#define RT_VAL_STR 3       /* s, len bytes (NUL-terminated) */
#define RT_VAL_RECORD 4    /* items: len named values */
#define RT_VAL_LIST 5      /* items: len values, names NULL */
#define RT_VAL_INTS 6      /* ints: len integers */
#define RT_VAL_FLOATS 7    /* floats: len numbers */
typedef struct rt_value {
    const char *name;      /* in a record; NULL elsewhere */
    int32_t kind;          /* RT_VAL_* */
    uint32_t len;
    int64_t i;
    double f;
    const char *s;
    const struct rt_value *items;
    const int64_t *ints;
    const double *floats;
} rt_value;

/* What became of a synthetic flow's packets. A packet counts as received only at the flow's destination;
 * one that reaches another endpoint (a wrong route) is misdelivered. The delay fields are over received
 * packets (delay_min_ns is RT_NEVER until one is); the distribution is rt_flow_delay_hist. */
typedef struct {
    uint64_t sent_packets, sent_bytes;
    uint64_t received_packets, received_bytes;
    uint64_t misdelivered_packets, misdelivered_bytes;
    uint64_t reordered_packets;      /* received after a packet of the flow that was sent later */
    uint64_t delay_sum_ns, delay_min_ns, delay_max_ns;
} rt_flow_stats;

/* The engine's one histogram of nanosecond values (a flow's one-way delays, an endpoint's lateness):
 * log buckets. Values below 2^RT_HIST_SUB_BITS have a bucket each; above, each power of two is cut into
 * 2^RT_HIST_SUB_BITS equal buckets, so a bucket spans less than 1/64 of its lower edge and its middle is
 * within 1/128 (0.8 %) of any value in it. Fixed size: 3,776 counts cover all of uint64. */
#define RT_HIST_SUB_BITS 6
#define RT_HIST_BUCKETS 3776
int rt_hist_bucket(uint64_t v);
uint64_t rt_hist_lower(int bucket);  /* the smallest value of a bucket (bucket RT_HIST_BUCKETS: RT_NEVER) */

int rt_abi_version(void);

/* An engine with its random seed. */
rt_engine *rt_engine_new(uint64_t seed);
void rt_engine_free(rt_engine *e);

/* Nodes: endpoints and cells share one index space; every call returns the node id (>= 0) or an
 * error. `type` names a registered cell type ("bw", "delay", a plugin's) and `config` is its
 * parameters, an RT_VAL_RECORD (NULL: none). A refused configuration gives RT_EINVAL, and
 * rt_last_error() says which parameter and why. The graph is fixed once time has started to run:
 * later calls give RT_ESTATE. */
int rt_add_endpoint(rt_engine *e);
int rt_add_cell(rt_engine *e, const char *type, const rt_value *config, int n_outputs);

/* What the last failed call in this thread went wrong on, in words ("" if it said nothing more than
 * its error code). */
const char *rt_last_error(void);

/* Cell types: the built-in ones are registered when the engine library loads; rt_load_cells adds
 * those of a plugin library (a shared object built against this header: it defines
 * `rt_plugin_abi` and `rt_plugin_cells`, see RT_PLUGIN). Loading a library twice is harmless. A
 * library that cannot be opened, lacks a symbol, was built for another RT_ABI_VERSION, or names a
 * type that is already registered gives RT_EINVAL (with rt_last_error) and registers nothing. */
int rt_load_cells(const char *path);
int rt_cell_type_count(void);
const char *rt_cell_type_name(int i);   /* registration order; NULL out of range */

/* An endpoint's IPv4 address (host order): the destination of flows sent to it. */
int rt_endpoint_set_addr(rt_engine *e, int node, uint32_t addr);

/* Output `port` of `src` feeds `dst`. RT_EINVAL (rt_last_error says why) if the link would close a
 * cycle of cells that hold no packet (no next_event): a packet would go round it forever. */
int rt_link(rt_engine *e, int src, int port, int dst);

/* One channel over several threads: the link out of `src`'s output `port` (linked already) is a cut.
 * Sealing then splits the graph at every cut into regions (the connected components left), each a
 * shard of its own that any engine thread may run; a packet crossing a cut is handed off to its
 * destination's region. The destination must be a cell whose minimum hold (rt_cell_ops.min_hold)
 * bounds how soon a packet arriving at t can leave: in virtual time the regions run in windows no
 * longer than the smallest such hold (the lookahead, read again after every change), so results are
 * the same on 1 and N threads. A cut whose two ends stay connected anyway is ignored. Before time
 * runs; RT_EINVAL (rt_last_error says why) if the destination has no minimum hold. In a real run
 * (ports attached) the cuts are ignored, each channel staying one region, unless
 * rt_engine_set_split_real asks otherwise (docs/engine.md). */
int rt_link_cut(rt_engine *e, int src, int port);
/* Real runs: with `on` and more than one engine thread, the cuts split channels into regions there
 * too. Regions run on their threads in real time, each cut a pair of lock-free rings of `ring_slots`
 * entries (a power of two, 2 to 2^24; 0: RT_SPLIT_RING_DEFAULT): hand-offs one way, free packets back
 * the other. A hand-off that finds its ring full is dropped and counted at its destination
 * (RT_DROP_HANDOFF) and in rt_split_stats.ring_full. Before time runs; RT_EINVAL for a bad size. */
#define RT_SPLIT_RING_DEFAULT 4096
int rt_engine_set_split_real(rt_engine *e, int on, uint32_t ring_slots);
/* Regions are given back to threads every `every` windows (0: never; default 1024) by the CPU time
 * each took since the last time (largest first, to the least loaded thread): only the mapping from
 * regions to threads changes, never the regions, so results do not. Before time runs. */
int rt_engine_set_rebalance(rt_engine *e, uint64_t every);
/* What splitting did: cuts in force, the lookahead now (RT_NEVER: no cut), windows run, packets
 * handed off, rebalancing passes that moved a region, and hand-offs whose destination then had an
 * event in the past (a broken lookahead; 0 unless a cell's min_hold is wrong); in a real run split
 * over threads (`real` 1), hand-offs dropped because their ring was full. */
typedef struct {
    uint64_t cuts, lookahead_ns, windows, handoffs, rebalances, late_handoffs;
    uint64_t ring_full, real;
} rt_split_stats;
int rt_engine_split_stats(const rt_engine *e, rt_split_stats *out);

/* Runtime changes. A cell's changeable parameters have names ("rate", "down", ...); rt_cell_param
 * gives the index of one. rt_cell_control applies `value` at logical time `at_ns` exactly (or at once
 * if `at_ns` is not after the current time), in place: queued packets stay. While the engine thread
 * runs, changes are handed to it and applied there. */
int rt_cell_param(const rt_engine *e, int node, const char *name);
int rt_cell_control(rt_engine *e, int node, int param, double value, uint64_t at_ns);
/* Several changes as one: every (node, param) is checked first (nothing applies if one is wrong),
 * then all apply at the same logical time `at_ns`, in order, with no event between them. */
typedef struct { int32_t node, param; double value; } rt_change;
int rt_cell_control_many(rt_engine *e, const rt_change *changes, int n, uint64_t at_ns);

/* Telemetry beyond the counters: the current value of each named parameter. */
int rt_cell_read(const rt_engine *e, int node, int param, double *value);

/* Real packets: endpoint `node` sends and receives on interface `ifname` of the network namespace
 * at `netns_path` (e.g. /run/netns/NAME; NULL: the caller's). Frames received there enter the graph
 * at the endpoint; packets reaching the endpoint are sent there. Before time runs; then time must
 * run in the engine thread with RT_CLOCK_REAL. RT_ESYS with errno set if the interface cannot be
 * opened. */
#define RT_OFFLOAD_PLAIN 0  /* frames of at most the MTU (the endpoint's transmit offloads off: rt_netdev_tune) */
#define RT_OFFLOAD_GSO 1    /* virtio-net headers: TSO/GSO super-frames and partial checksums pass whole */
int rt_endpoint_attach(rt_engine *e, int node, const char *netns_path, const char *ifname, int offload);
/* GSO mode: endpoint `node` cuts the super-frames it receives into segments (complete checksums)
 * before they enter the path, because a cell there acts per packet (rattan/passes/mark_segmenting.py).
 * Off by default: super-frames stay whole. Before time runs. */
int rt_endpoint_set_segmenting(rt_engine *e, int node, int on);
/* GSO mode: endpoint `node` merges consecutive TCP segments it sends at one wake-up into
 * super-frames again (on by default in GSO mode; see gso.h, "Merging at egress"). RT_ESTATE while
 * time runs. */
int rt_endpoint_set_merging(rt_engine *e, int node, int on);
/* What GSO mode did at endpoint `node`: super-frames received, the segments they stood for, and
 * super-frames it cut (each into its segments); super-frames it sent that it had merged, and the
 * segments they stood for. Zero in plain mode. */
typedef struct { uint64_t super_frames, super_segments, cut_frames, merged_frames, merged_segments; } rt_gso_stats;
int rt_endpoint_gso_stats(const rt_engine *e, int node, rt_gso_stats *out);
/* A port that outlives engines (rattan.runtime.warm): an interface's receive ring and transmit
 * socket, opened once and lent to one engine at a time, so that experiments run one after another
 * on the same veths do not each allocate and free the rings. rt_port_open: as rt_endpoint_attach
 * opens one, in mode `offload` (NULL with errno set on failure). rt_endpoint_attach_port lends it to endpoint `node`
 * (RT_ESTATE if another engine has it), first discarding every frame waiting in its ring and its
 * loss counts, so the engine starts as on a fresh ring. rt_engine_return_ports takes every lent
 * port back from a stopped engine (RT_ESTATE while it runs; it cannot run on real packets again);
 * freeing the engine returns them too. rt_port_close closes it, or, while lent, once returned. */
typedef struct rt_port rt_port;
rt_port *rt_port_open(const char *netns_path, const char *ifname, int offload);
void rt_port_close(rt_port *p);
int rt_endpoint_attach_port(rt_engine *e, int node, rt_port *p);
int rt_engine_return_ports(rt_engine *e);
/* Frames the engine sends on an attached endpoint's interface get Ethernet source `src` and
 * destination `dst` (6 bytes each), as upstream Rattan's AF_PACKET sender writes them (the
 * rattan-side veth's address and its peer's): a frame routed to another endpoint than the one its
 * sender addressed is then still the receiving interface's. Without it, frames go out unchanged. */
int rt_endpoint_set_macs(rt_engine *e, int node, const uint8_t *src, const uint8_t *dst);
/* Prepare an endpoint's interface: transmit checksum offload off (frames MTU-sized, checksums
 * complete), and IPv6 off in its namespace if `no_ipv6`. 0, or a negative errno. */
int rt_netdev_tune(const char *netns_path, const char *ifname, int no_ipv6);

/* How much later than planned an endpoint's frames left in a real run (the send system call's time
 * against the logical time the graph delivered them at). hist: lateness in ns, in the engine's log
 * buckets (rt_hist_bucket). `late`: frames later than the engine's threshold
 * (rt_engine_set_late_threshold, default RT_LATE_THRESHOLD_NS). Readable while the engine runs
 * (each field exact, the fields not one snapshot). */
#define RT_LATE_THRESHOLD_NS 1000000ULL
typedef struct {
    uint64_t sent;
    uint64_t late;
    uint64_t max_ns;
    uint64_t sum_ns;
    uint64_t tx_calls;       /* sendmmsg calls that carried its frames (several ports share one) */
    uint64_t early;          /* frames sent before their time (counted as 0 late): 0 unless the loop is wrong */
    uint64_t hist[RT_HIST_BUCKETS];
} rt_lateness;
int rt_endpoint_lateness(const rt_engine *e, int node, rt_lateness *out);
int rt_engine_set_late_threshold(rt_engine *e, uint64_t ns);

/* How the real-time loop sleeps and wakes (docs/running.md, "Timing"). By default it sleeps on a
 * timer armed a little before the next departure (by the least wake-up latency it saw lately), never
 * sends before a frame's time, and spaces timer wake-ups by at least the coalescing window, frames due
 * meanwhile leaving together with one sendmmsg for every port of a network namespace.
 * rt_engine_set_precise(e, 1): the timer is armed `stretch_ns` early instead, stretch_ns being the p99
 * of a few hundred timer sleeps measured when the loop starts, and the last stretch is spun (reading
 * the clock and checking the receive rings), for lateness within microseconds at the CPU's cost.
 * rt_engine_set_coalesce: the window in ns (RT_COALESCE_AUTO, the default: the spread of the wake-up
 * latencies seen, their p90 less their least, at most 50 us; 0: every deadline has a wake-up of its
 * own at its exact time and each port a sendmmsg of its own, the loop's timing before batching). Both before
 * time runs. rt_engine_timing: the figures chosen and the loop's counters, RT_ESTATE before a real
 * run's loop has started (then readable while it runs and after, each field exact). */
#define RT_COALESCE_AUTO -1
typedef struct {             /* the figures the loop chose: every thread's alike, rt_engine_timing gives the first's */
    uint64_t precise;        /* 1: precise mode */
    uint64_t stretch_ns;     /* precise: the stretch spun before each deadline (calibration's p99) */
    uint64_t calib_p50_ns;   /* precise: the calibration's median wake-up latency */
    uint64_t margin_ns;      /* default: how early the timer is armed (the least recent wake-up latency) */
    uint64_t coalesce_ns;    /* default: the least gap between two timer wake-ups */
} rt_timing_chosen;
typedef struct {             /* the loop's counters: only uint64_t counts, rt_engine_timing sums every thread's */
    uint64_t wakeups;        /* returns from epoll_wait: the timer, input, or a request */
    uint64_t timer_wakeups;  /* ... of which the timer fired */
    uint64_t early_wakeups;  /* ... before the deadline (default: slept again; precise: the spin's start) */
    uint64_t timer_sets;     /* timerfd_settime calls */
    uint64_t spin_ns;        /* time spent spinning */
    uint64_t tx_calls;       /* sendmmsg calls */
    uint64_t tx_frames;      /* frames they sent */
} rt_timing_counters;
typedef struct {
    rt_timing_chosen chosen;
    rt_timing_counters counters;
} rt_timing;
int rt_engine_set_precise(rt_engine *e, int on);
int rt_engine_set_coalesce(rt_engine *e, int64_t ns);
/* Departures in batches of a paced cell (its schema's `x-rattan.departures`: "paced", as `bw` says):
 * in a real run, a departure the cell scheduled at its last one, while backlogged, may leave up to
 * 8 of its own departure intervals late, at most `max_ns` (0, the default: on time, as every other
 * cell's), so that several share one wake-up and one super-frame; never early, and in logical time
 * nothing moves (the rate and every segment's accounting stay exact). Before time runs. */
#define RT_SLACK_DEFAULT_NS 50000
int rt_cell_set_slack(rt_engine *e, int node, uint64_t max_ns);
int rt_engine_timing(const rt_engine *e, rt_timing *out);

/* The nice value (-20..19) the engine thread of a real run takes when it starts (default 0: the
 * caller's). The forwarding thread does the work the kernel does in softirq when it routes; at the
 * applications' own weight they preempt it on every wake-up. Before time runs. rt_engine_nice gives
 * the value the running thread has (it stays the caller's if the system refused, e.g. without
 * CAP_SYS_NICE), or RT_ESTATE before a real run's thread has started. */
int rt_engine_set_nice(rt_engine *e, int nice);
int rt_engine_nice(const rt_engine *e, int *nice);

/* Packet log: a compact binary record of chosen nodes' events, appended to `path` (opened for
 * appending: a caller may write its own header first). Record i of a node: it arrived (RT_LOG_ARRIVE),
 * left (RT_LOG_DEPART, with the time it spent in the node) or was dropped (RT_LOG_DROP, with the
 * reason). Records vary in length: each rt_log_record is followed by `cap_len` bytes, then zeros up to
 * a multiple of 8 (RT_LOG_ALIGN), so the next record starts 8-aligned. A real packet's bytes are the
 * first `cap_len` bytes of its IP packet: all of it, or `snaplen` if that is shorter (0: always all).
 * A synthetic packet (flow >= 0) has no bytes: its 8 are its source and destination addresses (host
 * order, 4 bytes each), from which readers synthesize a header.
 * Records are buffered by the thread that runs time and written in blocks by a thread of the log's
 * own; rt_packet_log_flush returns once everything buffered is in the file (not while the engine
 * thread runs), as does the engine thread when it ends. Before time runs. */
#define RT_LOG_ARRIVE 0
#define RT_LOG_DEPART 1
#define RT_LOG_DROP 2
#define RT_LOG_ALIGN 8
typedef struct {
    uint64_t t;          /* logical time, ns */
    uint64_t sojourn_ns; /* RT_LOG_DEPART: time from arrival to departure in this node */
    uint64_t fseq;       /* synthetic flows: sequence number in the flow */
    uint32_t node;
    uint32_t size;       /* IP bytes */
    int32_t flow;        /* synthetic flow, -1 for real packets */
    uint8_t event, reason;
    uint16_t cap_len;    /* bytes that follow this record (before its padding) */
} rt_log_record;
int rt_packet_log_open(rt_engine *e, const char *path, uint32_t snaplen);
int rt_packet_log_node(rt_engine *e, int node, int on);
int rt_packet_log_flush(rt_engine *e);
/* Records written (and lost to a failed write) so far. */
int rt_packet_log_stats(const rt_engine *e, uint64_t *written, uint64_t *lost);

/* Synthetic traffic: a flow from endpoint `src` to endpoint `dst`, starting at t=0. */
int rt_add_flow(rt_engine *e, int src, int dst, int kind, uint64_t rate_bps, uint32_t size_bytes);

/* Time, in the caller's thread: process every event up to and including `t_ns`. */
int rt_run_until(rt_engine *e, uint64_t t_ns);
uint64_t rt_now(const rt_engine *e);

/* Time, in the engine's own thread (no GIL): run up to `until_ns`, as fast as possible
 * (RT_CLOCK_VIRTUAL) or paced by the monotonic clock (RT_CLOCK_REAL). Counters and flow stats stay
 * readable meanwhile; rt_engine_wait blocks until the thread is done (or `timeout_ms` passes, >= 0). */
int rt_engine_start(rt_engine *e, uint64_t until_ns, int clock);
int rt_engine_wait(rt_engine *e, int timeout_ms);
int rt_engine_stop(rt_engine *e);
int rt_engine_running(const rt_engine *e);

/* Engine threads. Before time first runs: time runs on `n` threads (1..256; default 1, as the engine
 * always has), thread i pinned to core cpus[i] if `cpus` is given (each a core this process may run
 * on, none twice; NULL: not pinned). Sealing gives the graph's shards (connected components) to
 * min(n, shards) threads: the largest first (by nodes), each to the thread with the fewest nodes so
 * far. Thread 0 is the engine thread (rt_engine_start) or rt_run_until's caller (not pinned: it is
 * the caller's thread); threads 1.. are the engine's own. In virtual time every thread runs its
 * shards to the same target and they meet at a barrier, where changes apply at their exact logical
 * times: results do not depend on the thread count. In a real run each thread sleeps on its own
 * ports, keeps its own time and takes the changes to its own nodes. RT_ESTATE once time has run,
 * RT_EINVAL for a bad count or core (rt_last_error says which). */
int rt_engine_set_threads(rt_engine *e, int n, const int *cpus);
/* The threads time runs on: the count asked before time runs, the count used (min(n, shards)) after. */
int rt_engine_threads(const rt_engine *e);
/* The load of thread i, readable while time runs: its core (-1: not pinned), shards and nodes; the
 * time it spent working (running events, receiving, sending: not asleep or waiting at the barrier)
 * against the time time ran (wall_ns, over every run so far, the same for every thread); the events
 * its shards fired and the packets that entered its shards from endpoints (flows' packets, frames
 * received). Summed over the threads, events and packets are the engine's. */
typedef struct {
    int32_t cpu, shards, nodes;
    int32_t regions;         /* of its shards, those that are regions of a split channel (rt_link_cut) */
    uint64_t busy_ns, wall_ns;
    uint64_t events, packets;
    uint64_t rebalances;     /* the engine's rebalancing passes that moved a region (the same for all) */
} rt_thread_stats;
int rt_engine_thread_stats(const rt_engine *e, int i, rt_thread_stats *out);

/* A consistent snapshot of a node's counters, also while the engine thread runs. */
int rt_node_counters(const rt_engine *e, int node, rt_counters *out);
int rt_flow_stats_get(const rt_engine *e, int flow, rt_flow_stats *out);
/* A flow's one-way delays of received packets: RT_HIST_BUCKETS counts (rt_hist_bucket), and its stats
 * (if `stats` is not NULL), in one snapshot. */
int rt_flow_delay_hist(const rt_engine *e, int flow, rt_flow_stats *stats, uint64_t *hist);
/* Raw samples, only on request (they take 16 bytes per received packet): before time runs, `on`
 * makes the flow keep, per received packet in arrival order, its one-way delay (ns) and its sequence
 * number in the flow (0 for the first packet sent). rt_flow_samples copies up to `cap` of them (either
 * array may be NULL) and returns how many; 0 if the flow keeps none, or while the engine thread runs. */
int rt_flow_keep_samples(rt_engine *e, int flow, int on);
uint64_t rt_flow_samples(const rt_engine *e, int flow, uint64_t *delays, uint64_t *seqs, uint64_t cap);
/* Before time runs: the flow sends its first packet at logical time `at_ns` (not before the time it
 * was added) instead of at once. */
int rt_flow_start_at(rt_engine *e, int flow, uint64_t at_ns);

#ifdef RT_CELL_API
/* ===================================================================== the cell interface
 * A cell is an rt_cell_ops table. The engine owns the node record (counters, outputs, random
 * generator, event-heap entry) and `state_size` bytes of cell state next to it. Cells never see
 * the clock: every packet carries the logical time it reached the cell, and a cell computes its
 * departures from that time. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct rt_pkt {
    struct rt_pkt *next;
    uint64_t t;        /* logical arrival time at the current cell */
    uint64_t depart;   /* planned departure from the current cell */
    uint64_t born;     /* creation time, for one-way delay */
    uint64_t fseq;     /* sequence number within its flow */
    uint64_t seq;      /* tie-break for equal departures */
    uint32_t size;
    uint32_t src_addr; /* IPv4 source, host order */
    uint32_t dst_addr; /* IPv4 destination, host order (routers match on it) */
    int32_t flow;      /* synthetic flow, or -1 for a real packet */
    uint32_t len;      /* real packets: bytes of the Ethernet frame in `buf`; `size` is its IP part */
    uint8_t *buf;      /* real packets: the frame (the pool's buffer); else NULL */
    uint32_t cap;      /* bytes `buf` holds: 2 KiB, or 64 KiB while it holds a GSO super-frame */
    /* GSO mode (rt_endpoint_attach with RT_OFFLOAD_GSO): the frame's virtio-net header. A super-frame
     * (gso_type not RT_GSO_NONE) stands for `segs` segments of gso_size payload bytes, each with its
     * own hdr_len bytes of Ethernet, IP and TCP/UDP headers; its `size` is the IP bytes of all of
     * them, so rates and byte counts are the wire's. Cells that act per packet never see one: the
     * engine cuts super-frames at ingress where the compiler says such a cell is on the path. */
    uint16_t segs;     /* packets it stands for: 1 unless a super-frame */
    uint8_t gso_type;  /* RT_GSO_* */
    uint8_t vnet_flags; /* RT_VNET_NEEDS_CSUM: the L4 checksum is partial (csum_start/csum_offset) */
    uint16_t gso_size, hdr_len, csum_start, csum_offset;
} rt_pkt;
#define RT_GSO_NONE 0
#define RT_GSO_TCPV4 1
#define RT_GSO_TCPV6 4
#define RT_GSO_UDP_L4 5
#define RT_VNET_NEEDS_CSUM 1

typedef struct rt_node rt_node;           /* the engine's record of one cell */

/* ---- reading a configuration (in init)
 * An rt_config is a value of the configuration being read: the whole record init receives, or a
 * record, list or item within it. A reader that finds its parameter missing, or of another kind,
 * records an error naming the parameter's path (`queue.target`, `routes[2].prefix`) and returns
 * 0, 0.0, "" or an empty value; only the first error is kept, so a cell reads everything and then
 * returns rt_cfg_status(cfg). Parameters with a default in the schema are always present: a cell
 * never restates a default. Integers are accepted where a number is read. */
typedef struct rt_config {
    rt_value v;                    /* the value itself (an item of an array is a scalar copy) */
    const struct rt_config *parent;
    const char *key;               /* its name in the parent record, or NULL for a list item */
    uint32_t index;                /* its index in the parent list */
    struct rt_cfg_state *st;       /* shared by the whole configuration: its first error */
} rt_config;

int rt_cfg_has(const rt_config *c, const char *name);            /* present (of any kind) */
int rt_cfg_kind(const rt_config *c, const char *name);           /* its RT_VAL_*, 0 if absent */
int64_t rt_cfg_int(const rt_config *c, const char *name);
uint64_t rt_cfg_u64(const rt_config *c, const char *name);       /* an integer >= 0 */
double rt_cfg_float(const rt_config *c, const char *name);       /* a number */
int rt_cfg_bool(const rt_config *c, const char *name);           /* an integer, 0 or 1 */
const char *rt_cfg_str(const rt_config *c, const char *name);
rt_config rt_cfg_get(const rt_config *c, const char *name);      /* any value (a record, a list) */
uint32_t rt_cfg_len(const rt_config *c);                         /* items of a record, list or array */
rt_config rt_cfg_item(const rt_config *c, uint32_t i);           /* item i of a list or an array */
/* c itself as a scalar (for list items); the same errors as the named readers. */
int64_t rt_cfg_as_int(const rt_config *c);
double rt_cfg_as_float(const rt_config *c);
const char *rt_cfg_as_str(const rt_config *c);
/* An array of numbers (a list of numbers is one), copied into `out` (malloc'd; the cell frees it);
 * its length, or -1 after recording an error (out of memory, not numbers). */
int64_t rt_cfg_ints(const rt_config *c, const char *name, uint64_t **out);
int64_t rt_cfg_floats(const rt_config *c, const char *name, double **out);
/* Record that parameter `name` of c (NULL: c itself) is refused because `why` ("must be at least
 * 1 byte"). Returns RT_EINVAL. */
int rt_cfg_fail(const rt_config *c, const char *name, const char *why);
int rt_cfg_status(const rt_config *c);                           /* RT_OK, or RT_EINVAL after an error */
typedef struct { uint64_t s[4]; } rt_rng;

typedef struct {
    const char *type;
    size_t state_size;
    const char *const *params;             /* NULL-terminated names of runtime parameters, or NULL */
    /* Read the configuration into `state` (zeroed) with the rt_cfg_* readers below, and check it;
     * return rt_cfg_status(cfg) (or another error code). `now` is the engine's time. */
    int (*init)(void *state, rt_config *cfg, int n_outputs, uint64_t now);
    void (*destroy)(void *state);          /* free what init allocated; held packets belong to the pool */
    /* A packet reaches the cell at logical time k->t: emit, drop or hold it. */
    void (*enqueue)(rt_node *n, void *state, rt_pkt *k);
    /* When the cell next releases a held packet (RT_NEVER if none); NULL if it never holds any. */
    uint64_t (*next_event)(const void *state);
    /* Release what is due at `t`. */
    void (*fire)(rt_node *n, void *state, uint64_t t);
    /* Change parameter `param` at logical time `now`; RT_EINVAL if the value is out of range. */
    int (*control)(rt_node *n, void *state, int param, double value, uint64_t now);
    /* The value of parameter `param` in force at `now`. */
    double (*read)(const void *state, int param, uint64_t now);
    /* The least time a packet arriving from now on stays in the cell: one that arrives at t leaves
     * (or is dropped) at t + min_hold or later. Read when time starts and after every change; NULL:
     * 0. A link into a cell with a positive one may be a cut between regions (rt_link_cut). */
    uint64_t (*min_hold)(const void *state);
} rt_cell_ops;

/* What the engine offers a cell. */
void rt_emit(rt_node *n, int port, rt_pkt *k, uint64_t t);  /* send k out of `port` at logical time t */
void rt_drop(rt_node *n, rt_pkt *k, int reason);             /* count and free */
void rt_hold(rt_node *n, const rt_pkt *k, int sign);          /* the cell starts (+1) / stops (-1) holding k */
void rt_reschedule(rt_node *n);   /* the cell's next event may have moved (after a control change) */
rt_pkt *rt_clone(rt_node *n, const rt_pkt *k);                /* a copy counted as created; NULL if none */
void rt_count_modified(rt_node *n);
rt_rng *rt_node_rng(rt_node *n);
/* When the first packet entered the node's part of the graph (its channel) from an endpoint, in
 * logical time; RT_NEVER before any did (traces that start at the first packet). */
uint64_t rt_first_arrival(const rt_node *n);
uint64_t rt_next_seq(rt_node *n);                             /* a tie-break, increasing per shard */

/* ---- shared helpers for cells */
static inline uint64_t rt_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rt_rng_next(rt_rng *r) { /* xoshiro256** */
    uint64_t *s = r->s;
    uint64_t result = rt_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rt_rotl(s[3], 45);
    return result;
}

/* uniform in [0, 1) with 53 random bits */
static inline double rt_rng_unit(rt_rng *r) { return (double)(rt_rng_next(r) >> 11) * 0x1.0p-53; }

static inline double rt_rng_normal(rt_rng *r) { /* Marsaglia polar method, one value per call */
    double u, v, s;
    do {
        u = 2.0 * rt_rng_unit(r) - 1.0;
        v = 2.0 * rt_rng_unit(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s);
}

static inline double rt_rng_exponential(rt_rng *r) { return -log1p(-rt_rng_unit(r)); }

/* Fill a generator's state from `seed` by splitmix64 (a cell that owns a seeded generator). */
static inline void rt_rng_seed(rt_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        r->s[i] = z ^ (z >> 31);
    }
}

/* A FIFO of packets with its length in packets and bytes. */
typedef struct { rt_pkt *head, *tail; uint64_t packets, bytes; } rt_fifo;

static inline void rt_fifo_push(rt_fifo *q, rt_pkt *k) {
    k->next = NULL;
    if (q->tail) q->tail->next = k; else q->head = k;
    q->tail = k;
    q->packets++;
    q->bytes += k->size;
}

static inline rt_pkt *rt_fifo_pop(rt_fifo *q) {
    rt_pkt *k = q->head;
    if (!k) return NULL;
    q->head = k->next;
    if (!q->head) q->tail = NULL;
    q->packets--;
    q->bytes -= k->size;
    k->next = NULL;
    return k;
}

/* ---- registration
 * rt_register_cell adds a cell type; `abi` is the RT_ABI_VERSION the cell was compiled against.
 * Built-in cells are registered through it when the engine loads, plugin cells when rt_load_cells
 * opens their library. A plugin library declares its cells once, in one of its C files:
 *     RT_PLUGIN(&rt_cell_policer);
 * which defines the two symbols rt_load_cells looks for. */
int rt_register_cell(const rt_cell_ops *ops, int abi);
#define RT_PLUGIN(...) \
    const int rt_plugin_abi = RT_ABI_VERSION; \
    const rt_cell_ops *const rt_plugin_cells[] = {__VA_ARGS__, NULL}

/* A step function of time (delay_trace, loss_trace): the value in force at t, from a cursor. */
typedef struct { uint64_t *at; double *value; uint32_t len, i; uint64_t period, base; int loop; uint64_t loop_at; } rt_steps;

/* From a trace parameter as the plan gives it: {format: "steps", steps: [[t_ns, value], ...]} (before
 * its first step the first value holds; looping, its last line ends the period, like a Mahimahi
 * trace) or {format: "segments", segments: [[duration_ns, value], ...], repeat, loop_from} (a
 * netem-trace model, which says itself how it repeats: looping when it repeats forever, repeat = 0,
 * from segment `loop_from` on (default 0), whatever the cell's `loop`; a looping trace repeats
 * [loop_at, period)); after a model that ends, its last value holds, as in upstream's Bw/Delay/
 * LossReplay). `loop` is the cell's own `loop`, for step traces. A segment's value may be a list of
 * one number (a loss model's pattern); longer lists are for rt_steps_from_loss_trace. */
int rt_steps_from_trace(rt_steps *s, const rt_config *trace, int loop, uint64_t now);
double rt_steps_at(rt_steps *s, uint64_t t);  /* leaves s->i at the step in force at t */
uint64_t rt_steps_next(const rt_steps *s, uint64_t t);  /* the first step after t (RT_NEVER: none) */
void rt_steps_free(rt_steps *s);

/* Loss patterns per step (loss_trace; upstream's LossReplay, netem-trace's LossPattern): step i's
 * pattern is p[off[i] .. off[i] + len[i]), entry k the loss probability of a packet after k
 * consecutive losses, the last entry repeating. rt_steps_from_loss_trace reads the same trace as
 * rt_steps_from_trace, but a segment's value may be a list of probabilities (a model's
 * `StaticLossConfig.loss`; an empty list never drops, as upstream); a step's value is its pattern's
 * first entry. A `steps` trace gives one-entry patterns. */
typedef struct { uint32_t *off, *len; double *p; uint32_t n_p; } rt_step_patterns;
int rt_steps_from_loss_trace(rt_steps *s, rt_step_patterns *pt, const rt_config *trace, int loop, uint64_t now);
void rt_step_patterns_free(rt_step_patterns *pt);

/* A min-heap of packets by (depart, seq): departures of cells whose packets may overtake each other
 * (`delay` with reordering, `delay_per_packet`). rt_pheap_push gives RT_ENOMEM when it cannot grow;
 * free `a` at the end. */
typedef struct { rt_pkt **a; size_t n, cap; } rt_pheap;

static inline int rt_pheap_before(const rt_pkt *x, const rt_pkt *y) {
    return x->depart < y->depart || (x->depart == y->depart && x->seq < y->seq);
}

static inline int rt_pheap_push(rt_pheap *h, rt_pkt *k) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        rt_pkt **a = (rt_pkt **)realloc(h->a, cap * sizeof *a);
        if (!a) return RT_ENOMEM;
        h->a = a;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!rt_pheap_before(k, h->a[p])) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = k;
    return RT_OK;
}

/* The earliest departure's departure time, RT_NEVER when empty. */
static inline uint64_t rt_pheap_next(const rt_pheap *h) { return h->n ? h->a[0]->depart : RT_NEVER; }

static inline rt_pkt *rt_pheap_pop(rt_pheap *h) {
    rt_pkt *top = h->a[0], *last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && rt_pheap_before(h->a[c + 1], h->a[c])) c++;
        if (!rt_pheap_before(h->a[c], last)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n) h->a[i] = last;
    return top;
}

/* The trace cells' `start` (`run`, the default, or `first_packet`): sets *first_packet, or fails
 * naming the parameter. */
static inline int rt_cfg_trace_start(const rt_config *c, int *first_packet) {
    const char *start = rt_cfg_has(c, "start") ? rt_cfg_str(c, "start") : "run";
    *first_packet = strcmp(start, "first_packet") == 0;
    if (!*first_packet && strcmp(start, "run") != 0 && !rt_cfg_status(c))
        return rt_cfg_fail(c, "start", "must be `run` or `first_packet`");
    return rt_cfg_status(c);
}

/* Time 0 of a `start = first_packet` trace, seen by a packet arriving at t: the channel's first
 * arrival (never later than t). */
static inline uint64_t rt_trace_origin(const rt_node *n, uint64_t t) {
    uint64_t t0 = rt_first_arrival(n);
    return t0 <= t ? t0 : t;
}

/* Upstream's ingress_round_up(packet_timestamp, trace_start, round_up) (rattan-core/src/cells/delay.rs):
 * `t` moved up to the next multiple of `round_up` after `origin`; a time on the grid, or before
 * `origin` (or with no origin yet, RT_NEVER), is kept. */
static inline uint64_t rt_round_up_from(uint64_t t, uint64_t origin, uint64_t round_up) {
    if (!round_up || origin == RT_NEVER || t <= origin) return t;
    uint64_t rem = (t - origin) % round_up;
    return rem ? t + (round_up - rem) : t;
}

/* One packet through a loss pattern of `len` (>= 1) probabilities, `*run` the losses in a row so far
 * (shared by `loss` with `pattern` and `loss_trace`): lost when u < p[min(run, len - 1)]. */
static inline int rt_pattern_lost(const double *p, uint32_t len, uint32_t *run, double u) {
    int lost = u < p[*run < len ? *run : len - 1];
    *run = lost ? *run + 1 : 0;
    return lost;
}

#endif /* RT_CELL_API */
#endif
