/*
 * libFuzzer on httpd's request handling: each input is what a client sends
 * on one connection. A writer task sends it, in pieces whose size the
 * input's first byte picks, over a socketpair to httpd_serve (the real
 * code, in a task of its own with a connection's stack), then shuts its
 * side; a reader task takes every byte the server answers and checks that
 * the answer starts as a response does. The root holds files, a directory
 * with an index, a file larger than a socket's buffer, and links that lead
 * out and stay in. Limits are small so that inputs reach them. One input
 * in eight keeps its side open after its bytes, with timeouts of 2 ms, so
 * that the header timeout (408), the idle timeout and the lingering close
 * run too.
 *
 *     make fuzz                    300 s (FUZZ_SECONDS=n for more or less)
 *     build/fuzz/tests/fuzz/fuzz-http crash-<id>     replay one input
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <weft.h>

#include "http.h"

static char root[64];
static struct httpd_config config;
static bool draining;

static void put_file(const char *rel, size_t len) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    abort();
  static char chunk[4096];
  memset(chunk, 'z', sizeof chunk);
  for (size_t done = 0; done < len;) {
    size_t n = len - done < sizeof chunk ? len - done : sizeof chunk;
    if (write(fd, chunk, n) != (ssize_t)n)
      abort();
    done += n;
  }
  close(fd);
}

static int rm_one(const char *path, const struct stat *st, int type,
                  struct FTW *f) {
  (void)st, (void)type, (void)f;
  remove(path);
  return 0;
}

static void remove_root(void) { nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  signal(SIGPIPE, SIG_IGN);
  strcpy(root, "/tmp/httpd-fuzz-XXXXXX");
  if (!mkdtemp(root))
    abort();
  atexit(remove_root);
  char path[256];
  put_file("a.txt", 5);
  put_file("index.html", 20);
  put_file("big.bin", 300 << 10);
  put_file("empty.css", 0);
  snprintf(path, sizeof path, "%s/sub", root);
  mkdir(path, 0755);
  put_file("sub/index.html", 10);
  snprintf(path, sizeof path, "%s/etc", root);
  if (symlink("/etc", path) != 0)
    abort();
  snprintf(path, sizeof path, "%s/in", root);
  if (symlink("a.txt", path) != 0)
    abort();
  httpd_config_init(&config);
  config.root_fd = httpd_root_open(root);
  if (config.root_fd < 0)
    abort();
  config.send_timeout = WEFT_SEC(2);
  config.max_request_line = 512;
  config.max_header_bytes = 2048;
  config.max_headers = 24;
  config.max_body = 4096;
  httpd_thread_init();
  return 0;
}

static int idle(void *ctx, int fd, int64_t timeout) {
  (void)ctx;
  int rc = weft_io_wait(fd, WEFT_IO_READ, timeout);
  return rc > 0 ? 0 : rc;
}

static bool is_draining(void *ctx) {
  (void)ctx;
  return draining;
}

static const struct httpd_hooks hooks = {idle, is_draining, NULL};

struct run {
  const uint8_t *data;
  size_t size;
  int server, client;
  bool hold; /* keep the client's side open: the server's timeouts end it */
};

static void *writer(void *arg) {
  struct run *r = arg;
  size_t piece = r->size ? (size_t)4 << (r->data[0] & 7) : 1;
  for (size_t off = 0; off < r->size;) {
    size_t n = r->size - off < piece ? r->size - off : piece;
    ssize_t sent = weft_io_send(r->client, r->data + off, n, 0, WEFT_SEC(5));
    if (sent <= 0)
      break; /* the server closed: the rest is not read */
    off += (size_t)sent;
    weft_yield();
  }
  if (!r->hold)
    shutdown(r->client, SHUT_WR);
  return NULL;
}

static const int statuses[] = {100, 200, 400, 403, 404, 405,
                               408, 413, 414, 431, 500, 505};

/* What the server sent must start as a response does. */
static void check(const char *out, size_t len) {
  if (len == 0)
    return;
  if (len < 13 || memcmp(out, "HTTP/1.1 ", 9) != 0 || out[12] != ' ')
    abort();
  int status = atoi(out + 9);
  bool known = false;
  for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++)
    known = known || statuses[i] == status;
  if (!known || !memmem(out, len, "\r\n\r\n", 4))
    abort();
}

static void *reader(void *arg) {
  struct run *r = arg;
  static char out[64 << 10];
  size_t len = 0;
  for (;;) {
    char tmp[16 << 10];
    ssize_t n = weft_io_recv(r->client, tmp, sizeof tmp, 0, WEFT_SEC(5));
    if (n <= 0)
      break;
    size_t keep = (size_t)n < sizeof out - len ? (size_t)n : sizeof out - len;
    memcpy(out + len, tmp, keep);
    len += keep;
  }
  check(out, len);
  return NULL;
}

static void *serve(void *arg) {
  struct run *r = arg;
  httpd_serve(r->server, &config, &hooks);
  /* Closed, not shut down: a writer blocked on a full socket learns. */
  close(r->server);
  r->server = -1;
  return NULL;
}

static void *fuzz_main(void *arg) {
  weft_task *t[3];
  weft_task_opts conn = {.name = "conn", .stack_size = HTTPD_STACK_BYTES};
  if (weft_task_spawn(&t[0], serve, arg, &conn) != 0 ||
      weft_task_spawn(&t[1], writer, arg, NULL) != 0 ||
      weft_task_spawn(&t[2], reader, arg, NULL) != 0)
    abort();
  for (int i = 0; i < 3; i++) {
    weft_task_join(t[i], WEFT_FOREVER, NULL);
    weft_task_detach(t[i]);
  }
  return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    abort();
  /* A few inputs' worth of variety, fixed by the input itself. */
  uint8_t sum = 0;
  for (size_t i = 0; i < size; i++)
    sum = (uint8_t)(sum + data[i]);
  config.no_openat2 = sum & 1;
  draining = (sum & 6) == 6;
  bool hold = (sum & 0x38) == 0x38;
  int64_t timeout = hold ? WEFT_MS(2) : WEFT_SEC(2);
  config.header_timeout = config.idle_timeout = timeout;
  config.linger_timeout = timeout;
  struct run r = {data, size, sv[0], sv[1], hold};
  if (weft_run(fuzz_main, &r, NULL) != 0)
    abort();
  if (r.server >= 0)
    close(r.server);
  close(sv[1]);
  return 0;
}
