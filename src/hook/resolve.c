/*
 * Name resolution off the hub: getaddrinfo, getnameinfo and
 * gethostbyname_r, called in a task, run on a small pool of resolver
 * threads while the task parks (gevent's threadpool resolver). glibc's
 * resolver polls its sockets with calls internal to libc, which no hook
 * reaches, so in the task itself it would block the whole hub for as long
 * as a DNS server takes to answer.
 *
 * The pool: up to RESOLVERS plain threads, started as jobs come and none
 * is free, kept for the life of the process; a job queue under `mu`. A job
 * is shared by the task that asked and the thread that answers, and freed
 * by whichever lets go last (`refs`, counted under `mu`: a mutex rather
 * than an atomic, so that ThreadSanitizer, which does not instrument the
 * hooks but intercepts the mutex, sees the last one's free come after the
 * other's reads). The thread works on the job's own
 * copies of what it writes (the name buffers, the hostent and its
 * storage), so a task cancelled while its lookup runs leaves at once, and
 * the thread's late answer lands in memory nobody else uses.
 *
 * Lock order: `mu` only; a thread sets a job's event after letting go of
 * `mu`.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <weft/sync.h>

#include "hook-private.h"

enum { RESOLVERS = 4 };

enum job_kind { ADDRINFO, NAMEINFO, HOSTBYNAME };

struct job {
  enum job_kind kind;
  struct job *next;
  weft_event done;
  int refs; /* under mu */
  /* The arguments, copied: a cancelled caller's may be gone by the time
   * the thread reads them. node is also gethostbyname_r's name. */
  char *node, *service;
  struct addrinfo hints;
  bool has_hints;
  struct sockaddr_storage sa;
  socklen_t salen;
  int flags;
  /* The answers, in the job's own memory. */
  struct addrinfo *res;
  char *host, *serv;
  socklen_t hostlen, servlen;
  struct hostent he;
  struct hostent *he_result;
  char *buf;
  size_t buflen;
  int h_err;
  int rc;  /* what the call returned */
  int err; /* errno after it */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t more = PTHREAD_COND_INITIALIZER;
static struct job *head, *tail;
static int threads, idle;

static void job_free(struct job *j) {
  if (j->res)
    freeaddrinfo(j->res);
  free(j->node);
  free(j->service);
  free(j->host);
  free(j->serv);
  free(j->buf);
  free(j);
}

static void let_go(struct job *j) {
  pthread_mutex_lock(&mu);
  bool last = --j->refs == 0;
  pthread_mutex_unlock(&mu);
  if (last)
    job_free(j);
}

static void run(struct job *j) {
  switch (j->kind) {
  case ADDRINFO:
    j->rc = getaddrinfo(j->node, j->service, j->has_hints ? &j->hints : NULL,
                        &j->res);
    break;
  case NAMEINFO:
    j->rc = getnameinfo((struct sockaddr *)&j->sa, j->salen, j->host,
                        j->hostlen, j->serv, j->servlen, j->flags);
    break;
  case HOSTBYNAME:
    j->rc = gethostbyname_r(j->node, &j->he, j->buf, j->buflen, &j->he_result,
                            &j->h_err);
    break;
  }
  j->err = errno;
}

static void *resolver(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  for (;;) {
    while (!head) {
      idle++;
      pthread_cond_wait(&more, &mu);
      idle--;
    }
    struct job *j = head;
    head = j->next;
    if (!head)
      tail = NULL;
    pthread_mutex_unlock(&mu);
    run(j);
    weft_event_set(&j->done);
    let_go(j);
    pthread_mutex_lock(&mu);
  }
  return NULL;
}

/* Queues j, starting a thread when none is free. Returns 0, or a positive
 * errno when no thread runs and none could be started. */
static int submit(struct job *j) {
  pthread_mutex_lock(&mu);
  if (idle == 0 && threads < RESOLVERS) {
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    /* Signals are for the program's own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = pthread_create(&t, &a, resolver, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&a);
    if (e == 0) {
      threads++;
    } else if (threads == 0) {
      pthread_mutex_unlock(&mu);
      return e;
    }
  }
  j->next = NULL;
  if (tail)
    tail->next = j;
  else
    head = j;
  tail = j;
  pthread_cond_signal(&more);
  pthread_mutex_unlock(&mu);
  return 0;
}

/* Runs j on the pool while the task waits. Returns 0 with j answered (the
 * caller lets go of it), or a positive errno (ECANCELED; ETIMEDOUT for
 * weft's deadline; why the pool could not take it), j then being the
 * pool's. */
static int on_pool(struct job *j) {
  weft_event_init(&j->done);
  j->refs = 2; /* before the pool sees j */
  int e = submit(j);
  if (e) {
    job_free(j);
    return e;
  }
  int rc = weft_event_wait(&j->done, WEFT_FOREVER);
  if (rc < 0) {
    let_go(j);
    return -rc;
  }
  return 0;
}

/* After fork the child has none of the parent's resolver threads. */
static void child_after_fork(void) {
  pthread_mutex_init(&mu, NULL);
  pthread_cond_init(&more, NULL);
  head = tail = NULL; /* the parent's jobs: its tasks' business */
  threads = idle = 0;
}

__attribute__((constructor)) static void watch_forks(void) {
  pthread_atfork(NULL, NULL, child_after_fork);
}

static char *dup_or_null(const char *s, bool *failed) {
  if (!s)
    return NULL;
  char *d = strdup(s);
  if (!d)
    *failed = true;
  return d;
}

WEFT__HOOK_API int getaddrinfo(const char *node, const char *service,
                               const struct addrinfo *hints,
                               struct addrinfo **res) {
  if (!weft__hook_here() || !res)
    return REAL(getaddrinfo)(node, service, hints, res);
  struct job *j = calloc(1, sizeof *j);
  if (!j)
    return EAI_MEMORY;
  bool failed = false;
  j->kind = ADDRINFO;
  j->node = dup_or_null(node, &failed);
  j->service = dup_or_null(service, &failed);
  if (hints) {
    /* Only the four fields callers may set; the rest must be zero. */
    j->hints = (struct addrinfo){.ai_flags = hints->ai_flags,
                                 .ai_family = hints->ai_family,
                                 .ai_socktype = hints->ai_socktype,
                                 .ai_protocol = hints->ai_protocol};
    j->has_hints = true;
  }
  if (failed) {
    job_free(j);
    return EAI_MEMORY;
  }
  int e = on_pool(j);
  if (e)
    return weft__hook_fail(e), EAI_SYSTEM;
  int rc = j->rc, err = j->err;
  *res = j->res;
  j->res = NULL;
  let_go(j);
  errno = err;
  return rc;
}

WEFT__HOOK_API int getnameinfo(const struct sockaddr *sa, socklen_t salen,
                               char *host, socklen_t hostlen, char *serv,
                               socklen_t servlen, int flags) {
  if (!weft__hook_here() || !sa || salen > sizeof(struct sockaddr_storage))
    return REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen, flags);
  struct job *j = calloc(1, sizeof *j);
  if (!j)
    return EAI_MEMORY;
  j->kind = NAMEINFO;
  memcpy(&j->sa, sa, salen);
  j->salen = salen;
  j->flags = flags;
  if (host && hostlen) {
    j->hostlen = hostlen;
    j->host = malloc(hostlen);
  }
  if (serv && servlen) {
    j->servlen = servlen;
    j->serv = malloc(servlen);
  }
  if ((j->hostlen && !j->host) || (j->servlen && !j->serv)) {
    job_free(j);
    return EAI_MEMORY;
  }
  int e = on_pool(j);
  if (e)
    return weft__hook_fail(e), EAI_SYSTEM;
  int rc = j->rc, err = j->err;
  if (rc == 0) {
    if (j->host)
      memcpy(host, j->host, hostlen);
    if (j->serv)
      memcpy(serv, j->serv, servlen);
  }
  let_go(j);
  errno = err;
  return rc;
}

/* A pointer into the job's buffer, moved to the same place in the
 * caller's. */
static void *moved(const struct job *j, char *to, const void *p) {
  if (!p)
    return NULL;
  return to + ((const char *)p - j->buf);
}

/* Copies the job's hostent into the caller's, its storage into buf. */
static void hostent_to_caller(const struct job *j, struct hostent *ret,
                              char *buf) {
  memcpy(buf, j->buf, j->buflen);
  ret->h_name = moved(j, buf, j->he.h_name);
  ret->h_addrtype = j->he.h_addrtype;
  ret->h_length = j->he.h_length;
  ret->h_aliases = moved(j, buf, j->he.h_aliases);
  for (char **a = ret->h_aliases; a && *a; a++)
    *a = moved(j, buf, *a);
  ret->h_addr_list = moved(j, buf, j->he.h_addr_list);
  for (char **a = ret->h_addr_list; a && *a; a++)
    *a = moved(j, buf, *a);
}

WEFT__HOOK_API int gethostbyname_r(const char *name, struct hostent *ret,
                                   char *buf, size_t buflen,
                                   struct hostent **result, int *h_errnop) {
  if (!weft__hook_here() || !name || !ret || !buf || !result || !h_errnop)
    return REAL(gethostbyname_r)(name, ret, buf, buflen, result, h_errnop);
  struct job *j = calloc(1, sizeof *j);
  if (!j)
    return ENOMEM;
  bool failed = false;
  j->kind = HOSTBYNAME;
  j->node = dup_or_null(name, &failed);
  j->buflen = buflen;
  j->buf = malloc(buflen ? buflen : 1);
  if (failed || !j->buf) {
    job_free(j);
    return ENOMEM;
  }
  int e = on_pool(j);
  if (e) {
    *result = NULL;
    *h_errnop = NETDB_INTERNAL;
    errno = e;
    return e;
  }
  int rc = j->rc, err = j->err;
  *h_errnop = j->h_err;
  *result = NULL;
  if (rc == 0 && j->he_result) {
    hostent_to_caller(j, ret, buf);
    *result = ret;
  }
  let_go(j);
  errno = err;
  return rc;
}
