/*
 * Accepting from one listening socket in several hubs (the cluster's
 * shared-socket mode): each connection wakes one hub, not all of them, and
 * the connections spread over the hubs that wait.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <weft.h>

#include "../src/hub/poller.h"
#include "harness.h"

enum { HUBS = 2, CONNS = 40 };

static int listen_fd;
static atomic_int accepted_total;

struct acceptor {
  int accepted;
  long wakeups; /* voluntary context switches of its thread */
};

/* The thread's voluntary context switches: each time it slept and was woken
 * counts one. */
static long voluntary_switches(void) {
  FILE *f = fopen("/proc/thread-self/status", "r");
  CHECK(f != NULL);
  char line[256];
  long n = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
      break;
  fclose(f);
  return n;
}

static void *accept_loop(void *arg) {
  struct acceptor *a = arg;
  long before = voluntary_switches();
  while (atomic_load(&accepted_total) < CONNS) {
    int fd = weft_io_accept(listen_fd, NULL, NULL, WEFT_MS(50));
    if (fd == -ETIMEDOUT)
      continue;
    CHECK(fd >= 0);
    a->accepted++;
    atomic_fetch_add(&accepted_total, 1);
    close(fd);
  }
  a->wakeups = voluntary_switches() - before;
  return NULL;
}

static void *hub_thread(void *arg) {
  CHECK_EQ(weft_run(accept_loop, arg, NULL), 0);
  return NULL;
}

TEST(a_shared_socket_wakes_one_hub_per_connection_and_alternates) {
  if (strcmp(weft__poller_backend(), "epoll") != 0)
    harness_skip("the poll backend wakes every hub (no EPOLLEXCLUSIVE)");
  listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(listen_fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  CHECK_EQ(bind(listen_fd, (struct sockaddr *)&sa, len), 0);
  CHECK_EQ(listen(listen_fd, 64), 0);
  CHECK_EQ(getsockname(listen_fd, (struct sockaddr *)&sa, &len), 0);
  struct acceptor a[HUBS] = {0};
  pthread_t t[HUBS];
  for (int i = 0; i < HUBS; i++)
    CHECK_EQ(pthread_create(&t[i], NULL, hub_thread, &a[i]), 0);
  usleep(100 * 1000); /* both hubs wait in their accept */
  for (int i = 0; i < CONNS; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(c >= 0);
    CHECK_EQ(connect(c, (struct sockaddr *)&sa, len), 0);
    while (atomic_load(&accepted_total) <= i)
      usleep(1000);
    close(c);
    usleep(2000); /* the acceptor waits again */
  }
  for (int i = 0; i < HUBS; i++)
    CHECK_EQ(pthread_join(t[i], NULL), 0);
  close(listen_fd);
  printf("  accepted %d and %d, woken %ld and %ld times\n", a[0].accepted,
         a[1].accepted, a[0].wakeups, a[1].wakeups);
  CHECK_EQ(a[0].accepted + a[1].accepted, CONNS);
  /* Balance: the hub that accepted waits behind the other. */
  CHECK(a[0].accepted >= CONNS / 4);
  CHECK(a[1].accepted >= CONNS / 4);
  /* No herd: a wake per connection (plus the 50 ms timeouts of the
   * acceptors' loops, a few per second), where a herd would wake both.
   * Under qemu-user the threads also sleep for the emulator's own locks,
   * which the count cannot tell apart. */
  if (!harness_emulated())
    CHECK(a[0].wakeups + a[1].wakeups < CONNS * 3 / 2 + 20);
}
