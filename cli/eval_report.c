/* eval --report DIR, the CLI's part: the report's files (advex_report_paths) joined to the
 * command's same-file checks, and DIR checked before any work. The report itself is
 * advex_report_write (src/report/report.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

int cli_report_files(const char *cmd, cli_files *fs, const char *dir, const advex_attack_kind *kinds, int nk) {
    char *paths;
    advex_status st = advex_report_paths(dir, kinds, nk, &paths);
    if (st) return cli_fail(cmd, st);
    for (char *p = paths, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        *nl = '\0';
        cli_files_out_unprobed(fs, "--report", p);
    }
    free(paths);
    return 0;
}

/* dirname of path into out (".", "/" or the part before the last slash). */
static void parent_of(const char *path, char *out, size_t n) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--; /* "rep/" */
    const char *slash = NULL;
    for (size_t i = 0; i < len; i++) if (path[i] == '/') slash = path + i;
    if (!slash) snprintf(out, n, ".");
    else if (slash == path) snprintf(out, n, "/");
    else snprintf(out, n, "%.*s", (int)(slash - path), path);
}

int cli_report_check(const char *cmd, const char *dir) {
    struct stat sb;
    char probe[4400], parent[4200];
    int exists = stat(dir, &sb) == 0;
    if (exists && !S_ISDIR(sb.st_mode))
        return cli_error(cmd, CLI_EXIT_USAGE, "--report %s: exists and is not a directory", dir);
    if (!exists && errno != ENOENT) return cli_error(cmd, CLI_EXIT_FAIL, "--report %s: %s", dir, strerror(errno));
    /* the staging directory goes beside DIR: its parent must be writable either way */
    parent_of(dir, parent, sizeof parent);
    snprintf(probe, sizeof probe, "%s/.advex-report", parent);
    int r = cli_check_output(cmd, "--report", probe);
    if (r || !exists) return r;
    snprintf(probe, sizeof probe, "%s/report.html", dir); /* and files moved into DIR replace its old ones */
    return cli_check_output(cmd, "--report", probe);
}

