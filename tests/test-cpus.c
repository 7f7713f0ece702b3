/*
 * weft_cpu_count: the affinity's CPUs lowered by a cgroup quota. Each case
 * builds a fake /proc/self and cgroup tree in a temporary directory and
 * asks weft__cpu_count_at for it with 64 CPUs of affinity: cgroup v2 and
 * v1 quotas, rounding up, ancestors' quotas, a container's mount of part
 * of the tree, a hybrid host, and files that are missing or garbage (no
 * limit, never a failure). Then the real count, within its bounds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <weft.h>
#include <weft/cluster.h>

#include "../src/cluster/cpus.h"
#include "harness.h"

static char root[64];

static void make_root(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/weft-cpus-XXXXXX",
           tmp && strlen(tmp) < 32 ? tmp : "/tmp");
  CHECK(mkdtemp(root) != NULL);
}

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void remove_root(void) {
  CHECK_EQ(nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* Writes text to root/rel, making the directories on the way. */
static void put(const char *rel, const char *text) {
  char path[512];
  CHECK((size_t)snprintf(path, sizeof path, "%s/%s", root, rel) < sizeof path);
  for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
    *p = '\0';
    CHECK(mkdir(path, 0700) == 0 || errno == EEXIST);
    *p = '/';
  }
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  CHECK(fputs(text, f) >= 0);
  CHECK_EQ(fclose(f), 0);
}

static void mkdirs(const char *rel) {
  char name[512];
  snprintf(name, sizeof name, "%s/.keep", rel);
  put(name, "");
}

static const char v2_mount[] =
    "22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw\n"
    "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - "
    "cgroup2 cgroup2 rw,nsdelegate\n";

static int count(void) { return weft__cpu_count_at(root, 64); }

TEST(v2_quota_of_two_cpus) {
  make_root();
  put("proc/self/cgroup", "0::/app.slice/svc\n");
  put("proc/self/mountinfo", v2_mount);
  put("sys/fs/cgroup/app.slice/svc/cpu.max", "200000 100000\n");
  CHECK_EQ(count(), 2);
  /* A quota above the affinity does not raise it. */
  CHECK_EQ(weft__cpu_count_at(root, 1), 1);
  remove_root();
}

TEST(v2_max_is_no_limit) {
  make_root();
  put("proc/self/cgroup", "0::/app.slice/svc\n");
  put("proc/self/mountinfo", v2_mount);
  put("sys/fs/cgroup/app.slice/svc/cpu.max", "max 100000\n");
  CHECK_EQ(count(), 64);
  remove_root();
}

TEST(v2_fraction_rounds_up) {
  make_root();
  put("proc/self/cgroup", "0::/a\n");
  put("proc/self/mountinfo", v2_mount);
  put("sys/fs/cgroup/a/cpu.max", "150000 100000\n");
  CHECK_EQ(count(), 2);
  /* Less than one CPU is one. */
  put("sys/fs/cgroup/a/cpu.max", "1000 100000\n");
  CHECK_EQ(count(), 1);
  /* Just above a whole number is the next. */
  put("sys/fs/cgroup/a/cpu.max", "300001 100000\n");
  CHECK_EQ(count(), 4);
  remove_root();
}

TEST(v2_an_ancestors_quota_applies) {
  make_root();
  put("proc/self/cgroup", "0::/parent/child\n");
  put("proc/self/mountinfo", v2_mount);
  put("sys/fs/cgroup/parent/cpu.max", "300000 100000\n");
  put("sys/fs/cgroup/parent/child/cpu.max", "max 100000\n");
  CHECK_EQ(count(), 3);
  put("sys/fs/cgroup/parent/child/cpu.max", "800000 100000\n");
  CHECK_EQ(count(), 3);
  /* The smallest wins wherever it is. */
  put("sys/fs/cgroup/parent/child/cpu.max", "100000 100000\n");
  CHECK_EQ(count(), 1);
  remove_root();
}

TEST(v2_mounted_elsewhere_on_a_hybrid_host) {
  /* As this project's CI host: v1 hierarchies, and the v2 one at
   * /sys/fs/cgroup/unified. */
  make_root();
  put("proc/self/cgroup", "1:cpu:/\n2:cpuacct:/\n0::/job\n");
  put("proc/self/mountinfo",
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup "
      "rw,cpuacct\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 "
      "rw\n");
  put("sys/fs/cgroup/unified/job/cpu.max", "500000 100000\n");
  put("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n");
  put("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
  CHECK_EQ(count(), 5);
  /* No cpu.max there (the cpu controller is in v1): v1's quota counts. */
  put("sys/fs/cgroup/unified/job/cpu.max", "");
  CHECK_EQ(count(), 64);
  put("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "700000\n");
  CHECK_EQ(count(), 7);
  remove_root();
}

TEST(v1_quota) {
  make_root();
  put("proc/self/cgroup", "12:memory:/docker/abc\n"
                          "4:cpu,cpuacct:/docker/abc\n"
                          "3:cpuset:/docker/abc\n");
  put("proc/self/mountinfo",
      "25 22 0:23 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n"
      "26 22 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup "
      "cgroup rw,cpu,cpuacct\n");
  put("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "250000\n");
  put("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  CHECK_EQ(count(), 3);
  put("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
  CHECK_EQ(count(), 64);
  /* An ancestor's quota applies in v1 too. */
  put("sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_quota_us", "400000\n");
  put("sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_period_us", "200000\n");
  CHECK_EQ(count(), 2);
  /* cpuset is not cpu: its directory is never read. */
  put("sys/fs/cgroup/cpuset/docker/abc/cpu.cfs_quota_us", "100000\n");
  put("sys/fs/cgroup/cpuset/docker/abc/cpu.cfs_period_us", "100000\n");
  CHECK_EQ(count(), 2);
  remove_root();
}

TEST(a_containers_mount_of_part_of_the_tree) {
  /* In a container the v2 tree is mounted from the container's own cgroup
   * (mountinfo's root field), while /proc/self/cgroup names the full
   * path: the directory is the mount point + the path below that root. */
  make_root();
  put("proc/self/cgroup", "0::/kubepods/pod1/ctr/sub\n");
  put("proc/self/mountinfo",
      "700 600 0:26 /kubepods/pod1/ctr /sys/fs/cgroup ro,nosuid - cgroup2 "
      "cgroup rw\n");
  put("sys/fs/cgroup/sub/cpu.max", "max 100000\n");
  put("sys/fs/cgroup/cpu.max", "200000 100000\n"); /* the container's */
  CHECK_EQ(count(), 2);
  /* Not read: a file where the full path would lead. */
  put("sys/fs/cgroup/kubepods/pod1/ctr/sub/cpu.max", "100000 100000\n");
  CHECK_EQ(count(), 2);
  remove_root();
}

TEST(a_mount_of_another_part_of_the_tree_is_not_used) {
  make_root();
  put("proc/self/cgroup", "0::/elsewhere/x\n");
  put("proc/self/mountinfo",
      "700 600 0:26 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup rw\n"
      "701 600 0:26 /kubepods/pod1x /mnt/cg rw - cgroup2 cgroup rw\n");
  put("sys/fs/cgroup/cpu.max", "100000 100000\n");
  put("sys/fs/cgroup/elsewhere/x/cpu.max", "100000 100000\n");
  put("mnt/cg/cpu.max", "100000 100000\n");
  CHECK_EQ(count(), 64);
  /* A path that climbs out of the namespace cannot be found either. */
  put("proc/self/cgroup", "0::/../../x\n");
  put("proc/self/mountinfo", v2_mount);
  put("sys/fs/cgroup/x/cpu.max", "100000 100000\n");
  CHECK_EQ(count(), 64);
  remove_root();
}

TEST(an_escaped_mount_point) {
  make_root();
  put("proc/self/cgroup", "0::/a\n");
  put("proc/self/mountinfo",
      "30 22 0:26 / /my\\040cgroups rw - cgroup2 cgroup2 rw\n");
  put("my cgroups/a/cpu.max", "600000 100000\n");
  CHECK_EQ(count(), 6);
  remove_root();
}

TEST(no_cgroup_files_at_all) {
  make_root();
  CHECK_EQ(count(), 64);
  /* A cgroup but no mount of it; a mount but no quota file. */
  put("proc/self/cgroup", "0::/a\n");
  CHECK_EQ(count(), 64);
  put("proc/self/mountinfo", v2_mount);
  mkdirs("sys/fs/cgroup/a");
  CHECK_EQ(count(), 64);
  CHECK_EQ(weft__cpu_count_at(root, 0), 1);
  CHECK_EQ(weft__cpu_count_at(root, -5), 1);
  CHECK_EQ(weft__cpu_count_at("/no/such/root", 8), 8);
  remove_root();
}

TEST(garbage_sets_no_limit) {
  static const char *const bad_max[] = {
      "",
      "\n",
      "banana\n",
      "0 100000\n",
      "-200000 100000\n",
      "200000 0\n",
      "200000 -100000\n",
      "200000\n",
      "200000  100000\n",
      "200000 100000 7\n",
      "200000 100000x\n",
      "99999999999999999999 100000\n",
      "200000 99999999999999999999\n",
      "max\n",
      "maximum 100000\n",
  };
  make_root();
  put("proc/self/cgroup", "0::/a\n");
  put("proc/self/mountinfo", v2_mount);
  for (size_t i = 0; i < sizeof bad_max / sizeof bad_max[0]; i++) {
    put("sys/fs/cgroup/a/cpu.max", bad_max[i]);
    int n = count();
    if (n != 64)
      harness_fail(__FILE__, __LINE__, "cpu.max \"%s\": %d", bad_max[i], n);
  }
  /* A huge quota is no limit below the affinity. */
  put("sys/fs/cgroup/a/cpu.max", "9223372036854775807 1\n");
  CHECK_EQ(count(), 64);
  /* Garbage in /proc's files. */
  put("sys/fs/cgroup/a/cpu.max", "100000 100000\n");
  put("proc/self/cgroup", "garbage\n::\n0:\n\n:::::\n");
  CHECK_EQ(count(), 64);
  put("proc/self/cgroup", "0::/a\n");
  put("proc/self/mountinfo", "garbage\n1 2 3\n1 2 3 4 5 6 - cgroup2\n"
                             "30 22 0:26 / /sys/fs/cgroup rw - \n");
  CHECK_EQ(count(), 64);
  /* v1 garbage. */
  put("proc/self/cgroup", "4:cpu:/j\n");
  put("proc/self/mountinfo",
      "26 22 0:24 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");
  put("sys/fs/cgroup/cpu/j/cpu.cfs_quota_us", "lots\n");
  put("sys/fs/cgroup/cpu/j/cpu.cfs_period_us", "100000\n");
  CHECK_EQ(count(), 64);
  put("sys/fs/cgroup/cpu/j/cpu.cfs_quota_us", "200000\n");
  put("sys/fs/cgroup/cpu/j/cpu.cfs_period_us", "0\n");
  CHECK_EQ(count(), 64);
  put("sys/fs/cgroup/cpu/j/cpu.cfs_period_us", "100000\n");
  CHECK_EQ(count(), 2); /* and sense again once it makes sense */
  remove_root();
}

TEST(a_quota_file_that_is_a_directory) {
  make_root();
  put("proc/self/cgroup", "0::/a\n");
  put("proc/self/mountinfo", v2_mount);
  mkdirs("sys/fs/cgroup/a/cpu.max");
  CHECK_EQ(count(), 64);
  remove_root();
}

static void *count_in_a_task(void *arg) {
  (void)arg;
  return IV(weft_cpu_count());
}

TEST(the_real_count_is_within_the_affinity) {
  cpu_set_t set;
  CHECK_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  int affinity = CPU_COUNT(&set);
  int n = weft_cpu_count();
  CHECK(n >= 1);
  CHECK(n <= affinity);
  CHECK_EQ(weft__cpu_count_at("", affinity), n);
  /* The same from a task. */
  void *r;
  CHECK_EQ(weft_run(count_in_a_task, NULL, &r), 0);
  CHECK_EQ(VI(r), n);
}
