#ifndef ABATHUR_CZLIB_SHIM_H
#define ABATHUR_CZLIB_SHIM_H
#include <zlib.h>

/* inflateInit2 is a function-like macro: Swift cannot call it. */
static inline int abathur_inflate_init_gzip(z_stream *s) {
    /* windowBits 15 + 16: accept gzip framing only, so a raw zlib stream is an error. */
    return inflateInit2(s, 15 + 16);
}
#endif
