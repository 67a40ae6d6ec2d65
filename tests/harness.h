/* Minimal test harness: TEST(name) functions registered in a table, ASSERT macros that
 * print both values and file:line, and a main() that runs all (or those named on the
 * command line) and prints "N passed, N failed", exiting non-zero on any failure. */
#ifndef ADVEX_TEST_HARNESS_H
#define ADVEX_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef void (*advex_test_fn)(void);
typedef struct { const char *name; advex_test_fn fn; } advex_test_entry;

extern int advex_test_failed_flag;
void advex_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Path of a file in the source tree (tests/fixtures/...). Static buffer. */
const char *advex_test_src(const char *rel);
/* A fresh temporary directory for this test process (created once). */
const char *advex_test_tmpdir(void);
int advex_test_main(int argc, char **argv, const advex_test_entry *tests, int n);

#define TEST(name) static void name(void)
#define TEST_MAIN(...)                                                                  \
    int main(int argc, char **argv) {                                                   \
        static const advex_test_entry tests_[] = {__VA_ARGS__};                          \
        return advex_test_main(argc, argv, tests_, (int)(sizeof tests_ / sizeof *tests_)); \
    }
/* Like TEST_MAIN, but the tests run once per kernel variant (src/ops/dispatch.h: generic,
 * avx2, avx512) that this CPU supports, from generic up to the one ADVEX_ISA (or the CPU)
 * selects, each forced in turn; fails if any run fails. */
int advex_test_main_each_isa(int argc, char **argv, const advex_test_entry *tests, int n);
#define TEST_MAIN_EACH_ISA(...)                                                                  \
    int main(int argc, char **argv) {                                                            \
        static const advex_test_entry tests_[] = {__VA_ARGS__};                                   \
        return advex_test_main_each_isa(argc, argv, tests_, (int)(sizeof tests_ / sizeof *tests_)); \
    }
#define TEST_ENTRY(name) {#name, name}

#define ASSERT(cond)                                                                    \
    do { if (!(cond)) { advex_test_fail(__FILE__, __LINE__, "assertion failed: %s", #cond); return; } } while (0)
#define ASSERT_MSG(cond, ...)                                                           \
    do { if (!(cond)) { advex_test_fail(__FILE__, __LINE__, __VA_ARGS__); return; } } while (0)
#define ASSERT_EQ_INT(a, b)                                                             \
    do { long long a_ = (long long)(a), b_ = (long long)(b);                            \
         if (a_ != b_) { advex_test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); return; } } while (0)
#define ASSERT_NEAR(a, b, tol)                                                          \
    do { double a_ = (double)(a), b_ = (double)(b);                                     \
         if (!(fabs(a_ - b_) <= (tol))) { advex_test_fail(__FILE__, __LINE__, "%s ~= %s: %.9g vs %.9g (tol %g)", #a, #b, a_, b_, (double)(tol)); return; } } while (0)
#define ASSERT_OK(expr)                                                                 \
    do { advex_status s_ = (expr);                                                      \
         if (s_ != ADVEX_OK) { advex_test_fail(__FILE__, __LINE__, "%s: %s (%s)", #expr, advex_status_str(s_), advex_last_error()); return; } } while (0)
#define ASSERT_STATUS(expr, want)                                                       \
    do { advex_status s_ = (expr);                                                      \
         if (s_ != (want)) { advex_test_fail(__FILE__, __LINE__, "%s: got %s, want %s (%s)", #expr, advex_status_str(s_), advex_status_str(want), advex_last_error()); return; } } while (0)

#endif
