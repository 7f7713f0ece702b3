/*
 * httpd — an HTTP/1.1 server on weft's cluster: a supervisor and N worker
 * processes, each a hub running one task per connection (http.h says what
 * a connection does).
 *
 *   httpd [--listen ADDR]... [--root DIR] [--workers N] [--reuseport]
 *         [--drain-timeout S] [--header-timeout S] [--idle-timeout S]
 *
 *   --listen ADDR        where to listen, as weft_io_listen reads it
 *                        ("127.0.0.1:8080", "[::1]:8080", ":8080",
 *                        "unix:/path"); repeatable; default 127.0.0.1:8080.
 *                        Port 0 lets the kernel choose: the port is printed.
 *   --root DIR           serve the files under DIR (without it: /hello only)
 *   --workers N          worker processes (default: the CPUs this process
 *                        may use, weft_cpu_count)
 *   --reuseport          one SO_REUSEPORT socket per worker instead of one
 *                        shared socket
 *   --drain-timeout S    how long a stop or reload lets connections finish
 *                        (default 10)
 *   --header-timeout S   a request's head, and then its body, must arrive
 *                        within S seconds (default 10): 408 otherwise
 *   --idle-timeout S     a keep-alive connection may wait S seconds for its
 *                        next request (default 60)
 *
 * Signals to the supervisor: SIGTERM or SIGINT stop gracefully (every
 * connection finishes its response, within the drain timeout), SIGQUIT
 * stops now, SIGHUP starts new workers and drains the old ones.
 *
 * Each connection's task has a 16 KiB stack (HTTPD_STACK_BYTES); one
 * that waits for its next request for longer than a second is hibernated
 * (weft_cluster_opts.conn_hibernate): its frames are copied out and its
 * stack given back until the request comes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <weft.h>

#include "http.h"

static struct httpd_config config;

static int worker_idle(void *w, int fd, int64_t timeout) {
  return weft_worker_idle(w, fd, timeout);
}

static bool worker_draining(void *w) { return weft_worker_draining(w); }

static void handle(weft_worker *w, int fd, void *arg) {
  (void)arg;
  const struct httpd_hooks hooks = {worker_idle, worker_draining, w};
  httpd_serve(fd, &config, &hooks);
}

static void worker_main(weft_worker *w, void *arg) {
  (void)arg;
  httpd_thread_init();
  fprintf(stderr, "httpd: worker %d (pid %d, generation %u) serving\n",
          weft_worker_index(w), (int)getpid(), weft_worker_generation(w));
}

static void usage(FILE *f) {
  fputs("usage: httpd [--listen ADDR]... [--root DIR] [--workers N] "
        "[--reuseport]\n"
        "             [--drain-timeout S] [--header-timeout S] "
        "[--idle-timeout S]\n",
        f);
}

/* Seconds (a decimal: "0.5") as ns; -1 when s is not a number >= 0. */
static int64_t seconds(const char *s) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= 0) || v > 1e6)
    return -1;
  return (int64_t)llround(v * 1e9);
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"listen", required_argument, NULL, 'l'},
      {"root", required_argument, NULL, 'r'},
      {"workers", required_argument, NULL, 'w'},
      {"reuseport", no_argument, NULL, 'p'},
      {"drain-timeout", required_argument, NULL, 'd'},
      {"header-timeout", required_argument, NULL, 'H'},
      {"idle-timeout", required_argument, NULL, 'i'},
      {"help", no_argument, NULL, 'h'},
      {0, 0, 0, 0},
  };
  const char *addrs[WEFT_CLUSTER_MAX_LISTENERS];
  int nlisten = 0;
  const char *root = NULL;
  weft_cluster_opts opts;
  weft_cluster_opts_init(&opts);
  httpd_config_init(&config);
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    int64_t t = 0;
    if (c == 'd' || c == 'H' || c == 'i') {
      t = seconds(optarg);
      if (t < 0) {
        fprintf(stderr, "httpd: not a number of seconds: %s\n", optarg);
        return 2;
      }
    }
    switch (c) {
    case 'l':
      if (nlisten == WEFT_CLUSTER_MAX_LISTENERS) {
        fprintf(stderr, "httpd: at most %d --listen\n",
                WEFT_CLUSTER_MAX_LISTENERS);
        return 2;
      }
      addrs[nlisten++] = optarg;
      break;
    case 'r':
      root = optarg;
      break;
    case 'w':
      opts.workers = atoi(optarg);
      break;
    case 'p':
      opts.accept_mode = WEFT_ACCEPT_REUSEPORT;
      break;
    case 'd':
      opts.drain_timeout = t;
      break;
    case 'H':
      config.header_timeout = t;
      break;
    case 'i':
      config.idle_timeout = t;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc) {
    usage(stderr);
    return 2;
  }
  if (nlisten == 0)
    addrs[nlisten++] = "127.0.0.1:8080";
  if (root) {
    config.root_fd = httpd_root_open(root);
    if (config.root_fd < 0) {
      fprintf(stderr, "httpd: --root %s: %s\n", root,
              weft_strerror(config.root_fd));
      return 1;
    }
  }
  /* sendfile(2) raises SIGPIPE at a peer that has gone; the workers
   * inherit this. */
  signal(SIGPIPE, SIG_IGN);

  opts.main = worker_main;
  opts.handler = handle;
  opts.conn_stack_size = HTTPD_STACK_BYTES;
  /* A connection lends nothing in its frames to other tasks: it may be
   * hibernated while it waits for its next request. */
  opts.conn_hibernate = true;
  weft_cluster *cl;
  int rc = weft_cluster_create(&cl, &opts);
  if (rc < 0) {
    fprintf(stderr, "httpd: %s\n", weft_strerror(rc));
    return 1;
  }
  for (int i = 0; i < nlisten; i++) {
    rc = weft_cluster_listen(cl, addrs[i]);
    if (rc < 0) {
      fprintf(stderr, "httpd: --listen %s: %s\n", addrs[i], weft_strerror(rc));
      weft_cluster_free(cl);
      return 1;
    }
    int port = weft_cluster_listener_port(cl, rc);
    if (port >= 0)
      fprintf(stderr, "httpd: listening on %s (port %d)\n", addrs[i], port);
    else
      fprintf(stderr, "httpd: listening on %s\n", addrs[i]);
  }
  rc = weft_cluster_run(cl);
  weft_cluster_free(cl);
  if (rc < 0) {
    fprintf(stderr, "httpd: %s\n", weft_strerror(rc));
    return 1;
  }
  return 0;
}
