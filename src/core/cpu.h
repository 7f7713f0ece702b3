/*
 * Spinning: weft__cpu_relax, the hint a spin loop gives the CPU each
 * round (x86's pause, aarch64's yield; nothing elsewhere), so that it
 * wastes less power and lets a sibling hyper-thread run; and whether
 * spinning can pay at all. And weft__cpu_prefetch_for_write, a hint that
 * a cache line will soon be written.
 */
#ifndef WEFT_CORE_CPU_H
#define WEFT_CORE_CPU_H

#include <stdbool.h>

/* Whether a thread waiting for another should spin before it sleeps: not
 * when the process may run on one CPU only (the one it would wait for
 * could not run meanwhile). Asked of the kernel once, when first called:
 * an affinity changed later is not seen. */
bool weft__cpu_spinning_pays(void);

static inline void weft__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Asks for p's cache line in the state a write needs (owned), without
 * waiting for it: x86's prefetchw (a no-op on CPUs without it), aarch64's
 * prfm pstl1keep; nothing elsewhere. */
static inline void weft__cpu_prefetch_for_write(const void *p) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__("prefetchw %0" ::"m"(*(const char *)p));
#elif defined(__aarch64__)
  __asm__("prfm pstl1keep, %0" ::"Q"(*(const char *)p));
#else
  (void)p;
#endif
}

#endif
