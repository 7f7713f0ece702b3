/*
 * A program that knows nothing of the hooks: linked with weft only, run by
 * ctest with LD_PRELOAD=libweft-hook.so. A blocking read of a pipe in one
 * task must let another task run (the write that ends the read comes from
 * it). Without the hooks the read would block the thread for good, and the
 * alarm would end the run. Exits 0 when the hooks worked.
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <weft/hub.h>

static int p[2];

static void *writer(void *arg) {
  (void)arg;
  usleep(10000);
  return (void *)(long)write(p[1], "x", 1);
}

static void *reader(void *arg) {
  (void)arg;
  weft_task *w;
  if (weft_task_spawn(&w, writer, NULL, NULL) != 0)
    return (void *)1;
  char c = 0;
  ssize_t n = read(p[0], &c, 1); /* parks, through the preloaded hook */
  weft_task_join(w, WEFT_FOREVER, NULL);
  weft_task_detach(w);
  return (void *)(long)(n == 1 && c == 'x' ? 0 : 1);
}

int main(void) {
  if (pipe(p) != 0)
    return 1;
  alarm(20); /* a read that blocked the thread would wait for ever */
  void *rc = (void *)1;
  if (weft_run(reader, NULL, &rc) != 0)
    return 1;
  puts(rc ? "hooks: the read blocked" : "hooks: the read parked its task");
  return rc ? 1 : 0;
}
