/* advex serve: a model over the Open Inference Protocol v2 REST API (advex_server_start),
 * loopback by default, until SIGINT or SIGTERM. Prints the URL once listening (and writes
 * the bound port to --port-file), so a script can start it on port 0 and poll
 * /v2/health/ready. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void on_term(int sig) {
    (void)sig;
    cli_interrupted = 1;
}

/* the file's stem: dir/m.onnx -> m */
static void stem(const char *path, char *out, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t l = strlen(b);
    const char *dot = strrchr(b, '.');
    if (dot && dot != b) l = (size_t)(dot - b);
    if (l >= cap) l = cap - 1;
    memcpy(out, b, l);
    out[l] = '\0';
}

int cmd_serve(int argc, char **argv) {
    const char *cmd = "serve";
    cli_flag f[] = {
        {"--model", "FILE", "ONNX model to serve", NULL, 0},
        {"--port", "P", "TCP port (0: any free port, printed and written to --port-file)", "8000", 0},
        {"--host", "ADDR", "IPv4 address to listen on (0.0.0.0 exposes it to the network)", "127.0.0.1", 0},
        {"--name", "NAME", "model name in the URLs (default: the file's stem)", NULL, 0},
        {"--output", "K", "what infer answers: logits, probs or label", "logits", 0},
        {"--max-batch", "N", "largest batch one request may carry", "1024", 0},
        {"--workers", "W", "forward passes at once (one plan each over the shared weights); each batches every "
                           "queued request that fits in --max-batch", "2", 0},
        {"--port-file", "FILE", "write the bound port here once listening", NULL, 0},
        {"--fault-after", "N", "testing clients: after N images answered, every infer fails with --fault", "0", 0},
        {"--fault", "F", "testing clients: 500, html, nan or shape", "500", 0},
    };
    const int nf = (int)(sizeof f / sizeof *f);
    int r = cli_parse(cmd, "--model M.onnx [--port P] [--host 127.0.0.1] [--name NAME] [--output logits|probs|label]",
                      "Serve a model over the Open Inference Protocol v2 (KServe/Triton REST): GET /v2/health/ready,\n"
                      "GET /v2/models/NAME, POST /v2/models/NAME/infer, GET /v2/models/NAME/stats (images counted).",
                      argc, argv, f, nf);
    if (r) return r > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    const char *path = CLI_GET(f, "--model")->value, *port_file = CLI_GET(f, "--port-file")->value;
    if (!path) return cli_error(cmd, CLI_EXIT_USAGE, "--model FILE is required");
    advex_serve_options o;
    advex_serve_options_default(&o);
    long long port, mb, w, fa;
    if (cli_int(cmd, CLI_GET(f, "--port"), 0, 65535, &port) || cli_int(cmd, CLI_GET(f, "--max-batch"), 1, 1 << 20, &mb) ||
        cli_int(cmd, CLI_GET(f, "--workers"), 1, 64, &w) || cli_int(cmd, CLI_GET(f, "--fault-after"), 0, INT64_MAX, &fa))
        return CLI_EXIT_USAGE;
    if (advex_output_parse(CLI_GET(f, "--output")->value, &o.output) || o.output == ADVEX_OUTPUT_AUTO)
        return cli_error(cmd, CLI_EXIT_USAGE, "--output: expected logits, probs or label");
    const char *fault = CLI_GET(f, "--fault")->value;
    if (strcmp(fault, "500") && strcmp(fault, "html") && strcmp(fault, "nan") && strcmp(fault, "shape"))
        return cli_error(cmd, CLI_EXIT_USAGE, "--fault: expected 500, html, nan or shape");
    if (CLI_GET(f, "--fault")->seen && !fa) return cli_error(cmd, CLI_EXIT_USAGE, "--fault needs --fault-after N");
    char name[100];
    stem(path, name, sizeof name);
    o.name = CLI_GET(f, "--name")->value ? CLI_GET(f, "--name")->value : name;
    o.port = (int)port;
    o.host = CLI_GET(f, "--host")->value;
    o.max_batch = mb;
    o.threads = (int)w;
    o.fault_after = fa;
    o.fault = fa ? fault : NULL;
    cli_files fs = {.n = 0};
    cli_files_in(&fs, "--model", path);
    cli_files_out(&fs, "--port-file", port_file);
    if ((r = cli_files_check(cmd, &fs))) return r;
    advex_model *m = NULL;
    if ((r = cli_load_model(cmd, path, NULL, 0, &m))) return r;
    advex_server *s = NULL;
    advex_status st = advex_server_start(m, &o, &s);
    if (st) { advex_model_free(m); return cli_fail(cmd, st); }
    signal(SIGTERM, on_term);
    char pb[32];
    int n = snprintf(pb, sizeof pb, "%d\n", advex_server_port(s));
    if (port_file && (r = cli_write_file_atomic(cmd, port_file, pb, (size_t)n))) {
        advex_server_stop(s);
        advex_model_free(m);
        return r;
    }
    printf("serving %s on http://%s:%d/v2/models/%s (Ctrl-C stops)\n", o.name, o.host, advex_server_port(s), o.name);
    fflush(stdout);
    while (!cli_interrupted) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    int64_t count = advex_server_inferences(s);
    advex_server_stop(s);
    advex_model_free(m);
    printf("stopped after %lld images inferred\n", (long long)count);
    return CLI_EXIT_OK;
}
