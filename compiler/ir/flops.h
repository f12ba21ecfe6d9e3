/* flops.h: FLOP counts of compiled entry points (see flops.c). */
#ifndef NNC_FLOPS_H
#define NNC_FLOPS_H

#include "emit.h"

int64_t entry_flops(const EntryCode *ec, int64_t n);
int64_t entry_flops_per_sample(const EntryCode *ec);

#endif
