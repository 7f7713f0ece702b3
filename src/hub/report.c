/*
 * Where reports go. See report.h and weft/hub.h.
 *
 * The destination is three words under one mutex; a report copies them
 * under it and delivers after, so that the program's function runs with no
 * lock of weft's held (it may call weft, even change the destination).
 */
#define _GNU_SOURCE
#include "report.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <weft/hub.h>

#include "../core/coro.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int report_fd = STDERR_FILENO;
static weft_report_fn report_fn;
static void *report_arg;

int weft_hub_report_to(int fd) {
  if (fd < 0)
    return -EBADF;
  pthread_mutex_lock(&mu);
  report_fd = fd;
  report_fn = NULL;
  report_arg = NULL;
  pthread_mutex_unlock(&mu);
  return 0;
}

int weft_hub_on_report(weft_report_fn fn, void *arg) {
  if (!fn)
    return -EINVAL;
  pthread_mutex_lock(&mu);
  report_fn = fn;
  report_arg = arg;
  pthread_mutex_unlock(&mu);
  return 0;
}

void weft__report(const char *text, size_t n) {
  pthread_mutex_lock(&mu);
  int fd = report_fd;
  weft_report_fn fn = report_fn;
  void *arg = report_arg;
  pthread_mutex_unlock(&mu);
  if (fn) {
    fn(text, arg);
    return;
  }
  weft__write_all(fd, text, n); /* never a SIGPIPE: overflow.c */
}

void weft__report_add(struct weft__report_text *t, const char *line) {
  size_t n = strlen(line);
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 1024;
    while (cap < t->len + n + 1)
      cap *= 2;
    char *s = realloc(t->s, cap);
    if (!s)
      return;
    t->s = s;
    t->cap = cap;
  }
  memcpy(t->s + t->len, line, n + 1);
  t->len += n;
}

void weft__report_send(struct weft__report_text *t) {
  if (t->len)
    weft__report(t->s, t->len);
  free(t->s);
  *t = (struct weft__report_text){0};
}
