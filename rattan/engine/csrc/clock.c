/* How the real-time loop sleeps until its next deadline and wakes: a timerfd armed at an absolute
 * CLOCK_MONOTONIC time, in one epoll set with the loop's receive rings and wake eventfd.
 *
 * A timer wake-up on these VMs comes 15-110 us after the time armed, and arming the timer is itself
 * costly (timerfd_settime reprograms the local APIC timer, a VM exit: 17 % of the engine's time at
 * 1 Gbit/s when every departure re-armed it). So:
 *
 * - Default mode: the timer is armed `margin` early, margin being the least wake-up latency seen in
 *   the last MARGIN_SAMPLES timer wake-ups, so that the wake-up lands near the deadline instead of a
 *   whole latency after it. When it still fires early, the loop sleeps again until the deadline
 *   itself: nothing leaves before its time. Timer wake-ups are also spaced by at least the
 *   coalescing window: frames due meanwhile share the next one. By default the window is the spread
 *   of those wake-up latencies (their p90 less their least, at most COALESCE_MAX_NS): a wake-up of
 *   a frame's own, armed `margin` early, comes up to that much after its time one time in ten
 *   anyway, so sharing one costs little lateness beyond the timer's own. Input wakes the loop at
 *   once whatever the spacing, and everything due then leaves with it.
 * - Precise mode: the timer is armed `stretch` early, stretch being the p99 of CALIB_SLEEPS timer
 *   sleeps measured when the clock opens, and the last stretch is spun reading the clock, with the
 *   receive rings checked at every turn, so a frame leaves within the clock read's time of its
 *   deadline unless the wake-up came later than its p99. It costs the CPU of the spinning.
 */
#define _GNU_SOURCE
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define CALIB_SLEEPS 300        /* p99 from 300 samples: the 3rd largest */
#define CALIB_GAP_NS 100000ULL  /* each sleep: 100 us, about the spacing of departures under load */
#define MARGIN_SAMPLES 128      /* recent wake-up latencies the default mode learns from */
#define LEARN_EVERY 32          /* ... recomputed after this many more */
#define COALESCE_MAX_NS 50000ULL /* the automatic window's cap, half the default's lateness goal (p99
                                  100 us): long wake-ups on a loaded machine must not hold frames longer */

#define STORE(field, v) __atomic_store_n(&(field), (uint64_t)(v), __ATOMIC_RELAXED)
#define BUMP(field, v) STORE(field, (field) + (uint64_t)(v))

struct clock_ctx {
    int ep, tfd;
    int precise;
    int64_t coalesce_ns;         /* as asked: RT_COALESCE_AUTO follows the margin */
    uint64_t armed;              /* the time the timer is armed for; 0: disarmed or fired */
    uint64_t stretch_ns;         /* precise mode */
    uint64_t margin_ns;          /* default mode: how early the timer is armed */
    uint64_t auto_ns;            /* default mode: the automatic coalescing window */
    uint64_t last_timer;         /* when the timer last woke us for a deadline that was due */
    uint64_t lat[MARGIN_SAMPLES];/* recent wake-up latencies (default mode), a ring */
    unsigned n_lat, next_lat;
    rt_timing *st;
};

uint64_t clock_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void arm(clock_ctx *c, uint64_t at) {
    if (at == c->armed) return;  /* a fired timer stays readable until read, so an unchanged one can stay */
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(at / 1000000000u);
    its.it_value.tv_nsec = (long)(at % 1000000000u);
    timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    c->armed = at;
    BUMP(c->st->counters.timer_sets, 1);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Time this thread has spent runnable but waiting for a CPU (ns; 0 if the kernel does not say). */
static uint64_t runqueue_wait(int fd) {
    char buf[96];
    ssize_t n = fd >= 0 ? pread(fd, buf, sizeof buf - 1, 0) : -1;
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strchr(buf, ' ');  /* "on-CPU wait timeslices" */
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* The machine's wake-up latency: CALIB_SLEEPS timer sleeps through the loop's own epoll set, each
 * CALIB_GAP_NS long; the stretch is their p99. The time a sleep's wake-up then waited for a CPU
 * that another task held is left out: that is the machine's load of the moment, not its wake-up
 * latency (under a load average of 7 on two cores it put the p99 at 2-3 ms, a stretch that would
 * spin the whole time). */
static int calibrate(clock_ctx *c) {
    uint64_t *lat = malloc(CALIB_SLEEPS * sizeof *lat);
    if (!lat) return -1;
    int sfd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    for (int i = 0; i < CALIB_SLEEPS; i++) {
        uint64_t waited = runqueue_wait(sfd);
        uint64_t at = clock_mono_ns() + CALIB_GAP_NS;
        arm(c, at);
        struct epoll_event ev;
        int n;
        do n = epoll_wait(c->ep, &ev, 1, -1); while (n < 0 && errno == EINTR);
        uint64_t woke = clock_mono_ns(), junk;
        ssize_t r = read(c->tfd, &junk, sizeof junk);
        (void)r;
        c->armed = 0;
        waited = runqueue_wait(sfd) - waited;
        lat[i] = woke > at + waited ? woke - at - waited : 0;
    }
    if (sfd >= 0) close(sfd);
    qsort(lat, CALIB_SLEEPS, sizeof *lat, cmp_u64);
    c->stretch_ns = lat[CALIB_SLEEPS * 99 / 100];
    if (!c->stretch_ns) c->stretch_ns = 1;
    STORE(c->st->chosen.stretch_ns, c->stretch_ns);
    STORE(c->st->chosen.calib_p50_ns, lat[CALIB_SLEEPS / 2]);
    free(lat);
    return 0;
}

clock_ctx *clock_open(int precise, int64_t coalesce_ns, rt_timing *stats) {
    prctl(PR_SET_TIMERSLACK, 1UL);  /* wake at the deadline's nanosecond, not 50 us later */
    clock_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->st = stats;
    c->precise = precise != 0;
    c->coalesce_ns = precise ? 0 : coalesce_ns;  /* precise: every deadline its own, exactly */
    c->ep = epoll_create1(EPOLL_CLOEXEC);
    c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (c->ep < 0 || c->tfd < 0 || epoll_ctl(c->ep, EPOLL_CTL_ADD, c->tfd, &ev) < 0
        || (c->precise && calibrate(c) < 0)) {
        int err = errno;
        clock_close(c);
        errno = err;
        return NULL;
    }
    STORE(c->st->chosen.precise, c->precise);
    STORE(c->st->chosen.coalesce_ns, c->coalesce_ns > 0 ? (uint64_t)c->coalesce_ns : 0);
    return c;
}

void clock_close(clock_ctx *c) {
    if (!c) return;
    if (c->tfd >= 0) close(c->tfd);
    if (c->ep >= 0) close(c->ep);
    free(c);
}

int clock_watch(clock_ctx *c, int fd, void *ptr) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};
    return epoll_ctl(c->ep, EPOLL_CTL_ADD, fd, &ev);
}

/* A timer wake-up `late` after the time armed. Every LEARN_EVERY of them, from the last
 * MARGIN_SAMPLES: the margin is the least, the automatic window the p90 less the least. */
static void learn(clock_ctx *c, uint64_t late) {
    c->lat[c->next_lat] = late;
    c->next_lat = (c->next_lat + 1) % MARGIN_SAMPLES;
    if (c->n_lat < MARGIN_SAMPLES) c->n_lat++;
    if (c->n_lat < MARGIN_SAMPLES / 4 || c->next_lat % LEARN_EVERY) return;  /* too few to trust yet */
    uint64_t sorted[MARGIN_SAMPLES];
    memcpy(sorted, c->lat, c->n_lat * sizeof *sorted);
    qsort(sorted, c->n_lat, sizeof *sorted, cmp_u64);
    c->margin_ns = sorted[0];
    uint64_t spread = sorted[c->n_lat * 9 / 10] - sorted[0];
    c->auto_ns = spread < COALESCE_MAX_NS ? spread : COALESCE_MAX_NS;
    STORE(c->st->chosen.margin_ns, c->margin_ns);
    if (c->coalesce_ns == RT_COALESCE_AUTO) STORE(c->st->chosen.coalesce_ns, c->auto_ns);
}

static uint64_t coalesce(const clock_ctx *c) {
    if (c->coalesce_ns == RT_COALESCE_AUTO) return c->auto_ns;
    return c->coalesce_ns > 0 ? (uint64_t)c->coalesce_ns : 0;
}

/* Precise mode: read the clock until `deadline`, returning early with any input `poll` sees. */
static int spin(clock_ctx *c, uint64_t deadline, void **ready, int max, clock_poll_fn poll, void *arg) {
    uint64_t t0 = clock_mono_ns(), now = t0;
    int n = 0;
    while (now < deadline && !(n = poll(arg, ready, max))) now = clock_mono_ns();
    BUMP(c->st->counters.spin_ns, clock_mono_ns() - t0);
    return n;
}

int clock_wait_until(clock_ctx *c, uint64_t deadline, void **ready, int max, clock_poll_fn poll, void *arg) {
    uint64_t target = deadline;  /* when the loop should run next, with no input */
    uint64_t gap = coalesce(c);
    if (target != RT_NEVER && gap && c->last_timer && target < c->last_timer + gap) target = c->last_timer + gap;
    /* coalescing off is the timing before batching: the timer armed at the deadline itself */
    uint64_t lead = c->precise ? c->stretch_ns : c->coalesce_ns ? c->margin_ns : 0;
    for (;;) {
        uint64_t now = clock_mono_ns();
        if (target != RT_NEVER && now >= target) return 0;
        if (target == RT_NEVER) {
            if (c->armed) {
                struct itimerspec off = {0};
                timerfd_settime(c->tfd, 0, &off, NULL);
                c->armed = 0;
                BUMP(c->st->counters.timer_sets, 1);
            }
        } else if (target - now <= lead) {  /* within the lead already */
            if (c->precise) {
                int n = spin(c, target, ready, max, poll, arg);
                if (!n) c->last_timer = clock_mono_ns();
                return n;
            }
            arm(c, target);
        } else {
            arm(c, target - lead);
        }
        struct epoll_event evs[16];
        int cap = max < 16 ? max : 16;
        int n = epoll_wait(c->ep, evs, cap, -1), k = 0, fired = 0;
        if (n < 0) continue;  /* EINTR */
        uint64_t woke = clock_mono_ns();
        BUMP(c->st->counters.wakeups, 1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr) { ready[k++] = evs[i].data.ptr; continue; }
            uint64_t junk;
            ssize_t r = read(c->tfd, &junk, sizeof junk);
            (void)r;
            fired = 1;
        }
        if (fired) {
            BUMP(c->st->counters.timer_wakeups, 1);
            uint64_t armed = c->armed;
            c->armed = 0;
            if (!c->precise && woke >= armed) learn(c, woke - armed);
            if (woke < target) {  /* early: the lead was more than this wake-up's latency */
                BUMP(c->st->counters.early_wakeups, 1);
                lead = c->precise ? lead : 0;  /* default: sleep again for the deadline itself */
            } else {
                c->last_timer = woke;
            }
        }
        if (k) return k;
    }
}
