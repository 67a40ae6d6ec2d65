/* advex command-line entry point: dispatches to the subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dist.h"

static const cli_command commands[] = {
    {"demo", "train the small model on Fashion-MNIST (cached) and print the FGSM accuracy-vs-eps table",
     "[options]", cmd_demo},
    {"train", "train a built-in architecture and save it as ONNX", "--arch A --out M.onnx [options]", cmd_train},
    {"attack", "craft adversarial examples and write them as .npy or PNG",
     "--model M.onnx --data D|--input photo.png --eps E --out X.npy|adv.png",
     cmd_attack},
    {"eval", "robust accuracy of a model over a data set for a list of eps", "--model M.onnx --data D --eps E,...",
     cmd_eval},
    {"png", "write a .npy batch of images as a PNG grid", "--npy X.npy --out grid.png [--cols N]", cmd_png},
    {"data", "load a data set (preprocessed), describe it and write it as .npy", "--data D [--out X.npy]", cmd_data},
    {"predict", "write a model's logits on a data set as .npy", "--model M.onnx --data D --out L.npy", cmd_predict},
    {"bench", "images/s of FGSM, PGD, a training step or a forward pass on random inputs",
     "--arch A|--model M.onnx --attack fgsm|pgd|train|forward [options]", cmd_bench},
    {"info", "describe an ONNX model: inputs, outputs, ops, parameters", "M.onnx", cmd_info},
    {"serve", "serve a model over the Open Inference Protocol v2 (KServe/Triton REST)",
     "--model M.onnx [--port P] [--host 127.0.0.1] [--name NAME] [--output logits|probs|label]", cmd_serve},
};

static void usage(FILE *f) {
    fprintf(f, "advex %s: adversarial robustness for neural networks\n\nusage: advex COMMAND [options]\n\ncommands:\n",
            ADVEX_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'advex COMMAND --help' lists a command's flags.\n"
               "Data specs: fashion-mnist[:train|:test], npy:X.npy,Y.npy, idx:IMAGES.gz,LABELS.gz,\n"
               "            cifar10:DIR[:train|:test], folder:DIR[,LIST] (class sub-folders of PNG/JPEG)\n"
               "eps: a number or a fraction (8/255); lists are comma separated (0,0.05,0.1)\n");
}

/* OpenMP spin-waiting. After each parallel region libgomp's idle threads spin (300 000
 * iterations by default) before sleeping. On machines whose "cores" are SMT siblings a
 * spinning thread takes issue slots from the one doing the serial work between regions: at
 * batch 1 (many short regions) 2 threads ran resnet FGSM 5x slower than 1 thread. A short
 * spin (GOMP_SPINCOUNT=10000) keeps wake-ups fast for back-to-back regions without that
 * cost (resnet batch 1: 130 -> 500 img/s; batch 256 unchanged). libgomp reads the variable
 * once, when it is loaded, so the CLI sets it and re-executes itself (about 1 ms), unless the
 * user set OMP_WAIT_POLICY or GOMP_SPINCOUNT. ADVEX_NO_REEXEC=1 skips this, and so does
 * running under valgrind (which cannot follow the re-exec). */
static void omp_spin_default(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || getenv("ADVEX_NO_REEXEC")) return;
    const char *pre = getenv("LD_PRELOAD"); /* under valgrind /proc/self/exe is valgrind's own */
    if (pre && strstr(pre, "vgpreload")) return;
    if (setenv("GOMP_SPINCOUNT", "10000", 0) != 0) return;
    execv("/proc/self/exe", argv); /* returns only on failure: carry on with the default */
}

int main(int argc, char **argv) {
    omp_spin_default(argv);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("advex %s (kernels: %s)\n", ADVEX_VERSION, advex_kernel_isa());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            cli_install_sigint();
            int rc = cli_dist_init(&argc, &argv); /* MPI, when started by mpirun (cli/dist.h) */
            if (rc) return rc;
            if (cli_dist_size() > 1 && strcmp(argv[1], "eval") && strcmp(argv[1], "attack") && strcmp(argv[1], "train")) {
                /* every rank would run the whole command and write the same outputs */
                if (cli_dist_rank() == 0)
                    fprintf(stderr, "advex %s: runs as one process (mpirun -np N scales eval, attack and train)\n",
                            argv[1]);
                return cli_dist_finish(CLI_EXIT_USAGE, 1);
            }
            if (cli_dist_size() > 1 && cli_target_wanted(argc - 1, argv + 1)) {
                /* a model behind an API: its server batches the queries; N ranks would each run it all */
                if (cli_dist_rank() == 0)
                    fprintf(stderr, "advex %s: --target runs as one process (mpirun -np N scales local models)\n",
                            argv[1]);
                return cli_dist_finish(CLI_EXIT_USAGE, 1);
            }
            return cli_dist_finish(commands[i].run(argc - 1, argv + 1), 0);
        }
    fprintf(stderr, "advex: unknown command '%s' (see advex --help)\n", argv[1]);
    return CLI_EXIT_USAGE;
}
