/* main.c - `spirt`: train models across serverless workers, or compare how
 * four architectures do it. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "ml/blas_tune.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: spirt <command> [options]\n"
            "\n"
            "Serverless distributed training: every step of an iteration is its own\n"
            "HTTP function; Redis holds state, NATS synchronizes.\n"
            "\n"
            "commands:\n"
            "  train     train a model (--arch single|spirt|mlless|scatter-reduce|all-reduce)\n"
            "  compare   run the four distributed architectures on the same job\n"
            "  datagen   write a dataset from a known ground truth (datagen sparse)\n"
            "  version   print the version\n"
            "\n"
            "Run 'spirt <command> --help' for a command's options.\n"
            "\n"
            "Exit status: 0 done; 2 bad usage (an unknown command, unknown, malformed or\n"
            "conflicting options, an option that does not apply to the architecture, an\n"
            "unwritable output path), found before any work starts; 1 anything else (data\n"
            "errors, a server that failed, a failed run).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("spirt %s\n", SPIRT_VERSION);
        return 0;
    }
    /* Training may run the models here (--arch single, --transport inproc):
     * with OpenBLAS's best kernels for this CPU, worth one re-exec. Functions
     * started by the runner get the same choice through their environment. */
    if (strcmp(cmd, "train") == 0 || strcmp(cmd, "compare") == 0)
        blas_ReexecTuned(argv);
    if (strcmp(cmd, "train") == 0)
        return cmd_Train(argc, argv);
    if (strcmp(cmd, "compare") == 0)
        return cmd_Compare(argc, argv);
    if (strcmp(cmd, "datagen") == 0)
        return cmd_Datagen(argc, argv);
    fprintf(stderr, "spirt: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
