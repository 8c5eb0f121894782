/* Test plugin "good_b": a second valid plugin with one layer type. */
#include "tp_stub.h"

TP_STUB_PLUGIN("good_b", "tp_other", l_forward)
