/* The one dispatch point of the ISA variants (dispatch.h): which variant this CPU runs,
 * picked once, and the plain-named kernels as calls through its table. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ops/dispatch.h"

/* Variants compiled into this build (CMakeLists.txt defines these on x86-64). */
#ifndef ADVEX_ISA_HAVE_AVX2
#define ADVEX_ISA_HAVE_AVX2 0
#endif
#ifndef ADVEX_ISA_HAVE_AVX512
#define ADVEX_ISA_HAVE_AVX512 0
#endif

#define ADVEX_KERNEL_ENTRY_(ret, name, params, args) .name = ADVEX_ISA_CAT_(name, V_),
#define V_ generic
static const advex_kernel_table table_generic = {.isa = ADVEX_ISA_GENERIC, ADVEX_KERNELS(ADVEX_KERNEL_ENTRY_)};
#undef V_
#if ADVEX_ISA_HAVE_AVX2
#define V_ avx2
static const advex_kernel_table table_avx2 = {.isa = ADVEX_ISA_AVX2, ADVEX_KERNELS(ADVEX_KERNEL_ENTRY_)};
#undef V_
#endif
#if ADVEX_ISA_HAVE_AVX512
#define V_ avx512
static const advex_kernel_table table_avx512 = {.isa = ADVEX_ISA_AVX512, ADVEX_KERNELS(ADVEX_KERNEL_ENTRY_)};
#undef V_
#endif
#undef ADVEX_KERNEL_ENTRY_

static const advex_kernel_table *table_of(advex_isa isa) {
    switch (isa) {
#if ADVEX_ISA_HAVE_AVX2
    case ADVEX_ISA_AVX2: return &table_avx2;
#endif
#if ADVEX_ISA_HAVE_AVX512
    case ADVEX_ISA_AVX512: return &table_avx512;
#endif
    case ADVEX_ISA_GENERIC: return &table_generic;
    default: return NULL;
    }
}

/* What the CPU (and the OS, which must save the wider registers) supports. gcc's and
 * clang's __builtin_cpu_supports check XCR0 for the AVX and AVX-512 state. Valgrind
 * (3.19) reports a CPU without AVX-512, so under valgrind this picks avx2. */
static int cpu_has(advex_isa isa) {
    if (isa == ADVEX_ISA_GENERIC) return 1;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == ADVEX_ISA_AVX2) return avx2;
    if (isa == ADVEX_ISA_AVX512)
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#endif
    return 0;
}

int advex_isa_available(advex_isa isa) { return table_of(isa) != NULL && cpu_has(isa); }

const char *advex_isa_str(advex_isa isa) {
    switch (isa) {
#ifdef ADVEX_NATIVE_BUILD
    case ADVEX_ISA_GENERIC: return "native";
#else
    case ADVEX_ISA_GENERIC: return "generic";
#endif
    case ADVEX_ISA_AVX2: return "avx2";
    case ADVEX_ISA_AVX512: return "avx512";
    default: return "?";
    }
}

/* The best available variant, at most the one ADVEX_ISA names (an unknown name is ignored). */
static advex_isa pick(void) {
    advex_isa cap = (advex_isa)(ADVEX_ISA_COUNT - 1);
    const char *env = getenv("ADVEX_ISA");
    if (env && *env)
        for (int i = 0; i < ADVEX_ISA_COUNT; i++)
            if (strcmp(env, advex_isa_str((advex_isa)i)) == 0 || (i == 0 && strcmp(env, "generic") == 0))
                cap = (advex_isa)i;
    for (int i = cap; i > 0; i--)
        if (advex_isa_available((advex_isa)i)) return (advex_isa)i;
    return ADVEX_ISA_GENERIC;
}

/* Set once (racing first calls store the same table); a relaxed load per kernel call. */
static _Atomic(const advex_kernel_table *) active_;

static const advex_kernel_table *kernels(void) {
    const advex_kernel_table *t = atomic_load_explicit(&active_, memory_order_acquire);
    if (!t) {
        t = table_of(pick());
        atomic_store_explicit(&active_, t, memory_order_release);
    }
    return t;
}

advex_isa advex_isa_active(void) { return kernels()->isa; }

int advex_isa_force(advex_isa isa) {
    if (!advex_isa_available(isa)) return 0;
    atomic_store_explicit(&active_, table_of(isa), memory_order_release);
    return 1;
}

const char *advex_kernel_isa(void) { return advex_isa_str(advex_isa_active()); }

/* The plain-named kernels. */
#define ADVEX_RET_int return
#define ADVEX_RET_int64_t return
#define ADVEX_RET_void
#define ADVEX_KERNEL_WRAP_(ret, name, params, args) \
    ret name params { ADVEX_RET_##ret kernels()->name args; }
ADVEX_KERNELS(ADVEX_KERNEL_WRAP_)
#undef ADVEX_KERNEL_WRAP_
