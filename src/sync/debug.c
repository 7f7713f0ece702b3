/*
 * The sync layer's debugging modes. See debug.h.
 */
#define _GNU_SOURCE
#include "debug.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <weft/sync.h>

#include "../core/coro.h"
#include "watchdog.h"

int weft__sync_debug = -1;

static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static bool set(const char *v) { return v && *v && strcmp(v, "0") != 0; }

static void read_env(void) {
  int modes = set(getenv("WEFT_LOCKCHECK")) ? WEFT__DEBUG_LOCKCHECK : 0;
  const char *v = getenv("WEFT_WATCHDOG");
  if (set(v))
    modes |= WEFT__DEBUG_HOLDERS;
  __atomic_store_n(&weft__sync_debug, modes, __ATOMIC_RELAXED);
  if (!set(v))
    return;
  /* "1" (or anything not a number above 1): a scan a second; else the
   * number is the milliseconds between scans. */
  long ms = strtol(v, NULL, 10);
  if (ms <= 1)
    ms = 1000;
  if (weft__watchdog_start(WEFT_MS(ms), WEFT__WATCHDOG_REPORT) < 0) {
    static const char failed[] =
        "weft: WEFT_WATCHDOG: the watchdog thread could not start\n";
    weft__say(failed, sizeof failed - 1);
  }
}

void weft__site_name(const void *site, char *buf, size_t cap) {
  Dl_info info;
  if (!site || !dladdr(site, &info)) {
    snprintf(buf, cap, "%p", site);
  } else if (info.dli_sname) {
    snprintf(
        buf, cap, "%s+0x%lx", info.dli_sname,
        (unsigned long)((const char *)site - (const char *)info.dli_saddr));
  } else {
    const char *file = info.dli_fname ? strrchr(info.dli_fname, '/') : NULL;
    snprintf(
        buf, cap, "%s+0x%lx",
        file ? file + 1 : (info.dli_fname ? info.dli_fname : "?"),
        (unsigned long)((const char *)site - (const char *)info.dli_fbase));
  }
}

int weft__sync_debug_read_env(void) {
  pthread_once(&env_once, read_env);
  return __atomic_load_n(&weft__sync_debug, __ATOMIC_RELAXED);
}

void weft__sync_debug_enable(int bits) {
  weft__sync_debug_read_env();
  __atomic_fetch_or(&weft__sync_debug, bits, __ATOMIC_RELAXED);
}
