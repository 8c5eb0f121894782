/* test_embed_cl fixture: includes its includer, which must not be pasted
 * into it a second time. */
#include "main.cl"
float helper_value(void) { return 7.0f; }
