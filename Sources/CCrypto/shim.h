#ifndef ABATHUR_CCRYPTO_SHIM_H
#define ABATHUR_CCRYPTO_SHIM_H
/* Debian's libcrypto (OpenSSL 3): only its EVP digest interface is used, for SHA-256 with
   the CPU's SHA instructions where it has them. */
#include <openssl/evp.h>
#endif
