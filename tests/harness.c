/* Test harness implementation (see harness.h). */
#include "harness.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "advex/advex.h"
#include "ops/dispatch.h"

int advex_test_failed_flag;

void advex_test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "  FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    advex_test_failed_flag = 1;
}

const char *advex_test_src(const char *rel) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", ADVEX_SOURCE_DIR, rel);
    return buf;
}

static char tmpdir_[256];

static void cleanup_tmpdir(void) {
    if (tmpdir_[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir_);
        if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir_);
    }
}

const char *advex_test_tmpdir(void) {
    if (!tmpdir_[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir_, sizeof tmpdir_, "%s/advex-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir_)) { perror("mkdtemp"); exit(2); }
        atexit(cleanup_tmpdir);
    }
    return tmpdir_;
}

int advex_test_main(int argc, char **argv, const advex_test_entry *tests, int n) {
    int passed = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        if (argc > 1) {
            int want = 0;
            for (int k = 1; k < argc; k++) want |= strcmp(argv[k], tests[i].name) == 0;
            if (!want) continue;
        }
        advex_test_failed_flag = 0;
        advex_clear_error();
        printf("[ RUN  ] %s\n", tests[i].name);
        fflush(stdout);
        tests[i].fn();
        if (advex_test_failed_flag) { failed++; printf("[ FAIL ] %s\n", tests[i].name); }
        else { passed++; printf("[  OK  ] %s\n", tests[i].name); }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

int advex_test_main_each_isa(int argc, char **argv, const advex_test_entry *tests, int n) {
    advex_isa top = advex_isa_active(); /* the best this CPU runs, capped by ADVEX_ISA */
    int rc = 0, runs = 0;
    for (int i = 0; i <= (int)top; i++) {
        if (!advex_isa_available((advex_isa)i)) continue;
        if (!advex_isa_force((advex_isa)i) || advex_isa_active() != (advex_isa)i) {
            printf("FAIL: could not switch to the %s kernels\n", advex_isa_str((advex_isa)i));
            rc = 1;
            continue;
        }
        printf("==== kernels: %s\n", advex_isa_str((advex_isa)i));
        fflush(stdout);
        rc |= advex_test_main(argc, argv, tests, n);
        runs++;
    }
    advex_isa_force(top);
    printf("==== ran under %d kernel variant(s)%s\n", runs, rc ? ": FAILED" : "");
    return rc;
}
