/* test_embed_cl fixture: an error on line 4, after an inlined file. */
#include "helper.cl"

float broken(void) { return not_declared_here; }
