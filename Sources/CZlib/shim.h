#ifndef ABATHUR_CZLIB_SHIM_H
#define ABATHUR_CZLIB_SHIM_H
#include <zlib.h>

/* deflateInit2 and inflateInit2 are function-like macros: Swift cannot call them. */
static inline int abathur_deflate_init_gzip(z_stream *s, int level) {
    /* windowBits 15 + 16: zlib writes the gzip header and trailer itself. */
    return deflateInit2(s, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
static inline int abathur_inflate_init_gzip(z_stream *s) {
    /* windowBits 15 + 16: accept gzip framing only, so a raw zlib stream is an error. */
    return inflateInit2(s, 15 + 16);
}
#endif
