/*
 * How many CPUs this process may use: weft_cpu_count's machinery, with the
 * file system root as a parameter so that a test can give it a fake /proc
 * and /sys.
 */
#ifndef WEFT_CLUSTER_CPUS_H
#define WEFT_CLUSTER_CPUS_H

/* affinity_cpus (the CPUs of the affinity mask; below 1 counts as 1),
 * lowered to the smallest CPU quota of this process's cgroup and of its
 * ancestors, each rounded up: cgroup v2's cpu.max and cgroup v1's
 * cpu.cfs_quota_us over cpu.cfs_period_us, found through
 * root/proc/self/cgroup and root/proc/self/mountinfo, the files under
 * root + the mount points mountinfo names. root is a path prefix without a
 * trailing slash: "" (or NULL) for the real one. A file that is missing,
 * unreadable or not understood sets no limit: the result is at least 1 and
 * at most affinity_cpus, and the call never fails. */
int weft__cpu_count_at(const char *root, int affinity_cpus);

#endif
