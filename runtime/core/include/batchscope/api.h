/* batchscope: what libbatchscope exports. The library is built with hidden
 * visibility; every public function is declared BSC_API, and nothing else
 * (file-local helpers, the layers' internal headers) leaves the library. */
#ifndef BATCHSCOPE_API_H
#define BATCHSCOPE_API_H

#if defined(__GNUC__)
#define BSC_API __attribute__((visibility("default")))
#else
#define BSC_API
#endif

#endif
