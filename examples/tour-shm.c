/*
 * The tour, shared memory: two worker processes take lines of text from a
 * process-safe queue and add up their words in a tally that a shared lock
 * guards; then a worker is killed by SIGKILL while it holds that lock, and
 * the next taker is told, and goes on.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <weft.h>

#include "tour.h"

/* What the processes share, in one region. */
struct tally {
  weft_shared_lock lock;
  weft_shared_event holding; /* the doomed worker holds the lock */
  long lines, words;
};

static weft_queue *jobs;
static struct tally *tally;

static long words_in(const char *s, size_t len) {
  long n = 0;
  for (size_t i = 0; i < len; i++)
    if (s[i] != ' ' && (i == 0 || s[i - 1] == ' '))
      n++;
  return n;
}

/* Takes lines until an empty one; counts their words into the tally. */
static int worker(void *arg) {
  (void)arg;
  char line[256];
  ssize_t len;
  while ((len = weft_queue_get(jobs, line, sizeof line, WEFT_SEC(10))) > 0) {
    long words = words_in(line, (size_t)len);
    weft_shared_lock_acquire(&tally->lock, WEFT_FOREVER);
    tally->lines++;
    tally->words += words;
    weft_shared_lock_release(&tally->lock);
  }
  return len == 0 ? 0 : 1;
}

/* Takes the lock, starts a change, and is killed before it ends it. */
static int doomed(void *arg) {
  (void)arg;
  weft_shared_lock_acquire(&tally->lock, WEFT_FOREVER);
  tally->words = -1; /* half-changed */
  weft_shared_event_set(&tally->holding);
  pause();
  return 0;
}

void tour_shared_memory(void) {
  tour_section("processes: talking through a queue and shared memory");
  static const char *const lines[] = {
      "processes share nothing unless they ask",
      "a queue carries whole messages between them",
      "a lock in shared memory guards what they share",
      "and a holder that dies does not wedge the others",
      "ten thousand tasks in each process use every core",
  };
  enum { LINES = sizeof lines / sizeof *lines, WORKERS = 2 };
  weft_shm *region;
  if (weft_shm_create(&region, sizeof *tally, "tour-tally") < 0 ||
      weft_queue_create(&jobs, NULL) < 0)
    return;
  tally = weft_shm_addr(region);
  weft_shared_lock_init(&tally->lock);
  weft_shared_event_init(&tally->holding);

  weft_proc *w[WORKERS];
  for (int i = 0; i < WORKERS; i++)
    weft_proc_start(&w[i], worker, NULL, NULL);
  for (int i = 0; i < LINES; i++)
    weft_queue_put(jobs, lines[i], strlen(lines[i]), WEFT_FOREVER);
  for (int i = 0; i < WORKERS; i++)
    weft_queue_put(jobs, "", 0, WEFT_FOREVER); /* stop */
  for (int i = 0; i < WORKERS; i++) {
    weft_proc_join(w[i], WEFT_SEC(10), NULL);
    weft_proc_free(w[i]);
  }
  printf("  %d worker processes took %ld lines from a weft_queue and counted "
         "%ld words\n  into a tally in shared memory, under a shared lock\n",
         WORKERS, tally->lines, tally->words);

  weft_proc *d;
  weft_proc_start(&d, doomed, NULL, NULL);
  weft_shared_event_wait(&tally->holding, WEFT_SEC(10));
  weft_proc_kill(d);
  weft_proc_join(d, WEFT_SEC(10), NULL);
  weft_proc_free(d);
  int rc = weft_shared_lock_acquire(&tally->lock, WEFT_SEC(10));
  printf("  a worker killed by SIGKILL while it held the lock: the next "
         "acquire says\n  \"%s\", finds words = %ld, puts it right, and the "
         "lock works on\n",
         weft_strerror(rc), tally->words);
  tally->words = 0;
  weft_shared_lock_release(&tally->lock);
  weft_queue_free(jobs);
  weft_shm_free(region);
}
