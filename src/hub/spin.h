/*
 * How long a plain thread spins on its waiter before it sleeps (waiter.c),
 * learned per thread from how its waits ended.
 *
 * A spin pays when the thread it waits for runs meanwhile on another CPU:
 * the wake then costs neither side a system call, nor the sleeper the
 * wake-up latency (tens of microseconds between the CPUs of a virtual
 * machine). It does worse than nothing when that thread needs the very
 * CPU the spinner holds: on a busy machine, or when the scheduler put the
 * two on one CPU, the spinner burns its whole budget, then sleeps, and
 * only then does the other run, at once, on the CPU just given up. So a
 * spin that ran out is followed by a look at where the wake came from:
 * from the CPU the thread spun on means the spin was in the way. After a
 * few such spins in a row the thread sleeps at once, as a thread that
 * never spins would, and only now and then spins again to see whether
 * things changed (at growing gaps while they have not). A spin that pays,
 * or a wake from another CPU soon after the sleep began, makes it spin
 * again.
 *
 * The state is the calling thread's own: no locks, nothing shared.
 */
#ifndef WEFT_HUB_SPIN_H
#define WEFT_HUB_SPIN_H

#include <stdbool.h>
#include <stdint.h>

/* How long, in ns, the calling thread's next wait should spin before it
 * sleeps; 0: not at all. Counts the wait (for the look now and then). */
int64_t weft__spin_budget(void);

/* The wait that asked for budget was ended by a wake during its spin. */
void weft__spin_paid(int64_t budget);

/* The wait slept and was woken after waited ns in all: spun, whether it
 * had spun its whole budget first; on_my_cpu, whether its waker ran on
 * the CPU the thread went to sleep on (when it spun first, the spin was
 * in the waker's way). */
void weft__spin_slept(int64_t waited, bool spun, bool on_my_cpu);

#endif
