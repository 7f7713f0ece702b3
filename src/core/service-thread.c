/* weft__service_thread_start. See service-thread.h. */
#include "service-thread.h"

#include <pthread.h>
#include <signal.h>

enum { SERVICE_STACK = 64 * 1024 };

int weft__service_thread_start(void *(*fn)(void *), void *arg) {
  pthread_attr_t attr;
  int err = pthread_attr_init(&attr);
  if (err)
    return -err;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, SERVICE_STACK);
  /* Created with every signal blocked, it inherits that mask. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t th;
  err = pthread_create(&th, &attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  return -err;
}
