/*
 * A thread's spin before it sleeps. See spin.h.
 */
#include "spin.h"

#include "../core/coro.h"
#include "../core/cpu.h"
#include "hub-private.h"

/* The spin's length, while the thread spins, adapts to how long its waits
 * take: a wait that a wake ended within SPIN_MAX of its start, after the
 * thread had slept, spins that long and a quarter more next time; one
 * that the spin ended drifts back towards SPIN_MIN; a long one brings it
 * to SPIN_MIN. (Two threads taking turns on two CPUs both spin, and a
 * round trip takes a fraction of a microsecond; once one of them sleeps,
 * the other's reply reaches it only after the wake-up latency, during
 * which a shorter spin of the other runs out: it sleeps too, and so on,
 * each turn paying a sleep and a wake.)
 *
 * IN_THE_WAY_ROW spins in a row that were in the way make the thread
 * sleep at once. One spin in the way says little: a thread just started,
 * or woken, lands on a busy CPU now and then, and moves on. While it
 * sleeps at once, every probe_gap-th wait spins again, the gap doubling
 * from PROBE_GAP_FIRST to PROBE_GAP_MAX with each probe still in the way,
 * so that a thread that stays in the way loses at most one spin in
 * PROBE_GAP_MAX waits. */
#define SPIN_MIN WEFT_US(10)
#define SPIN_MAX WEFT_US(200)
enum { IN_THE_WAY_ROW = 3, PROBE_GAP_FIRST = 16, PROBE_GAP_MAX = 1024 };

struct spin {
  int64_t budget;       /* the next spin while spinning; 0: SPIN_MIN */
  bool sleeps_at_once;  /* recent spins were in the way */
  bool probing;         /* the current wait spins to look again */
  uint8_t in_the_way;   /* spins in a row that were in the way */
  uint16_t probe_gap;   /* waits from one probe to the next */
  uint16_t since_probe; /* waits since the last probe */
};

static WEFT__TLS struct spin me;

int64_t weft__spin_budget(void) {
  if (!weft__cpu_spinning_pays())
    return 0;
  int64_t budget = me.budget ? me.budget : SPIN_MIN;
  me.probing = false;
  if (!me.sleeps_at_once)
    return budget;
  if (++me.since_probe < me.probe_gap)
    return 0;
  me.since_probe = 0;
  me.probing = true;
  return budget;
}

/* Spinning pays: spin budget (within bounds) from the next wait on. */
static void spin_again(int64_t budget) {
  me.budget = budget < SPIN_MIN   ? SPIN_MIN
              : budget > SPIN_MAX ? SPIN_MAX
                                  : budget;
  me.sleeps_at_once = false;
  me.in_the_way = 0;
}

void weft__spin_paid(int64_t budget) { spin_again(budget - budget / 8); }

void weft__spin_slept(int64_t waited, bool spun, bool on_my_cpu) {
  if (on_my_cpu) {
    if (!spun)
      return; /* it took the CPU given up: nothing learned */
    if (me.probing) {
      if (me.probe_gap < PROBE_GAP_MAX)
        me.probe_gap *= 2;
    } else if (++me.in_the_way >= IN_THE_WAY_ROW) {
      me.sleeps_at_once = true;
      me.probe_gap = PROBE_GAP_FIRST;
      me.since_probe = 0;
    }
    return;
  }
  if (waited > SPIN_MAX)
    me.budget = SPIN_MIN; /* no spin would have paid: spin little */
  else
    spin_again(waited + waited / 4); /* a longer spin would have paid */
}
