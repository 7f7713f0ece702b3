/*
 * What the stress programs share: a small random number generator whose
 * sequence each program's seed fixes, so that a failing run can be
 * repeated. Times come from weft_now (CLOCK_MONOTONIC, as weft's own).
 */
#ifndef WEFT_TESTS_STRESS_H
#define WEFT_TESTS_STRESS_H

/* The next number of the sequence *seed is at (a linear congruential
 * generator; its low bits are dropped, as they cycle fast). */
static inline unsigned stress_next(unsigned *seed) {
  *seed = *seed * 1103515245u + 12345u;
  return *seed >> 8;
}

#endif
