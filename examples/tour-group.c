/*
 * The tour: task groups — a crawler that fetches a handful of local URLs
 * in a group. One URL is missing: its fetch fails, the group cancels the
 * others (still waiting for their slow answers), waits for them to clean
 * up, and reports the error. Python 3.11:
 *
 *     async with asyncio.TaskGroup() as tg:
 *         for url in urls: tg.create_task(fetch(url))
 *
 * Then the same crawl under a deadline the group carries, two of its
 * fetches on threads: asyncio.timeout(0.45) around the TaskGroup.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <weft.h>

#include "tour.h"

static struct sockaddr_in site;
static int64_t started;

/* The site: "/slow/<n>" answers 200 after n tenths of a second,
 * "/missing/<n>" 404 after as long. One task per connection. */
static void *page(void *arg) {
  int fd = (int)(intptr_t)arg;
  char req[256] = {0}, path[64] = {0};
  if (weft_io_recv(fd, req, sizeof req - 1, 0, WEFT_SEC(5)) > 0 &&
      sscanf(req, "GET %63s", path) == 1) {
    int tenths = 0;
    bool found = sscanf(path, "/slow/%d", &tenths) == 1;
    if (found || sscanf(path, "/missing/%d", &tenths) == 1) {
      const char *reply =
          found ? "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                : "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
      if (weft_sleep(WEFT_MS(100 * tenths)) == 0)
        weft_io_send(fd, reply, strlen(reply), 0, WEFT_SEC(5));
    }
  }
  weft_io_close(fd);
  return NULL;
}

static void *site_server(void *arg) {
  int lfd = (int)(intptr_t)arg, fd;
  while ((fd = weft_io_accept(lfd, NULL, NULL, WEFT_FOREVER)) >= 0)
    if (weft_task_spawn(NULL, page, (void *)(intptr_t)fd, NULL) < 0)
      weft_io_close(fd);
  weft_io_close(lfd);
  return NULL;
}

/* A member of the group: GET path; 0 on a 200, -ENOENT on a 404. */
static int fetch(void *arg) {
  const char *path = arg;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  char req[128], answer[256] = {0};
  int n =
      snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: site\r\n\r\n", path);
  ssize_t got =
      weft_io_connect(fd, (struct sockaddr *)&site, sizeof site, WEFT_SEC(5));
  if (got == 0)
    got = weft_io_send(fd, req, (size_t)n, 0, WEFT_SEC(5));
  if (got >= 0)
    got = weft_io_recv(fd, answer, sizeof answer - 1, 0, WEFT_SEC(5));
  weft_io_close(fd); /* cleanup, cancelled or not */
  double ms = (double)(weft_now() - started) / 1e6;
  if (got == -ECANCELED) {
    printf("  %-10s cancelled at %4.0f ms, cleaned up\n", path, ms);
    return -ECANCELED;
  }
  if (got < 0) {
    printf("  %-10s failed: %s\n", path, weft_strerror((int)got));
    return (int)got;
  }
  int status = 0;
  sscanf(answer, "HTTP/1.1 %d", &status);
  printf("  %-10s %d at %4.0f ms\n", path, status, ms);
  return status == 200 ? 0 : -ENOENT;
}

static void *crawl(void *arg) {
  (void)arg;
  int lfd = tour_listen_loopback(&site);
  if (lfd < 0)
    return NULL;
  weft_task *server;
  weft_task_spawn(&server, site_server, (void *)(intptr_t)lfd, NULL);

  static const char *urls[] = {"/slow/1", "/slow/2", "/missing/3", "/slow/6",
                               "/slow/8"};
  started = weft_now();
  weft_group *g;
  weft_group_new(&g);
  for (size_t i = 0; i < sizeof urls / sizeof *urls; i++)
    weft_group_spawn(g, fetch, (void *)urls[i]);
  int rc = weft_group_wait(g);
  int errs[4];
  size_t failed = weft_group_errors(g, errs, 4);
  printf("  the group's wait: \"%s\" after %.0f ms; %zu member failed on "
         "its own\n",
         weft_strerror(rc), (double)(weft_now() - started) / 1e6, failed);
  weft_group_free(g);

  /* Again, every page there, but the group carries a deadline (Go's
   * context.WithTimeout, trio's move_on_after around a nursery), and two
   * fetches run on threads of their own: the deadline ends the slow
   * reads wherever they wait. */
  static const char *slow[] = {"/slow/1", "/slow/2", "/slow/6", "/slow/8"};
  printf("  again, every page there, in 450 ms at most; the last two fetched "
         "by threads:\n");
  started = weft_now();
  weft_group_new(&g);
  weft_group_deadline(g, started + WEFT_MS(450), WEFT_SCOPE_TIMEOUT);
  for (size_t i = 0; i < 4; i++)
    if (i < 2)
      weft_group_spawn(g, fetch, (void *)slow[i]);
    else
      weft_group_spawn_thread(g, fetch, (void *)slow[i]);
  rc = weft_group_wait(g);
  printf("  the group's wait: \"%s\" after %.0f ms\n", weft_strerror(rc),
         (double)(weft_now() - started) / 1e6);
  weft_group_free(g);
  weft_task_cancel(server);
  weft_task_join(server, WEFT_FOREVER, NULL);
  return NULL;
}

void tour_group(void) {
  tour_section("task groups: a crawler, one missing page, the rest cancelled; "
               "then a deadline the group carries");
  weft_run(crawl, NULL, NULL);
}
