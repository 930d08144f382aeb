#ifndef ABATHUR_CSQLITE_SHIM_H
#define ABATHUR_CSQLITE_SHIM_H
/* Everything the wrappers use imports into Swift as it is. Variadic functions and
   SQLITE_TRANSIENT (a cast of -1 to a function pointer) would need inline helpers here. */
#include <sqlite3.h>
#endif
