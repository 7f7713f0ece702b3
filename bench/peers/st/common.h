/*
 * What the state-threads peers share: starting the library on the best
 * event system this build of it has, and the open-files limit.
 */
#ifndef WEFT_BENCH_ST_COMMON_H
#define WEFT_BENCH_ST_COMMON_H

#include <st.h>
#include <sys/resource.h>

/* Raises the soft limit on open files to the hard limit; returns it. */
static inline rlim_t st_peer_raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

/*
 * Starts state-threads on epoll (ST_EVENTSYS_ALT) where the library was
 * built with it, else on poll(2): the default, select(2), stops at
 * FD_SETSIZE descriptors (st_init even lowers RLIMIT_NOFILE to it), too
 * few for 10,000 connections. Debian's libst 1.9 has no epoll, so this is
 * poll. Returns the event system's name, or NULL when st_init fails.
 */
static inline const char *st_peer_init(void) {
  st_peer_raise_fd_limit();
  /* Without epoll, ST_EVENTSYS_ALT may succeed and choose nothing. */
  if (st_set_eventsys(ST_EVENTSYS_ALT) != 0 || st_get_eventsys() < 0)
    st_set_eventsys(ST_EVENTSYS_POLL);
  if (st_init() != 0)
    return NULL;
  return st_get_eventsys_name();
}

#endif
