// The size-class tables (goalloc_sizeclasses.h, generated): defined here, once, and declared
// everywhere else.
#define GOALLOC_SIZECLASSES_DEFINE
#include "goalloc_sizeclasses.h"
