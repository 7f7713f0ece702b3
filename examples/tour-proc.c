/*
 * The tour, processes: a zombie made and reaped the careless way beside
 * weft's way, an orphan prevented, and two processes talking through a
 * message pipe.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "tour.h"

static void nap_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

/* The state /proc gives pid: 'Z' for a zombie, '-' when it is gone. */
static char state_of(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return '-';
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *paren = strrchr(buf, ')');
  return paren && paren[1] == ' ' ? paren[2] : '?';
}

static int quick(void *arg) {
  (void)arg;
  return 0;
}

static int report_then_sleep(void *arg) {
  int fd = *(int *)arg;
  pid_t me = getpid();
  if (write(fd, &me, sizeof me) != sizeof me)
    return 1;
  pause();
  return 0;
}

/* The two ends of a message pipe; the child keeps ends[1]. */
static weft_msgpipe *ends[2];

static int shout_back(void *arg) {
  (void)arg;
  weft_msgpipe_free(ends[0]); /* the parent's end: not ours to keep */
  void *msg;
  size_t len;
  while (weft_msgpipe_recv(ends[1], &msg, &len, WEFT_FOREVER) == 0) {
    char *s = msg;
    for (size_t i = 0; i < len; i++)
      if (s[i] >= 'a' && s[i] <= 'z')
        s[i] = (char)(s[i] - 'a' + 'A');
    weft_msgpipe_send(ends[1], s, len, WEFT_FOREVER);
    free(msg);
  }
  return 0; /* -EPIPE: the parent closed its end */
}

static void talk(void) {
  tour_section("processes: two talking through a message pipe");
  weft_msgpipe_pair(&ends[0], &ends[1]);
  weft_proc *p;
  weft_proc_start(&p, shout_back, NULL, NULL);
  weft_msgpipe_free(ends[1]);
  const char *words[] = {"hello", "from the parent", "goodbye"};
  for (int i = 0; i < 3; i++) {
    void *back;
    size_t len;
    weft_msgpipe_send(ends[0], words[i], strlen(words[i]), WEFT_SEC(5));
    if (weft_msgpipe_recv(ends[0], &back, &len, WEFT_SEC(5)) == 0) {
      printf("  sent '%s', the child sent back '%.*s'\n", words[i], (int)len,
             (char *)back);
      free(back);
    }
  }
  weft_msgpipe_free(ends[0]);
  int code = -1;
  weft_proc_join(p, WEFT_SEC(5), &code);
  weft_proc_free(p);
  printf("  the parent closed its end; the child saw the end and exited %d\n",
         code);
}

/* A supervisor cancelled at shutdown still gives its child time to exit:
 * the join in its shield waits, where an unshielded one would fail at
 * once. */
static int exit_after_200ms(void *arg) {
  (void)arg;
  nap_ms(200);
  return 3;
}

static void *supervisor(void *arg) {
  weft_proc *child = arg;
  weft_sleep(INT64_MAX); /* until the shutdown cancels it */
  int code = 0;
  int rc = weft_proc_join(child, WEFT_SEC(5), &code);
  printf("    cancelled; a plain join(5 s) returns at once: %s\n",
         weft_strerror(rc));
  weft_task_shield();
  rc = weft_proc_join(child, WEFT_SEC(5), &code);
  printf("    inside weft_task_shield, join(5 s) waits: %s, exit code %d\n",
         weft_strerror(rc), code);
  rc = weft_task_unshield();
  printf("    weft_task_unshield: %s (the cancellation goes on)\n",
         weft_strerror(rc));
  return NULL;
}

static void *shut_down(void *arg) {
  weft_task *t;
  weft_task_spawn(&t, supervisor, arg, &(weft_task_opts){.name = "sup"});
  weft_sleep(WEFT_MS(20));
  printf("  shutdown: cancel the supervisor task\n");
  weft_task_cancel(t);
  weft_task_join(t, WEFT_FOREVER, NULL);
  weft_task_detach(t);
  return NULL;
}

static void cleanup_after_cancel(void) {
  tour_section("processes: a cancelled supervisor gives its child 5 s");
  weft_proc *child;
  if (weft_proc_start(&child, exit_after_200ms, NULL, NULL) != 0)
    return;
  weft_run(shut_down, child, NULL);
  weft_proc_free(child);
}

void tour_processes(void) {
  tour_section("processes: a zombie, the careless way and weft's");
  fflush(stdout);
  pid_t careless = fork();
  if (careless == 0)
    _exit(0);
  nap_ms(50);
  printf("  fork() a child that exits at once, and never wait(): /proc says "
         "'%c' (a zombie)\n",
         state_of(careless));
  waitpid(careless, NULL, 0);
  weft_proc *p;
  weft_proc_start(&p, quick, NULL, NULL);
  pid_t pid = weft_proc_pid(p);
  weft_proc_free(p); /* dropped without a join */
  nap_ms(50);
  printf("  weft_proc_start the same child and drop it unjoined: /proc says "
         "'%c' (reaped)\n",
         state_of(pid));

  tour_section("processes: an orphan prevented");
  int fds[2];
  if (pipe(fds) != 0)
    return;
  fflush(stdout);
  pid_t parent = fork();
  if (parent == 0) { /* a parent with a daemon child, killed outright */
    close(fds[0]);
    weft_proc *d;
    weft_proc_start(&d, report_then_sleep, &fds[1],
                    &(weft_proc_opts){.daemon = true});
    pause();
    _exit(0);
  }
  close(fds[1]);
  pid_t daemon_child = 0;
  if (read(fds[0], &daemon_child, sizeof daemon_child) != sizeof daemon_child)
    return;
  close(fds[0]);
  kill(parent, SIGKILL);
  waitpid(parent, NULL, 0);
  /* Dead is gone, or a zombie left to init (which in a container may
   * never reap it). */
  char state = state_of(daemon_child);
  for (int i = 0; i < 100 && state != '-' && state != 'Z'; i++) {
    nap_ms(10);
    state = state_of(daemon_child);
  }
  printf("  a parent killed by SIGKILL: its daemon child is %s\n",
         state == '-' || state == 'Z' ? "dead too (PR_SET_PDEATHSIG)"
                                      : "still running");
  talk();
  cleanup_after_cancel();
}
