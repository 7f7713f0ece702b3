/* Built against an installed weft with the hooks, by pkg-config and by
 * find_package: a plain read(2) of a pipe in one task lets another task
 * run (it writes what ends the read). */
#include <stdio.h>
#include <unistd.h>
#include <weft.h>
#include <weft/hook.h>

static int p[2];

static void *writer(void *arg) {
  (void)arg;
  usleep(1000); /* parks too */
  return (void *)(long)write(p[1], "h", 1);
}

static void *reader(void *arg) {
  (void)arg;
  weft_task *w;
  if (weft_task_spawn(&w, writer, NULL, NULL) != 0)
    return (void *)1;
  char c = 0;
  ssize_t n = read(p[0], &c, 1);
  weft_task_join(w, WEFT_FOREVER, NULL);
  weft_task_detach(w);
  return (void *)(long)(n == 1 && c == 'h' ? 0 : 1);
}

int main(void) {
  void *rc = (void *)1;
  if (!weft_hook_installed() || pipe(p) != 0 ||
      weft_run(reader, NULL, &rc) != 0 || rc)
    return 1;
  printf("weft %s: the hooks parked a read\n", weft_version());
  return 0;
}
