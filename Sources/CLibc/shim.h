#ifndef ABATHUR_CLIBC_SHIM_H
#define ABATHUR_CLIBC_SHIM_H
/* glibc functions that Swift's Glibc module does not show (declared only under _GNU_SOURCE). */
#include <spawn.h>

/* glibc >= 2.34: in the child, close every descriptor from `from` up. */
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);

static inline int abathur_spawn_close_from(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
#endif
