/* Test plugin "dup": a valid layer whose name "tp_identity" clashes with good_a. */
#include "tp_stub.h"

TP_STUB_PLUGIN("dup", "tp_identity", l_forward)
