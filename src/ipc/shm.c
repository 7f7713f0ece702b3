/*
 * weft_shm: regions of memory shared between processes. See
 * include/weft/shm.h.
 *
 * A region is a memfd whose size is sealed (it can neither shrink nor
 * grow), mapped MAP_SHARED whole. The seal is what makes a region safe to
 * take from another process: a file that could shrink would make a touch
 * of the mapping past its new end a SIGBUS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <weft/shm.h>

#include "shm-private.h"

enum { SHM_MAGIC = 0x6d687377 }; /* "wshm" */

#define SIZE_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

static bool valid(const weft_shm *s) { return s && s->magic == SHM_MAGIC; }

/* Maps fd's size bytes; the handle owns fd from then on. */
static int map(weft_shm **out, int fd, size_t size) {
  weft_shm *s = malloc(sizeof *s);
  if (!s)
    return -ENOMEM;
  void *addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) {
    int err = errno;
    free(s);
    return err == ENODEV || err == EACCES ? -EINVAL : -err;
  }
  *s = (weft_shm){.magic = SHM_MAGIC, .fd = fd, .addr = addr, .size = size};
  *out = s;
  return 0;
}

int weft_shm_create(weft_shm **out, size_t size, const char *name) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  if (!out || size == 0 || size > (size_t)PTRDIFF_MAX - page)
    return -EINVAL;
  size = (size + page - 1) / page * page;
  /* The name is only for /proc: cut it as weft's other names are (the
   * kernel would refuse one over 249 bytes). */
  char cut[WEFT_SHM_NAME_MAX + 1];
  snprintf(cut, sizeof cut, "%s", name ? name : "weft-shm");
  int fd = memfd_create(cut, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return -errno;
  int rc = 0;
  if (ftruncate(fd, (off_t)size) < 0 ||
      fcntl(fd, F_ADD_SEALS, SIZE_SEALS | F_SEAL_SEAL) < 0)
    rc = errno == EFBIG || errno == ENOSPC ? -ENOMEM : -errno;
  if (rc == 0)
    rc = map(out, fd, size);
  if (rc < 0)
    close(fd);
  return rc;
}

int weft_shm_open(weft_shm **out, int fd) {
  if (!out)
    return -EINVAL;
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0)
    return -EBADF;
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & SIZE_SEALS) != SIZE_SEALS || st.st_size <= 0)
    return -EINVAL;
  return map(out, fd, (size_t)st.st_size);
}

void *weft_shm_addr(const weft_shm *s) { return valid(s) ? s->addr : NULL; }

size_t weft_shm_size(const weft_shm *s) { return valid(s) ? s->size : 0; }

int weft_shm_fd(const weft_shm *s) { return valid(s) ? s->fd : -1; }

void weft_shm_free(weft_shm *s) {
  if (!valid(s))
    return;
  munmap(s->addr, s->size);
  close(s->fd);
  s->magic = 0;
  free(s);
}
