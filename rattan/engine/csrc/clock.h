/* How the real-time loop sleeps until its next deadline and wakes (engine-internal; see clock.c). */
#ifndef RATTAN_CLOCK_H
#define RATTAN_CLOCK_H

#include "rattan_engine.h"

#include <stdint.h>

typedef struct clock_ctx clock_ctx;

/* Writes up to `max` pointers of sources with input waiting into `ready`; returns how many. Called
 * while spinning (precise mode), so it must not make a system call. */
typedef int (*clock_poll_fn)(void *arg, void **ready, int max);

/* A sleeper for the calling thread (its timer slack is set to 1 ns). `precise`: spin the last
 * stretch before each deadline, the stretch measured here from this machine's wake-up latency
 * (about 40 ms of timer sleeps). `coalesce_ns`: the smallest gap between two timer wake-ups (0: each
 * deadline has its own; RT_COALESCE_AUTO: derived from the wake-ups it sees). `stats` (the engine's)
 * receives the counters and the figures chosen, written with relaxed atomic stores. NULL on failure,
 * with errno set. */
clock_ctx *clock_open(int precise, int64_t coalesce_ns, rt_timing *stats);
void clock_close(clock_ctx *c);

/* Wake up as well when `fd` is readable; `clock_wait_until` then hands back `ptr` (not NULL). */
int clock_watch(clock_ctx *c, int fd, void *ptr);

/* Wait until the CLOCK_MONOTONIC time `deadline` (ns; RT_NEVER: none) is due, or a watched fd is
 * readable (or, while spinning, `poll` sees input). Returns how many sources are in `ready` (0: the
 * deadline is due). The timer is re-armed only when the deadline it would be armed for moves. */
int clock_wait_until(clock_ctx *c, uint64_t deadline, void **ready, int max, clock_poll_fn poll, void *arg);

/* CLOCK_MONOTONIC now, in ns. */
uint64_t clock_mono_ns(void);

#endif
