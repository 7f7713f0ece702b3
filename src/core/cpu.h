/*
 * Spinning: weft__cpu_relax, the hint a spin loop gives the CPU each
 * round (x86's pause, aarch64's yield; nothing elsewhere), so that it
 * wastes less power and lets a sibling hyper-thread run; and whether
 * spinning can pay at all.
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

#endif
