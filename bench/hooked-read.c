/*
 * BenchmarkHookedRead/<impl>: what the hooks add to a read that need not
 * wait. Each operation writes 1 byte into a pipe and reads it back:
 *
 *   hooked        read(2) in a task of a program linked with libweft-hook:
 *                 the hook's try, preadv2 with RWF_NOWAIT on the pipe as
 *                 pipe(2) made it (blocking), which finds the byte there
 *   weft_io_read  weft_io_read in a task, in a program without the hooks
 *                 (weft makes the pipe non-blocking on its first call)
 *   read          read(2) on a plain thread, in a program without the hooks
 *
 * The write is the same raw system call in every row (syscall(2), which no
 * hook reaches), so that the rows differ in the read alone; ns/op is the
 * write and the read together. This file is built twice: with
 * WEFT_BENCH_HOOKED as bench-hooked-read, linked with the hooks (the hooked
 * row), and without as bench-read (the others): a program linked with the
 * hooks sends libweft's own read through them too, so weft_io_read and the
 * plain read are measured where there are none.
 */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <unistd.h>
#include <weft.h>

#include "bench.h"

#ifdef WEFT_BENCH_HOOKED
#include <weft/hook.h>
#endif

/* The pipe of each row, made by main; a row's pipe is used by it alone. */
static int pipes[3][2];
enum { ROW_HOOKED, ROW_WEFT_IO_READ, ROW_READ };

/* Puts 1 byte into the pipe without any hook. */
static bool put(int fd) {
  char b = 'x';
  return syscall(SYS_write, fd, &b, 1) == 1;
}

/* The loops, each returning false on a failed call. */
#ifdef WEFT_BENCH_HOOKED
static void *hooked_loop(void *arg) {
  uint64_t n = *(uint64_t *)arg;
  char b;
  for (uint64_t i = 0; i < n; i++)
    if (!put(pipes[ROW_HOOKED][1]) || read(pipes[ROW_HOOKED][0], &b, 1) != 1)
      return (void *)0;
  return (void *)1;
}
#else
static void *weft_io_read_loop(void *arg) {
  uint64_t n = *(uint64_t *)arg;
  char b;
  for (uint64_t i = 0; i < n; i++)
    if (!put(pipes[ROW_WEFT_IO_READ][1]) ||
        weft_io_read(pipes[ROW_WEFT_IO_READ][0], &b, 1, WEFT_FOREVER) != 1)
      return (void *)0;
  return (void *)1;
}
#endif

/* A row that runs in a task: a hub of its own for each round (its start
 * and end are a few microseconds of a 0.2 s round). */
static bool in_task(void *(*loop)(void *), uint64_t n) {
  void *ok = NULL;
  return weft_run(loop, &n, &ok) == 0 && ok;
}

#ifdef WEFT_BENCH_HOOKED
static bool bench_hooked(uint64_t n) { return in_task(hooked_loop, n); }
#else
static bool bench_weft_io_read(uint64_t n) {
  return in_task(weft_io_read_loop, n);
}

static bool bench_read(uint64_t n) {
  char b;
  for (uint64_t i = 0; i < n; i++)
    if (!put(pipes[ROW_READ][1]) || read(pipes[ROW_READ][0], &b, 1) != 1)
      return false;
  return true;
}
#endif

int main(void) {
  for (int i = 0; i < 3; i++)
    if (pipe(pipes[i]) != 0) {
      printf("# skip BenchmarkHookedRead: pipe failed\n");
      return 0;
    }
#ifdef WEFT_BENCH_HOOKED
  struct bench_impl impls[] = {
      {"BenchmarkHookedRead/hooked", bench_hooked,
       weft_hook_installed() ? NULL
                             : "the hooks are not in front of libc's read"},
  };
#else
  struct bench_impl impls[] = {
      {"BenchmarkHookedRead/weft_io_read", bench_weft_io_read, NULL},
      {"BenchmarkHookedRead/read", bench_read, NULL},
  };
#endif
  bench_group(impls, (int)(sizeof impls / sizeof impls[0]));
  return 0;
}
