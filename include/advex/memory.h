/* Process-wide cap on the memory advex's engine allocates for models: parameters,
 * constants, the activation arena (activations, their gradients, scratch) and the
 * attack/training workspaces. Data sets and small temporaries are not counted. */
#ifndef ADVEX_MEMORY_H
#define ADVEX_MEMORY_H

#include <stdint.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif
ADVEX_API_BEGIN

/* Cap engine allocations at `bytes` in total (0: no limit, the default). An allocation
 * that would pass the cap fails with ADVEX_ERR_LIMIT and a message giving the sizes.
 * Allocations already made are kept; a lower cap only affects later ones. Thread-safe. */
void advex_set_memory_limit(int64_t bytes);
int64_t advex_get_memory_limit(void);
/* Bytes currently allocated by the engine (all models together), and the peak so far. */
int64_t advex_memory_in_use(void);
int64_t advex_memory_peak(void);

/* Parse a size: a number with an optional suffix K, M, G, T (powers of 1024, with an
 * optional trailing "B" or "iB"), e.g. "512M", "2G", "1.5GiB", "1048576". Returns
 * ADVEX_OK or ADVEX_ERR_ARG (with a message) for anything else, zero included. */
advex_status advex_parse_size(const char *s, int64_t *bytes);

ADVEX_API_END
#ifdef __cplusplus
}
#endif
#endif
