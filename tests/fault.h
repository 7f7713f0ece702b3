/*
 * Fault injection for the tests of error paths (neco's fail counters, done
 * with the linker): test-faults links with --wrap for each call below, so
 * that weft's calls to them, from the static library, come here first. An
 * armed call fails once, after a given number of calls succeed, with the
 * errno the real call would give for the shortage it stands for.
 */
#ifndef WEFT_TESTS_FAULT_H
#define WEFT_TESTS_FAULT_H

#include <stdbool.h>

enum fault_call {
  FAULT_MALLOC, /* malloc, calloc and realloc, counted together: ENOMEM */
  FAULT_MMAP,   /* ENOMEM */
  FAULT_MADVISE,
  FAULT_MPROTECT,
  FAULT_EPOLL_CTL,     /* ENOMEM */
  FAULT_EPOLL_CREATE1, /* EMFILE */
  FAULT_EVENTFD,       /* EMFILE */
  FAULT_SIGNALFD,      /* EMFILE */
  FAULT_PIPE,          /* pipe and pipe2: EMFILE */
  FAULT_KINDS
};

/* The name of a kind, for messages. */
const char *fault_name(enum fault_call c);

/* Makes the call after the next `after` successful calls of kind c fail,
 * once. Disarms every other kind. */
void fault_arm(enum fault_call c, int after);

/* Disarms everything. Returns whether the armed failure happened. */
bool fault_disarm(void);

#endif
