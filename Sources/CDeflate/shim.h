#ifndef ABATHUR_CDEFLATE_SHIM_H
#define ABATHUR_CDEFLATE_SHIM_H
/* Debian's libdeflate (libdeflate-dev): whole-buffer DEFLATE and CRC-32. */
#include <libdeflate.h>
#endif
