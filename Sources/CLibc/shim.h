#ifndef ABATHUR_CLIBC_SHIM_H
#define ABATHUR_CLIBC_SHIM_H
/* glibc functions that Swift's Glibc module does not show (declared only under _GNU_SOURCE). */
#include <spawn.h>

/* glibc >= 2.34: in the child, close every descriptor from `from` up. */
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);

static inline int abathur_spawn_close_from(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
/* The CPUs this process may run on (its affinity mask), or -1. sched_getaffinity and
   CPU_COUNT are declared only under _GNU_SOURCE; pid_t is int and size_t unsigned long on
   every glibc target Debian builds for. */
extern int sched_getaffinity(int pid, unsigned long size, void *mask);

static inline int abathur_available_cpus(void) {
    unsigned long mask[16];
    if (sched_getaffinity(0, sizeof mask, mask) != 0) return -1;
    int count = 0;
    for (int i = 0; i < 16; i++) count += __builtin_popcountl(mask[i]);
    return count;
}
#endif
