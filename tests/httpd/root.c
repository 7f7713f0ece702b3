#define _GNU_SOURCE
#include "root.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static char root[64];

void root_file(const char *rel, const void *data, size_t len) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CHECK(fd >= 0);
  CHECK_EQ(write(fd, data, len), (ssize_t)len);
  close(fd);
}

static void make_dir(const char *rel) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  CHECK_EQ(mkdir(path, 0755), 0);
}

static void make_link(const char *target, const char *rel) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  CHECK_EQ(symlink(target, path), 0);
}

static int rm_one(const char *path, const struct stat *st, int type,
                  struct FTW *f) {
  (void)st, (void)type, (void)f;
  remove(path);
  return 0;
}

static pid_t maker;

/* Only the process that made the root removes it (the servers it forks
 * exit too). */
static void remove_root(void) {
  if (getpid() == maker)
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *root_make(void) {
  if (root[0])
    return root;
  strcpy(root, "/tmp/httpd-test-XXXXXX");
  CHECK(mkdtemp(root) != NULL);
  maker = getpid();
  atexit(remove_root);
  root_file("hello.txt", "hello file\n", 11);
  root_file("page.html", "<p>page</p>\n", 12);
  make_dir("sub");
  root_file("sub/index.html", "<p>sub</p>\n", 11);
  make_dir("empty");
  make_link("/etc", "etc");
  make_link("/etc/passwd", "passwd");
  make_link("hello.txt", "inside");
  make_link("..", "sub/up");
  char path[256];
  snprintf(path, sizeof path, "%s/fifo", root);
  CHECK_EQ(mkfifo(path, 0644), 0);
  return root;
}
