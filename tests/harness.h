/*
 * A small test harness. Each test program defines cases with TEST(name);
 * the harness's main runs every case (or those named on the command line)
 * in a child process of its own (arguments pick cases by a part of their
 * name; "-part" leaves them out), with a timeout, so that a crash or a
 * deadlock fails that case by name instead of taking the run down or hanging
 * it.
 *
 * Environment:
 *   WEFT_TEST_TIMEOUT_MULTIPLIER  scales every timeout (slow emulators,
 *                                 sanitizers); default 1
 *   WEFT_TEST_NOFORK=1            run cases in-process (for a debugger)
 *
 *   WEFT_TEST_EMULATED=1          set by ctest when the tests run under an
 *                                 emulator (qemu-user)
 *
 * Output: one line per case ("ok", "not ok" with the reason, or "ok … # SKIP"
 * with why it cannot run here), then "N passed, N failed, N skipped". The
 * exit status is 1 when any case failed.
 */
#ifndef WEFT_TESTS_HARNESS_H
#define WEFT_TESTS_HARNESS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef void (*harness_fn)(void);

void harness_register(const char *name, harness_fn fn, int timeout_sec);
_Noreturn void harness_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
double harness_timeout_multiplier(void);

/* Ends the running case as skipped: it cannot run in this build or on this
 * machine, for the reason given. */
_Noreturn void harness_skip(const char *why);

/* Whether the tests run under an emulator (WEFT_TEST_EMULATED). */
bool harness_emulated(void);

/* Runs fn(arg) in a child process, capturing what it writes to stderr into
 * buf (NUL-terminated, cut to cap - 1 bytes). Returns the child's wait
 * status. Environment variables in env ("NAME=value", NULL-terminated, may
 * be NULL) are set in the child before fn runs. */
int harness_run_child(void (*fn)(void *), void *arg, const char *const *env,
                      char *buf, size_t cap);

/* ASAN: 1 in an AddressSanitizer build (GCC's macro, or clang's feature),
 * for the cases whose outcome it changes. */
#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif
#ifndef ASAN
#define ASAN 0
#endif

/* Integers through void pointers, as tests pass them to tasks and
 * generators. */
#define IV(x) ((void *)(intptr_t)(x))
#define VI(p) ((intptr_t)(p))

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t harness_now_ns(void);

#define TEST_TIMEOUT(name, seconds)                                            \
  static void test_##name(void);                                               \
  __attribute__((constructor)) static void register_##name(void) {             \
    harness_register(#name, test_##name, seconds);                             \
  }                                                                            \
  static void test_##name(void)

#define TEST(name) TEST_TIMEOUT(name, 30)

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      harness_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);             \
  } while (0)

#define CHECK_EQ(a, b)                                                         \
  do {                                                                         \
    intmax_t a_ = (intmax_t)(a), b_ = (intmax_t)(b);                           \
    if (a_ != b_)                                                              \
      harness_fail(__FILE__, __LINE__, "%s == %s failed: %jd != %jd", #a, #b,  \
                   a_, b_);                                                    \
  } while (0)

#define CHECK_PTR_EQ(a, b)                                                     \
  do {                                                                         \
    const void *a_ = (a), *b_ = (b);                                           \
    if (a_ != b_)                                                              \
      harness_fail(__FILE__, __LINE__, "%s == %s failed: %p != %p", #a, #b,    \
                   a_, b_);                                                    \
  } while (0)

#define CHECK_STR_HAS(hay, needle)                                             \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (!h_ || !strstr(h_, n_))                                                \
      harness_fail(__FILE__, __LINE__, "\"%s\" not found in:\n%s", n_,         \
                   h_ ? h_ : "(null)");                                        \
  } while (0)

#endif
