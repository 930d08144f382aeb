#ifndef ABATHUR_CSQLITE_SHIM_H
#define ABATHUR_CSQLITE_SHIM_H
/* Everything the wrappers use imports into Swift as it is, except variadic functions, which
   need the inline helpers below. */
#include <sqlite3.h>

/* SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE: closing the last connection then leaves a WAL as it is
   instead of checkpointing it into the database and deleting it. */
static inline int abathur_sqlite3_no_checkpoint_on_close(sqlite3 *db, int on) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, on, (int *)0);
}
#endif
