/* Kahn's algorithm, the one topological sort of advex: the ONNX importer orders a file's
 * nodes with it (src/onnx/import.c) and a net orders its own at finalize (src/graph/net.c);
 * each builds the successor lists from its own structures. */
#include "internal.h"

int advex_kahn(int n, int *indeg, const int *start, const int *adj, int *order) {
    int head = 0, tail = 0;
    for (int i = 0; i < n; i++)
        if (indeg[i] == 0) order[tail++] = i;
    while (head < tail) {
        int i = order[head++];
        for (int j = start[i]; j < start[i + 1]; j++)
            if (--indeg[adj[j]] == 0) order[tail++] = adj[j];
    }
    return tail;
}
