/*
 * weft/core.h — what every layer of weft shares: error codes, time units,
 * the version, and the symbol-export marker.
 *
 * Conventions (they hold for every public header):
 *  - A function that can fail returns int: 0 (or a count) on success, a
 *    negative errno on failure. weft never aborts on a caller's mistake and
 *    leaves every object as it was when it returns an error.
 *  - Times are int64_t nanoseconds, relative. A timeout of WEFT_FOREVER
 *    waits without end; 0 polls; a positive one waits that long at most.
 *    Any other negative timeout is -EINVAL, checked before the call does
 *    anything (no lock taken, nothing queued, read or written).
 *    weft_sleep takes a duration, not a timeout: a negative one, even
 *    WEFT_FOREVER, is -EINVAL.
 */
#ifndef WEFT_CORE_H
#define WEFT_CORE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the functions that form weft's ABI; everything else is hidden. */
#define WEFT_API __attribute__((visibility("default")))

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

/* Time: one unit everywhere, nanoseconds, relative to now. WEFT_FOREVER is
 * the only negative timeout; every other one is -EINVAL. */
#define WEFT_FOREVER ((int64_t)-1)
#define WEFT_NS(n)   ((int64_t)(n))
#define WEFT_US(n)   ((int64_t)(n)*1000)
#define WEFT_MS(n)   ((int64_t)(n)*1000000)
#define WEFT_SEC(n)  ((int64_t)(n)*1000000000)

/*
 * weft_strerror — the message for a code weft returned.
 *
 * Takes a negative errno as weft returns it (a positive one is accepted too)
 * and returns a static, immutable string, for every int: 0 gives "Success",
 * codes that are no errno (INT_MIN and INT_MAX among them) give
 * "Unknown error". Never fails, never blocks; callable from any thread, any
 * task, a signal handler, and after fork.
 */
WEFT_API const char *weft_strerror(int code);

/*
 * weft_version — the library's version as "MAJOR.MINOR.PATCH", which may
 * differ from the WEFT_VERSION_* macros a program was compiled with. Never
 * fails; callable from anywhere.
 */
WEFT_API const char *weft_version(void);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_CORE_H */
