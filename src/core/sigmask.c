/* The signals weft blocked, per thread. See sigmask.h. */
#define _GNU_SOURCE
#include "sigmask.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

/* The signals weft blocked in this thread that it had not blocked before.
 * Initial-exec, as weft's other thread-locals: no allocation on first use,
 * so that the overflow handler may touch it. Emptied by sigemptyset on
 * first use (added_ready), then read through sigismember and written
 * through sigaddset and sigdelset only. */
static __thread __attribute__((tls_model("initial-exec"))) sigset_t added;
static __thread __attribute__((tls_model("initial-exec"))) bool added_ready;

static sigset_t *record(void) {
  if (!added_ready) {
    sigemptyset(&added);
    added_ready = true;
  }
  return &added;
}

int weft__sigmask_block(const sigset_t *set, sigset_t *old) {
  sigset_t before;
  int err = pthread_sigmask(SIG_BLOCK, set, &before);
  if (err)
    return -err;
  sigset_t *rec = record();
  for (int sig = 1; sig < NSIG; sig++)
    if (sigismember(set, sig) == 1 && sigismember(&before, sig) == 0)
      sigaddset(rec, sig);
  if (old)
    *old = before;
  return 0;
}

void weft__sigmask_restore(const sigset_t *mask) {
  pthread_sigmask(SIG_SETMASK, mask, NULL);
  sigset_t *rec = record();
  for (int sig = 1; sig < NSIG; sig++)
    if (sigismember(mask, sig) == 0)
      sigdelset(rec, sig);
}

void weft__sigmask_for_child(const sigset_t *from, sigset_t *out) {
  if (from)
    *out = *from;
  else
    pthread_sigmask(SIG_BLOCK, NULL, out);
  sigset_t *rec = record();
  for (int sig = 1; sig < NSIG; sig++)
    if (sigismember(rec, sig) == 1)
      sigdelset(out, sig);
}

void weft__sigmask_record_get(sigset_t *out) { *out = *record(); }

void weft__sigmask_record_set(const sigset_t *rec) { *record() = *rec; }

void weft__sigmask_reset_in_child(void) {
  sigset_t *rec = record();
  pthread_sigmask(SIG_UNBLOCK, rec, NULL);
  sigemptyset(rec);
}
