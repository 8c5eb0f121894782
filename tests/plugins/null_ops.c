/* Test plugin "null_ops": a layer type without the required forward op. */
#define TP_STUB_NO_FORWARD
#include "tp_stub.h"

/* forward missing on purpose: the host must reject this type. */
TP_STUB_PLUGIN("null_ops", "tp_nullfwd", NULL)
