/*
 * weft_cpu_count: the CPUs of the affinity mask, fewer when a cgroup's CPU
 * quota allows fewer. See include/weft/cluster.h and cpus.h.
 *
 * Where the quota files are: /proc/self/cgroup names this process's cgroup
 * in each hierarchy ("0::/path" for cgroup v2; "N:cpu,cpuacct:/path" for
 * the v1 hierarchy of the cpu controller), as a path from the hierarchy's
 * root; /proc/self/mountinfo says where each hierarchy is mounted, and which
 * of its directories is at the mount point (its 4th field, "root": not "/"
 * in a container that sees only its own part of the tree). So the cgroup's
 * directory is the mount point + (the cgroup path minus the mount's root).
 *
 * A quota of an ancestor limits every cgroup below it, so the walk goes up
 * from the cgroup's directory to the mount point and keeps the smallest.
 * Both hierarchies are read: on a hybrid host the cpu controller is in v1
 * while a v2 tree is mounted too (with no cpu.max in it), and a controller
 * is in one hierarchy only, so the smaller of the two limits is the one.
 *
 * Nothing here fails: a file that is missing or not understood sets no
 * limit, and the count is then the affinity's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <weft/cluster.h>

#include "cpus.h"

/* Where one hierarchy holds this process's cgroup. */
struct hier {
  bool listed;         /* /proc/self/cgroup names the cgroup */
  bool mounted;        /* mountinfo gave the directory */
  char path[PATH_MAX]; /* the cgroup's path from the hierarchy's root */
  /* The cgroup's directory: root prefix + mount point + relative path.
   * The first base_len bytes are the prefix and the mount point, where
   * the walk up stops. */
  char dir[PATH_MAX];
  size_t base_len;
};

struct cgroups {
  struct hier v2, v1;
};

/* Reads the small file at path into buf as a string. Returns false when it
 * cannot be opened or read, or does not fit. */
static bool read_file(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  size_t len = 0;
  bool ok = true;
  for (;;) {
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      ok = false;
      break;
    }
    if (n == 0)
      break;
    len += (size_t)n;
    if (len == cap - 1) {
      ok = false; /* too long for what these files hold */
      break;
    }
  }
  close(fd);
  buf[len] = '\0';
  return ok;
}

/* A decimal integer at *s, optionally negative, which *s then passes.
 * false (and *s unmoved) if there is none or it overflows int64_t. */
static bool take_int(const char **s, int64_t *out) {
  const char *p = *s;
  bool neg = *p == '-';
  if (neg)
    p++;
  if (*p < '0' || *p > '9')
    return false;
  int64_t v = 0;
  for (; *p >= '0' && *p <= '9'; p++) {
    int d = *p - '0';
    if (v > (INT64_MAX - d) / 10)
      return false;
    v = v * 10 + d;
  }
  *out = neg ? -v : v;
  *s = p;
  return true;
}

/* Whether only a line's end (or nothing) is left at s. */
static bool at_end(const char *s) { return s[0] == '\0' || !strcmp(s, "\n"); }

/* quota / period rounded up, at most INT_MAX; both are positive. */
static int64_t cpus_of(int64_t quota, int64_t period) {
  int64_t n = quota / period + (quota % period != 0);
  return n > INT_MAX ? INT_MAX : n;
}

/* The CPU limit a directory's files set: > 0, or 0 for none. */
typedef int64_t (*limit_fn)(const char *dir);

/* cgroup v2: cpu.max is "max PERIOD" (no limit) or "QUOTA PERIOD". */
static int64_t limit_v2(const char *dir) {
  char path[PATH_MAX], buf[128];
  if (snprintf(path, sizeof path, "%s/cpu.max", dir) >= (int)sizeof path ||
      !read_file(path, buf, sizeof buf))
    return 0;
  const char *s = buf;
  int64_t quota, period;
  if (!take_int(&s, &quota) || quota <= 0 || *s++ != ' ' ||
      !take_int(&s, &period) || period <= 0 || !at_end(s))
    return 0; /* "max ...", or what is not understood */
  return cpus_of(quota, period);
}

/* One integer alone in a file. */
static bool read_int(const char *dir, const char *name, int64_t *out) {
  char path[PATH_MAX], buf[64];
  if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
      !read_file(path, buf, sizeof buf))
    return false;
  const char *s = buf;
  return take_int(&s, out) && at_end(s);
}

/* cgroup v1: cpu.cfs_quota_us (-1: no limit) over cpu.cfs_period_us. */
static int64_t limit_v1(const char *dir) {
  int64_t quota, period;
  if (!read_int(dir, "cpu.cfs_quota_us", &quota) || quota <= 0 ||
      !read_int(dir, "cpu.cfs_period_us", &period) || period <= 0)
    return 0;
  return cpus_of(quota, period);
}

/* The smallest limit of h's cgroup and its ancestors up to the mount
 * point, or 0 for none. Cuts h->dir as it goes up. */
static int64_t walk_up(struct hier *h, limit_fn limit) {
  if (!h->mounted)
    return 0;
  int64_t least = 0;
  for (;;) {
    int64_t n = limit(h->dir);
    if (n > 0 && (least == 0 || n < least))
      least = n;
    char *slash = strrchr(h->dir + h->base_len, '/');
    if (!slash)
      return least;
    *slash = '\0';
  }
}

/* Whether the comma-separated list has the item word, alone. */
static bool list_has(const char *list, size_t len, const char *word) {
  size_t wlen = strlen(word);
  const char *end = list + len;
  while (list < end) {
    const char *comma = memchr(list, ',', (size_t)(end - list));
    size_t n = comma ? (size_t)(comma - list) : (size_t)(end - list);
    if (n == wlen && !memcmp(list, word, n))
      return true;
    list += n + 1;
  }
  return false;
}

/* Whether a path has a ".." component: a cgroup outside what the mount
 * (or the cgroup namespace) shows, whose files cannot be reached. */
static bool climbs(const char *path) {
  for (const char *p = path; (p = strstr(p, "..")); p += 2)
    if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
      return true;
  return false;
}

static void set_path(struct hier *h, const char *path) {
  size_t n = strlen(path);
  if (n >= sizeof h->path || path[0] != '/' || climbs(path))
    return;
  memcpy(h->path, path, n + 1);
  h->listed = true;
}

/* root + rel, opened for reading, or NULL. */
static FILE *open_under(const char *root, const char *rel) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s%s", root, rel) >= (int)sizeof path)
    return NULL;
  return fopen(path, "re");
}

/* Takes this process's cgroup paths from root/proc/self/cgroup: lines
 * "ID:CONTROLLERS:PATH". */
static void read_cgroup(const char *root, struct cgroups *cg) {
  FILE *f = open_under(root, "/proc/self/cgroup");
  if (!f)
    return;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] == '\n')
      line[--len] = '\0';
    char *c1 = strchr(line, ':');
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2)
      continue;
    const char *ctl = c1 + 1;
    size_t ctl_len = (size_t)(c2 - ctl);
    if (c1 - line == 1 && line[0] == '0' && ctl_len == 0) {
      if (!cg->v2.listed)
        set_path(&cg->v2, c2 + 1);
    } else if (list_has(ctl, ctl_len, "cpu") && !cg->v1.listed) {
      set_path(&cg->v1, c2 + 1);
    }
  }
  free(line);
  fclose(f);
}

/* Undoes mountinfo's octal escapes (a space is "\040") in place. */
static void unescape(char *s) {
  char *out = s;
  for (; *s; s++) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
        s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
      *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 3;
    } else {
      *out++ = *s;
    }
  }
  *out = '\0';
}

/* Sets h's directory from a mount of its hierarchy whose root is mroot,
 * at mpoint, if the cgroup is within what the mount shows. */
static void place(const char *root, struct hier *h, const char *mroot,
                  const char *mpoint) {
  if (!h->listed || h->mounted)
    return;
  const char *rel; /* the cgroup's path below the mount's root */
  size_t rlen = strlen(mroot);
  if (!strcmp(mroot, "/"))
    rel = h->path;
  else if (!strncmp(h->path, mroot, rlen) &&
           (h->path[rlen] == '\0' || h->path[rlen] == '/'))
    rel = h->path + rlen;
  else
    return; /* a mount of another part of the tree */
  /* No trailing slash on the base, so that the walk up ends on it. */
  size_t plen = strlen(mpoint);
  while (plen > 0 && mpoint[plen - 1] == '/')
    plen--;
  size_t rel_len = strlen(rel);
  while (rel_len > 0 && rel[rel_len - 1] == '/')
    rel_len--;
  int n = snprintf(h->dir, sizeof h->dir, "%s%.*s%.*s", root, (int)plen, mpoint,
                   (int)rel_len, rel);
  if (n < 0 || n >= (int)sizeof h->dir)
    return;
  h->base_len = strlen(root) + plen;
  h->mounted = true;
}

/* Finds the hierarchies' mounts in root/proc/self/mountinfo: lines "ID
 * PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE
 * SUPEROPTIONS". */
static void read_mountinfo(const char *root, struct cgroups *cg) {
  FILE *f = open_under(root, "/proc/self/mountinfo");
  if (!f)
    return;
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    char *save = NULL;
    char *field[5];
    int i = 0;
    while (i < 5 && (field[i] = strtok_r(i ? NULL : line, " \n", &save)))
      i++;
    if (i < 5)
      continue;
    char *tok, *fstype = NULL, *super = NULL;
    while ((tok = strtok_r(NULL, " \n", &save)) && strcmp(tok, "-"))
      ; /* the options and the optional fields */
    if (tok && (fstype = strtok_r(NULL, " \n", &save)) &&
        strtok_r(NULL, " \n", &save)) /* the source */
      super = strtok_r(NULL, " \n", &save);
    if (!super)
      continue;
    char *mroot = field[3], *mpoint = field[4];
    unescape(mroot);
    unescape(mpoint);
    if (!strcmp(fstype, "cgroup2"))
      place(root, &cg->v2, mroot, mpoint);
    else if (!strcmp(fstype, "cgroup") && list_has(super, strlen(super), "cpu"))
      place(root, &cg->v1, mroot, mpoint);
  }
  free(line);
  fclose(f);
}

int weft__cpu_count_at(const char *root, int affinity_cpus) {
  int n = affinity_cpus < 1 ? 1 : affinity_cpus;
  struct cgroups *cg = calloc(1, sizeof *cg);
  if (!cg)
    return n; /* no limit known: the affinity's */
  if (!root)
    root = "";
  read_cgroup(root, cg);
  if (cg->v2.listed || cg->v1.listed)
    read_mountinfo(root, cg);
  int64_t limits[2] = {walk_up(&cg->v2, limit_v2), walk_up(&cg->v1, limit_v1)};
  free(cg);
  for (int i = 0; i < 2; i++)
    if (limits[i] > 0 && limits[i] < n)
      n = (int)limits[i];
  return n;
}

/* The CPUs of the affinity mask; a mask for more CPUs than a cpu_set_t
 * holds is asked for with a larger set. */
static int affinity_cpus(void) {
  for (int cpus = CPU_SETSIZE; cpus <= (1 << 20); cpus *= 2) {
    cpu_set_t *set = CPU_ALLOC(cpus);
    if (!set)
      break;
    size_t size = CPU_ALLOC_SIZE(cpus);
    int rc = sched_getaffinity(0, size, set);
    int count = rc == 0 ? CPU_COUNT_S(size, set) : 0;
    int err = errno;
    CPU_FREE(set);
    if (rc == 0)
      return count;
    if (err != EINVAL)
      break;
  }
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online < 1 ? 1 : online > INT_MAX ? INT_MAX : (int)online;
}

int weft_cpu_count(void) { return weft__cpu_count_at("", affinity_cpus()); }
